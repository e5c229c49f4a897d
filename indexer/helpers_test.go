package indexer

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Threads of testdata/indexer/home.
const (
	idA = "11111111-1111-7111-8111-111111111111"
	idB = "22222222-2222-7222-8222-222222222222" // fork of A
	idC = "33333333-3333-7333-8333-333333333333" // fork of B
)

var (
	relA = "sessions/2026/05/01/rollout-2026-05-01T09-00-00-" + idA + ".jsonl"
	relB = "sessions/2026/05/01/rollout-2026-05-01T10-00-00-" + idB + ".jsonl"
	relC = "sessions/2026/05/01/rollout-2026-05-01T11-00-00-" + idC + ".jsonl"
)

// testHome copies testdata/indexer/home into a temporary root.
func testHome(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	copyTree(t, filepath.Join(fixtures.RepoRoot(t), "testdata", "indexer", "home"), root, nil)
	return root
}

// copyTree copies the regular files under src into dst, skipping the
// relative paths for which skip returns true.
func copyTree(t testing.TB, src, dst string, skip func(rel string) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if skip != nil && skip(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(p, target)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// openStore opens a new index in a temporary directory, closed with the
// test.
func openStore(t testing.TB) *store.Store { return storetest.Open(t) }

// line returns one rollout line (newline included), timestamp first as
// Codex writes it.
func line(ts, typ string, payload any) string {
	b, err := json.Marshal(struct {
		Timestamp string `json:"timestamp"`
		Type      string `json:"type"`
		Payload   any    `json:"payload"`
	}{ts, typ, payload})
	if err != nil {
		panic(err)
	}
	return string(b) + "\n"
}

func metaLine(ts, id, parent string) string {
	p := map[string]any{"id": id, "timestamp": ts, "cwd": "/src/gen", "originator": "test", "cli_version": "1.0.0", "source": "exec"}
	if parent != "" {
		p["forked_from_id"] = parent
	}
	return line(ts, "session_meta", p)
}

func userLine(ts, text string) string {
	return line(ts, "response_item", map[string]any{
		"type": "message", "role": "user",
		"content": []any{map[string]any{"type": "input_text", "text": text}},
	})
}

// echoLine is the user_message event Codex writes after a prompt's
// response_item in a legacy thread: what a thread's preview comes from.
func echoLine(ts, text string) string {
	return line(ts, "event_msg", map[string]any{"type": "user_message", "message": text, "images": []any{}, "local_images": []any{}})
}

func assistantLine(ts, text string) string {
	return line(ts, "response_item", map[string]any{
		"type": "message", "role": "assistant",
		"content": []any{map[string]any{"type": "output_text", "text": text}},
	})
}

func rollbackLine(ts string, turns int) string {
	return line(ts, "event_msg", map[string]any{"type": "thread_rolled_back", "num_turns": turns})
}

func nameLine(ts, id, name string) string {
	return line(ts, "event_msg", map[string]any{"type": "thread_name_updated", "thread_id": id, "thread_name": name})
}

// writeRollout writes lines to root/rel, creating directories.
func writeRollout(t testing.TB, root, rel string, lines ...string) string {
	t.Helper()
	abs := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abs, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return abs
}

// moveRollout renames root/from to root/to (both slash separated under
// root), making to's directory, as an archive by hand does.
func moveRollout(t testing.TB, root, from, to string) {
	t.Helper()
	dst := filepath.Join(root, filepath.FromSlash(to))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, filepath.FromSlash(from)), dst); err != nil {
		t.Fatal(err)
	}
}

// appendTo appends text to root/rel.
func appendTo(t testing.TB, root, rel, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(rel)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, root, rel string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// mustSync runs Sync and fails the test on error.
func mustSync(t testing.TB, st *store.Store, root string, opts SyncOptions) Summary {
	t.Helper()
	sum, err := Sync(context.Background(), st, rolloutfs.Local{Root: root}, opts)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return sum
}

// mustVerifyClean fails the test unless the index agrees with the files.
func mustVerifyClean(t testing.TB, st *store.Store, root string) VerifyReport {
	t.Helper()
	rep, err := Verify(context.Background(), st, rolloutfs.Local{Root: root})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, d := range rep.Drifts {
		t.Errorf("drift: %s", d)
	}
	return rep
}

func ancestorIDs(t testing.TB, st *store.Store, id string) []string {
	t.Helper()
	rels, err := st.Ancestors(context.Background(), id)
	if err != nil {
		t.Fatalf("Ancestors(%s): %v", id, err)
	}
	ids := make([]string, 0, len(rels))
	for _, r := range rels {
		ids = append(ids, r.ID)
	}
	return ids
}
