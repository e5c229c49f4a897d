package pgstore

import (
	"bytes"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// BenchmarkNumberLines measures what numbering a line of a paginated
// thread adds to an append (numberLines, under the row lock) beside the
// scan every append makes (scanLines), on the ~400-byte item of
// BenchmarkDistributedAppend. Neither needs a database.
func BenchmarkNumberLines(b *testing.B) {
	payload := []byte(`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"` +
		string(bytes.Repeat([]byte("appended text "), 24)) + `"}]}`)
	line, err := rollout.EncodeItem(rollout.Item{Type: rollout.TypeResponseItem, Payload: payload}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	marks, err := scanLines(line)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			if _, err := scanLines(line); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("number", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := numberLines(line, marks, 123456, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
