package shellquote_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/shellquote"
)

// TestJoinReadBackByShell: sh splits what Join wrote into the arguments
// it was given, whatever they hold.
func TestJoinReadBackByShell(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"plain", []string{"/home/me/.codex", "--index", "a=b,c:d@e%f+g"}},
		{"space", []string{"/home/me/My Codex"}},
		{"quotes", []string{`it's "here"`, `'`, `''`}},
		{"shell syntax", []string{"$HOME", "`id`", "a;b", "a|b", "~", "*", "a\\b", "!x", "#c", "(x)", "{a,b}"}},
		{"newline and tab", []string{"a\nb", "c\td"}},
		{"empty", []string{""}},
		{"leading dash", []string{"-x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line := shellquote.Join(tc.args...)
			out, err := exec.Command("sh", "-c", `for a in `+line+`; do printf '%s\0' "$a"; done`).Output()
			if err != nil {
				t.Fatalf("sh on %q: %v", line, err)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			if !slices.Equal(got, tc.args) {
				t.Errorf("sh read %q as %q, want %q", line, got, tc.args)
			}
		})
	}
}
