package manager

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/internal/indextest"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// openTest opens a manager on a fresh root under t.TempDir(), closed with
// the test.
func openTest(t testing.TB, opts ...func(*Options)) *Manager {
	t.Helper()
	o := Options{Root: t.TempDir(), Sync: rolloutfs.SyncNone, Logger: quiet}
	for _, f := range opts {
		f(&o)
	}
	newIndex(t, o)
	m, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// newIndex writes a new index where Open of o looks for one, unless one is
// there (or its folder is not yet), so that Open does not migrate it.
func newIndex(t testing.TB, o Options) {
	t.Helper()
	if o.IndexPath == "" {
		o.IndexPath = filepath.Join(o.Root, IndexFile)
	}
	storetest.Write(t, o.IndexPath)
}

// opener returns a function that opens a manager on root (sync none,
// quiet), for a test that closes and opens it again; the caller closes.
func opener(t *testing.T, root string) func() *Manager {
	return func() *Manager {
		t.Helper()
		m, err := Open(t.Context(), Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return m
	}
}

// quiet drops the manager's logs in tests.
var quiet = slog.New(slog.DiscardHandler)

func item(typ string, payload any) rollout.Item {
	raw, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return rollout.Item{Type: typ, Payload: raw}
}

func message(role, partType, text string) rollout.Item {
	return item(rollout.TypeResponseItem, map[string]any{
		"type": "message", "role": role,
		"content": []map[string]string{{"type": partType, "text": text}},
	})
}

func user(text string) rollout.Item      { return message("user", "input_text", text) }
func assistant(text string) rollout.Item { return message("assistant", "output_text", text) }

func reasoning(text string) rollout.Item {
	return item(rollout.TypeResponseItem, map[string]any{
		"type": "reasoning", "summary": []map[string]string{{"type": "summary_text", "text": text}},
	})
}

func functionCall(name string) rollout.Item {
	return item(rollout.TypeResponseItem, map[string]any{
		"type": "function_call", "name": name, "arguments": "{}", "call_id": "call_" + name,
	})
}

func rollback(turns int) rollout.Item {
	return item(rollout.TypeEventMsg, map[string]any{"type": "thread_rolled_back", "num_turns": turns})
}

// start starts a thread and appends items to it.
func start(t testing.TB, m *Manager, items ...rollout.Item) Thread {
	t.Helper()
	ctx := context.Background()
	th, err := m.Start(ctx, StartOptions{Cwd: "/work", Source: "cli", Originator: "spool_test", ModelProvider: "openai", HistoryMode: legacyMode})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if len(items) == 0 {
		return th
	}
	res, err := m.Append(ctx, th.ID, items)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res.Thread
}

// rebuildIndex returns a new index rebuilt from m's files alone (a full
// indexer.Sync into a new database), closed with the test.
func rebuildIndex(t testing.TB, m *Manager) *store.Store {
	t.Helper()
	return indextest.Rebuild(t, m.Root())
}

// compareRebuilds compares m's index with rebuilds from its files, one of
// them in the workers' order and others in drawn orders
// (indextest.CompareRebuilds), with searches for words.
func compareRebuilds(t testing.TB, m *Manager, words ...string) {
	t.Helper()
	indextest.CompareRebuilds(t, m.store, m.Root(), words...)
}

func readFile(t testing.TB, m *Manager, th Thread) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t testing.TB, rc io.ReadCloser, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lines splits a rollout into its lines, newline kept.
func lines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i < len(b) {
			i++
		}
		out = append(out, b[:i])
		b = b[i:]
	}
	return out
}

func intp(n int) *int { return &n }

// legacyMode starts the threads of tests that look at fork files as
// copies (the seed's cases); the paginated tests start their own.
const legacyMode = "legacy"

// onOpen is a local FS that calls run once, the n-th time file name is
// opened (the first when n is 0 or 1): another call, or a watcher's sync,
// landing in the middle of one.
type onOpen struct {
	rolloutfs.Local
	name  string
	n     int
	opens int
	run   func()
}

func (s *onOpen) Open(ctx context.Context, name string) (rolloutfs.ReadFile, error) {
	if name == s.name && s.run != nil {
		s.opens++
		if s.opens >= s.n {
			run := s.run
			s.run = nil
			run()
		}
	}
	return s.Local.Open(ctx, name)
}

// openOnOpen opens a manager on an onOpen FS, whose name and run the
// caller sets.
func openOnOpen(t *testing.T) (*Manager, *onOpen) {
	t.Helper()
	fsys := &onOpen{}
	m := openTest(t, func(o *Options) {
		fsys.Local = rolloutfs.Local{Root: o.Root}
		o.FS = fsys
	})
	return m, fsys
}
