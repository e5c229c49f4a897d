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
// which would act on them. Newlines and tabs pass. JSON and --raw output
// do not go through it: they are for programs, and keep every byte.
type printable struct{ w io.Writer }

func (p printable) Write(b []byte) (int, error) {
	if !hasControl(b) {
		return p.w.Write(b)
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, b[i]) // not UTF-8: passed as it is
		case r == '\n' || r == '\t':
			out = append(out, b[i])
		case r < 0x20:
			out = utf8.AppendRune(out, 0x2400+r) // ␛ for ESC, ␍ for CR, ...
		case r == 0x7f:
			out = utf8.AppendRune(out, '␡')
		case r >= 0x80 && r < 0xa0: // C1 controls (CSI is U+009B)
			out = fmt.Appendf(out, "\\u%04x", r)
		default:
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// printableString is s as printable writes it, for text that reaches a
// terminal other than through a writer (completion's descriptions).
func printableString(s string) string {
	var b strings.Builder
	printable{&b}.Write([]byte(s)) // a strings.Builder takes every write
	return b.String()
}

// hasControl reports whether b holds a byte printable would change: a C0
// control but newline and tab, DEL, or the lead byte of a C1 control.
func hasControl(b []byte) bool {
	for i, c := range b {
		if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f || c == 0xc2 && i+1 < len(b) && b[i+1] >= 0x80 && b[i+1] < 0xa0 {
			return true
		}
	}
	return false
}
