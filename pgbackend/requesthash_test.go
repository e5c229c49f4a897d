package pgbackend

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// quotingSamples cut at every place in chunks of four bytes and more:
// runes of one to four bytes, invalid and truncated sequences, escapes.
var quotingSamples = []string{
	"", "plain ascii", "a\"b\\c\n\t\x00\x7f",
	"é€😀 mixed ünïcödé 😀😀😀",
	"\xe2\x82\xac\xe2\x82", "\xff\xfe\x80\x80\x80\xbf", "\xf0\x9f\x98", "a\xe2\x82Ab\xf0\x9f",
	"\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80 past U+10FFFF", "\u2028\u2029\ufeff",
	"00000😀\x9f\x98\x9f", // continuation bytes after a rune: FuzzWriteQuoted's find
}

// TestWriteQuotedIsPercentQ: writeQuoted writes what fmt's %q does, for
// chunk sizes that cut every sample at every place.
func TestWriteQuotedIsPercentQ(t *testing.T) {
	for _, s := range quotingSamples {
		want := fmt.Sprintf("%q", []byte(s))
		for chunk := 4; chunk <= 12; chunk++ {
			var got bytes.Buffer
			writeQuoted(&got, []byte(s), chunk)
			if got.String() != want {
				t.Errorf("writeQuoted(%q, chunk %d) = %s, want %s", s, chunk, got.String(), want)
			}
		}
	}
}

func FuzzWriteQuoted(f *testing.F) {
	for _, s := range quotingSamples {
		f.Add([]byte(s), 4)
	}
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		chunk = 4 + abs(chunk)%64
		var got bytes.Buffer
		writeQuoted(&got, b, chunk)
		if want := fmt.Sprintf("%q", b); got.String() != want {
			t.Fatalf("writeQuoted(%q, chunk %d) = %s, want %s", b, chunk, got.String(), want)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestRequestHashesAsBefore: the hashes that name appends to their keys
// are the ones keys were stored with before they were written without
// fmt, for a payload longer than a chunk.
func TestRequestHashesAsBefore(t *testing.T) {
	long := []byte(`{"text":"` + strings.Repeat("é€😀\xff", quoteChunk/3) + `"}`)
	items := []rollout.Item{{Type: "response_item", Payload: long}, {Timestamp: "2026-11-29T00:00:00.000Z", Type: "event_msg", Payload: []byte(`{}`)}}
	h := sha256.New()
	for _, it := range items {
		fmt.Fprintf(h, "%q %q %q\n", it.Type, it.Timestamp, it.Payload)
	}
	if got, want := itemsHash(items), h.Sum(nil); !bytes.Equal(got, want) {
		t.Errorf("itemsHash = %x, want %x", got, want)
	}
	lines := [][]byte{long, []byte(`{"type":"x"}`)}
	h.Reset()
	for _, l := range lines {
		fmt.Fprintf(h, "%q\n", l)
	}
	if got, want := linesHash(lines), h.Sum(nil); !bytes.Equal(got, want) {
		t.Errorf("linesHash = %x, want %x", got, want)
	}
}
