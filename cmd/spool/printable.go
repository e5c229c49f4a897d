package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// printable is a writer for people's eyes: the control characters in what
// it writes (an escape sequence pasted into a prompt, or put in a thread's
// name) are shown as visible symbols instead of reaching the terminal,
// which would act on them, and so are the characters that reorder the
// rest of a line (bidirectional controls: a name shown as another). Newlines
// and tabs pass, and so do bytes that are not UTF-8 but for 0x80–0x9f,
// which an 8-bit terminal takes for C1 controls. JSON and --raw output do
// not go through it: they are for programs, and keep every byte.
//
// Each Write is shown on its own: a character cut between two writes is
// taken for bytes that are not UTF-8.
type printable struct{ w io.Writer }

func (p printable) Write(b []byte) (int, error) {
	if !hasControl(b) {
		return p.w.Write(b)
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		out = appendShown(out, b[i:i+size], r)
		i += size
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// appendShown appends the bytes enc, which decode to r, as printable shows
// them.
func appendShown(out, enc []byte, r rune) []byte {
	switch {
	case r == utf8.RuneError && len(enc) == 1:
		if c := enc[0]; c >= 0x80 && c < 0xa0 {
			return fmt.Appendf(out, "\\x%02x", c) // CSI is 0x9b
		}
		return append(out, enc...) // not UTF-8: passed as it is
	case r == '\n' || r == '\t':
		return append(out, enc...)
	case r < 0x20:
		return utf8.AppendRune(out, 0x2400+r) // ␛ for ESC, ␍ for CR, ...
	case r == 0x7f:
		return utf8.AppendRune(out, '␡')
	case r >= 0x80 && r < 0xa0, isBidiControl(r): // C1 controls (CSI is U+009B)
		return fmt.Appendf(out, "\\u%04x", r)
	}
	return append(out, enc...)
}

// isBidiControl reports whether r is one of Unicode's explicit
// bidirectional formatting characters (UAX #9): marks, embeddings,
// overrides and isolates.
func isBidiControl(r rune) bool {
	switch {
	case r == 0x061c, r == 0x200e, r == 0x200f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// printableString is s as printable writes it, for text that reaches a
// terminal other than through a writer (completion's descriptions).
func printableString(s string) string {
	var b strings.Builder
	printable{&b}.Write([]byte(s)) // a strings.Builder takes every write
	return b.String()
}

// hasControl reports whether b holds anything printable would change.
func hasControl(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 && c < 0xa0 || r >= 0x80 && r < 0xa0 || isBidiControl(r) {
			return true
		}
		i += size
	}
	return false
}
