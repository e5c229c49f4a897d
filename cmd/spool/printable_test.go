package main

import (
	"strings"
	"testing"
)

func TestPrintable(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "héllo 日本 ok\n\tnext", "héllo 日本 ok\n\tnext"},
		{"escape sequence", "red \x1b[31m", "red ␛[31m"},
		{"carriage return", "a\rb", "a␍b"},
		{"delete", "a\x7fb", "a␡b"},
		{"C1 CSI as UTF-8", "a\u009b2Jb", `a\u009b2Jb`},
		// An 8-bit terminal takes a lone byte 0x9b for CSI.
		{"C1 CSI as a lone byte", "a\x9b2Jb", `a\x9b2Jb`},
		{"other bytes that are not UTF-8 pass", "caf\xe9", "caf\xe9"},
		// Bidirectional controls reorder what follows them on the line
		// (a name that shows as another, "Trojan Source").
		{"right-to-left override", "abc\u202edcba", `abc\u202edcba`},
		{"isolates", "\u2066x\u2067y\u2068z\u2069", `\u2066x\u2067y\u2068z\u2069`},
		{"marks", "a\u200eb\u200fc\u061cd", `a\u200eb\u200fc\u061cd`},
		{"embeddings and pop", "\u202a\u202b\u202c\u202d", `\u202a\u202b\u202c\u202d`},
		{"right-to-left text itself passes", "שלום", "שלום"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := printableString(tt.in); got != tt.want {
				t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if changed := hasControl([]byte(tt.in)); changed != (tt.in != tt.want) {
				t.Errorf("hasControl(%q) = %v, want %v", tt.in, changed, tt.in != tt.want)
			}
		})
	}
	var b strings.Builder
	if n, err := (printable{&b}).Write([]byte("\u202e")); n != len("\u202e") || err != nil {
		t.Errorf("Write = %d, %v; want the length of its input", n, err)
	}
}
