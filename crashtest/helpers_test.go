package crashtest

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// openManager opens a manager on root, closed at the end of the test, and
// returns it with the buffer its log goes to.
func openManager(t *testing.T, root string) (*manager.Manager, *fixtures.Buffer) {
	t.Helper()
	logs := &fixtures.Buffer{}
	storetest.Write(t, filepath.Join(root, manager.IndexFile))
	m, err := manager.Open(context.Background(), manager.Options{
		Root:   root,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatalf("open manager on %s: %v", root, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close manager: %v", err)
		}
	})
	return m, logs
}

// snapshotFiles returns the content of every file under root except the
// index and the lock, keyed by slash path: the truth that hostile input
// must not change.
func snapshotFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	files := make(map[string]string)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, manager.IndexFile) || rel == manager.LockFile {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// indexRows is every thread row of an index with its user messages.
type indexRows struct {
	Threads  []manager.Thread
	Messages map[string][]manager.UserMessage
}

// snapshotIndex reads every row the manager's index holds.
func snapshotIndex(t *testing.T, m *manager.Manager) indexRows {
	t.Helper()
	ctx := context.Background()
	rows := indexRows{Messages: make(map[string][]manager.UserMessage)}
	cursor := ""
	for {
		page, err := m.List(ctx, store.ListOptions{Limit: 1000, Cursor: cursor, SortBy: store.SortCreated, Ascending: true})
		if err != nil {
			t.Fatal(err)
		}
		rows.Threads = append(rows.Threads, page.Threads...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	for _, th := range rows.Threads {
		msgs, err := m.UserMessages(ctx, th.ID)
		if err != nil {
			t.Fatal(err)
		}
		rows.Messages[th.ID] = msgs
	}
	return rows
}

// unchanged fails the test when the files or the index rows differ from
// the snapshots taken before.
func unchanged(t *testing.T, m *manager.Manager, root string, files map[string]string, rows indexRows) {
	t.Helper()
	after := snapshotFiles(t, root)
	for name, before := range files {
		if got, ok := after[name]; !ok {
			t.Errorf("file %s is gone", name)
		} else if got != before {
			t.Errorf("file %s changed: %d bytes before, %d after", name, len(before), len(got))
		}
	}
	for name := range after {
		if _, ok := files[name]; !ok {
			t.Errorf("file %s appeared", name)
		}
	}
	if got := snapshotIndex(t, m); !reflect.DeepEqual(got, rows) {
		t.Errorf("index rows changed:\nbefore %+v\nafter  %+v", rows, got)
	}
}

// userItem returns a user message item with text.
func userItem(text string) rollout.Item {
	return rollout.Item{Type: rollout.TypeResponseItem, Payload: []byte(
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"` + text + `"}]}`)}
}

// startThread starts a thread holding the given user messages.
func startThread(t *testing.T, m *manager.Manager, texts ...string) manager.Thread {
	t.Helper()
	ctx := context.Background()
	th, err := m.Start(ctx, manager.StartOptions{Cwd: "/hostile", Originator: "crashtest", HistoryMode: "legacy"})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range texts {
		res, err := m.Append(ctx, th.ID, []rollout.Item{userItem(text)})
		if err != nil {
			t.Fatal(err)
		}
		th = res.Thread
	}
	return th
}

// readAll reads a thread's whole history through the manager.
func readAll(t *testing.T, m *manager.Manager, id string) []byte {
	t.Helper()
	rc, err := m.ReadFrom(context.Background(), id, -1)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return data
}

// writeRollout writes a rollout file under root at rel (slash path) and
// returns its absolute path.
func writeRollout(t *testing.T, root, rel, content string) string {
	t.Helper()
	abs := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abs, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return abs
}

// metaLine returns a session_meta line (with its newline) for id.
func metaLine(t *testing.T, id string) string {
	t.Helper()
	line, err := rollout.NewSessionMetaLine("2026-04-20T10:15:30.118Z", rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: id, Timestamp: "2026-04-20T10:15:30.118Z", Cwd: "/hostile", Originator: "crashtest", Source: "cli",
	}})
	if err != nil {
		t.Fatal(err)
	}
	return string(line)
}

// rolloutRel returns the sessions/ path of a rollout file for id.
func rolloutRel(t *testing.T, id string) string {
	t.Helper()
	rel, err := rollout.SessionPath(rollout.FileName(time.Date(2026, 4, 20, 10, 15, 30, 0, time.UTC), id))
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// forkAt returns fork options cutting before user message *n.
func forkAt(n *int) manager.ForkOptions { return manager.ForkOptions{BeforeUserMessage: n} }
