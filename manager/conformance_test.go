package manager_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/spoolhq/spool/backendtest"
	"github.com/spoolhq/spool/manager"
)

// TestBackendConformance runs the suite every backend passes on the local
// one.
func TestBackendConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) manager.Backend {
		m, err := manager.Open(t.Context(), manager.Options{Root: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	})
}
