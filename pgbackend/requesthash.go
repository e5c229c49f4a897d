package pgbackend

import (
	"crypto/sha256"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/spoolhq/spool/rollout"
)

// itemsHash is the hash that names an append of items to its idempotency
// key: of each item's type, timestamp and payload as fmt's "%q %q %q\n"
// writes them, the form keys stored by earlier versions were made with.
func itemsHash(items []rollout.Item) []byte {
	h := sha256.New()
	for _, it := range items {
		writeQuoted(h, []byte(it.Type), quoteChunk)
		h.Write([]byte{' '})
		writeQuoted(h, []byte(it.Timestamp), quoteChunk)
		h.Write([]byte{' '})
		writeQuoted(h, it.Payload, quoteChunk)
		h.Write([]byte{'\n'})
	}
	return h.Sum(nil)
}

// linesHash is itemsHash for an append of lines, each written as "%q\n".
func linesHash(lines [][]byte) []byte {
	h := sha256.New()
	for _, l := range lines {
		writeQuoted(h, l, quoteChunk)
		h.Write([]byte{'\n'})
	}
	return h.Sum(nil)
}

// quoteChunk is how many bytes of a field writeQuoted quotes at a time.
const quoteChunk = 32 << 10

// writeQuoted writes b as fmt's %q writes it (strconv.Quote) without a
// quoted copy of the whole of b: it quotes up to chunk bytes at a time.
// Quoting is rune by rune (a byte of invalid UTF-8 on its own), so chunks
// quote as the whole does when no cut falls inside a valid UTF-8
// sequence: a cut is moved back to the nearest byte that may start a
// rune, three bytes back at most; when none of them may, no valid
// sequence holds the byte at the cut. chunk must be at least
// utf8.UTFMax.
func writeQuoted(w io.Writer, b []byte, chunk int) {
	buf := make([]byte, 0, min(len(b), chunk)*4+2)
	w.Write([]byte{'"'})
	for len(b) > 0 {
		n := min(len(b), chunk)
		if n < len(b) {
			for m := n; m > 0 && m >= n-(utf8.UTFMax-1); m-- {
				if utf8.RuneStart(b[m]) {
					n = m
					break
				}
			}
		}
		buf = strconv.AppendQuote(buf[:0], string(b[:n]))
		w.Write(buf[1 : len(buf)-1])
		b = b[n:]
	}
	w.Write([]byte{'"'})
}
