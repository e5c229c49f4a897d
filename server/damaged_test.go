package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/server"
)

// TestDamagedCompressedRollout: a thread indexed from its .jsonl.zst whose
// file is then cut short on disk answers the reads that decode it 409
// broken_chain, saying the file is damaged, rather than a bare 500.
func TestDamagedCompressedRollout(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	m, err := manager.Open(ctx, manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	th, err := m.Start(ctx, manager.StartOptions{Cwd: "/w"})
	if err != nil {
		t.Fatal(err)
	}
	var items []rollout.Item
	for i := range 200 { // more than one zstd block
		items = append(items, rollout.Item{Type: rollout.TypeResponseItem, Payload: []byte(`{"type":"message","role":"user","content":[{"type":"input_text","text":"` + strings.Repeat("prompt ", 50) + string(rune('a'+i%26)) + `"}]}`)})
	}
	if _, err := m.Append(ctx, th.ID, items); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	zrel := fixtures.CompressRollout(t, root, th.RolloutPath)

	e := newEnvWith(t, server.Config{}, manager.Options{Root: root})
	zabs := filepath.Join(root, filepath.FromSlash(zrel))
	info, err := os.Stat(zabs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(zabs, info.Size()/2); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/threads/" + th.ID + "/turns/150", "/v1/threads/" + th.ID + "/turns?view=full&cursor=150"} {
		body := wantError(t, e.do("GET", path, "", nil), http.StatusConflict, server.CodeBrokenChain)
		if !strings.Contains(body.Error.Message, "damaged") || strings.Contains(body.Error.Message, root) {
			t.Errorf("GET %s: message %q, want it to say the file is damaged, without the server's root", path, body.Error.Message)
		}
	}
}
