package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestInterruptedExits130: Ctrl-C (or SIGTERM) before a run is done exits
// 130 and says the run was interrupted, in every mode, as spool does. It
// exited 2, the code of a usage or I/O error, after printing the error of
// whatever write the cancel cut short.
func TestInterruptedExits130(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"sync", nil},
		{"full", []string{"--full"}},
		{"verify", []string{"--verify"}},
		{"repair", []string{"--repair"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := testHome(t)
			if res := runReindex(t, "--root", root); res.code != exitOK {
				t.Fatalf("first reindex: exit %d, stderr %q", res.code, res.stderr)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			var stdout, stderr bytes.Buffer
			code := run(ctx, append([]string{"--root", root}, tt.args...), &stdout, &stderr)
			if code != exitInterrupted || !strings.Contains(stderr.String(), "interrupted") {
				t.Fatalf("interrupted reindex %v: exit %d, stderr %q; want %d and the interrupt named", tt.args, code, stderr.String(), exitInterrupted)
			}
		})
	}
}
