// Package testbin builds this module's commands for tests that run them as
// separate processes, the way users run them.
package testbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
)

// Build compiles the Go package pkg (an import path, or a directory
// relative to the test's package) into dir and returns the binary's path,
// named after the package's last element. The error carries the
// compiler's output.
func Build(ctx context.Context, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, path.Base(filepath.ToSlash(pkg)))
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// Run is a TestMain body for a package whose tests all run one command:
// it builds pkg into a temporary directory, sets *bin to the binary, runs
// the tests and removes the directory. It returns the exit code for
// os.Exit, 2 when the build failed.
func Run(m *testing.M, pkg string, bin *string) int {
	dir, err := os.MkdirTemp("", "testbin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(context.Background(), dir, pkg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return m.Run()
}
