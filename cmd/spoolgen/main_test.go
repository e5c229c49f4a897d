package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/testbin"
)

// binary is the spoolgen command built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testbin.Run(m, "github.com/spoolhq/spool/cmd/spoolgen", &binary))
}

// TestExitCodes: asking for help succeeds, as with every other command of
// spool (spoolgen -h exited 2, as a usage error does); a usage error still
// exits 2.
func TestExitCodes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "home")
	tests := []struct {
		name       string
		args       []string
		code       int
		wantStderr string
	}{
		{"-h", []string{"-h"}, 0, "-root"},
		{"--help", []string{"--help"}, 0, "-root"},
		{"no -root", nil, 2, "need -root"},
		{"unknown flag", []string{"-nope"}, 2, "-nope"},
		{"one thread", []string{"-root", root, "-threads", "1"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if exit := (*exec.ExitError)(nil); err != nil && !errors.As(err, &exit) {
				t.Fatalf("run spoolgen: %v", err)
			}
			if got := cmd.ProcessState.ExitCode(); got != tt.code {
				t.Fatalf("spoolgen %q exit %d, want %d (stderr %q)", tt.args, got, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("spoolgen %q stderr %q, want it to mention %q", tt.args, stderr.String(), tt.wantStderr)
			}
		})
	}
}
