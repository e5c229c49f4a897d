package crashtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the driver store uses, to age the schema

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestHostileLines appends lines that are not one JSON object each and
// checks that each is refused with its typed error while the file and the
// index stay exactly as they were, a good line in the same call included.
func TestHostileLines(t *testing.T) {
	good := []byte(`{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"good"}]}}`)
	tests := []struct {
		name string
		line []byte
		want error
	}{
		{"malformed JSON", []byte(`{"type":"event_msg","payload":{"type":"x"`), rollout.ErrInvalidJSON},
		{"trailing garbage", []byte(`{"type":"event_msg","payload":{}} x`), rollout.ErrInvalidJSON},
		{"array", []byte(`[{"type":"event_msg","payload":{}}]`), rollout.ErrNotObject},
		{"string", []byte(`"event_msg"`), rollout.ErrNotObject},
		{"number", []byte(`42`), rollout.ErrNotObject},
		{"null", []byte(`null`), rollout.ErrNotObject},
		{"raw newline", []byte("{\"type\":\"event_msg\",\n\"payload\":{}}"), rollout.ErrRawNewline},
		{"raw newline in string", []byte("{\"type\":\"event_msg\",\"payload\":{\"text\":\"a\nb\"}}"), rollout.ErrRawNewline},
		{"invalid UTF-8", []byte("{\"type\":\"event_msg\",\"payload\":{\"text\":\"\xff\xfe\"}}"), rollout.ErrInvalidUTF8},
		{"no type", []byte(`{"payload":{}}`), rollout.ErrMissingType},
		{"empty", []byte(``), rollout.ErrInvalidJSON},
	}
	root := t.TempDir()
	m, _ := openManager(t, root)
	th := startThread(t, m, "first")
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, rows := snapshotFiles(t, root), snapshotIndex(t, m)
			_, err := m.AppendLines(ctx, th.ID, [][]byte{good, tt.line})
			if !errors.Is(err, manager.ErrInvalidItem) || !errors.Is(err, tt.want) {
				t.Errorf("AppendLines(%q) = %v, want an error wrapping ErrInvalidItem and %v", tt.line, err, tt.want)
			}
			unchanged(t, m, root, files, rows)
		})
	}
}

// TestHostileItems appends items whose payload is hostile.
func TestHostileItems(t *testing.T) {
	tests := []struct {
		name string
		item rollout.Item
		want error
	}{
		{"malformed payload", rollout.Item{Type: rollout.TypeEventMsg, Payload: []byte(`{"type":`)}, rollout.ErrInvalidJSON},
		{"array payload", rollout.Item{Type: rollout.TypeEventMsg, Payload: []byte(`[1,2]`)}, rollout.ErrNotObject},
		{"string payload", rollout.Item{Type: rollout.TypeEventMsg, Payload: []byte(`"text"`)}, rollout.ErrNotObject},
		{"number payload", rollout.Item{Type: rollout.TypeEventMsg, Payload: []byte(`3.5`)}, rollout.ErrNotObject},
		{"raw newline", rollout.Item{Type: rollout.TypeEventMsg, Payload: []byte("{\"a\":\n1}")}, rollout.ErrRawNewline},
		{"invalid UTF-8 payload", rollout.Item{Type: rollout.TypeEventMsg, Payload: []byte("{\"a\":\"\xc3\x28\"}")}, rollout.ErrInvalidUTF8},
		{"invalid UTF-8 type", rollout.Item{Type: "event\xff", Payload: []byte(`{}`)}, rollout.ErrInvalidUTF8},
		{"no type", rollout.Item{Payload: []byte(`{}`)}, rollout.ErrMissingType},
	}
	root := t.TempDir()
	m, _ := openManager(t, root)
	th := startThread(t, m, "first")
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, rows := snapshotFiles(t, root), snapshotIndex(t, m)
			_, err := m.Append(ctx, th.ID, []rollout.Item{userItem("good"), tt.item})
			if !errors.Is(err, manager.ErrInvalidItem) || !errors.Is(err, tt.want) {
				t.Errorf("Append(%+v) = %v, want an error wrapping ErrInvalidItem and %v", tt.item, err, tt.want)
			}
			unchanged(t, m, root, files, rows)
		})
	}
}

// TestLineOverMaxLineSize appends one line longer than rollout.MaxLineSize
// (300 MB against 256 MiB). It must be refused with a clear error and the
// thread left as it was: a line the Reader cannot read would make the
// thread unreadable and un-appendable from then on.
func TestLineOverMaxLineSize(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 300 MB line")
	}
	root := t.TempDir()
	m, _ := openManager(t, root)
	th := startThread(t, m, "first")
	ctx := context.Background()
	files, rows := snapshotFiles(t, root), snapshotIndex(t, m)

	const size = 300 << 20
	prefix := `{"timestamp":"2026-04-20T10:15:30.118Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"`
	suffix := `"}]}}`
	huge := make([]byte, 0, size)
	huge = append(huge, prefix...)
	huge = append(huge, bytes.Repeat([]byte{'a'}, size-len(prefix)-len(suffix))...)
	huge = append(huge, suffix...)

	_, err := m.AppendLines(ctx, th.ID, [][]byte{huge})
	huge = nil
	if err == nil {
		// Show what accepting it leads to before failing.
		_, nextErr := m.Append(ctx, th.ID, []rollout.Item{userItem("after the huge line")})
		_, _, scanErr := indexer.ScanFile(ctx, rolloutfs.Local{Root: root}, th.RolloutPath)
		t.Fatalf("a %d-byte line (MaxLineSize %d) was accepted; the next append then fails with %v and a scan of the file with %v",
			size, rollout.MaxLineSize, nextErr, scanErr)
	}
	if !errors.Is(err, manager.ErrInvalidItem) || !errors.Is(err, rollout.ErrLineTooLong) {
		t.Errorf("AppendLines(300 MB line) = %v, want an error wrapping ErrInvalidItem and ErrLineTooLong", err)
	}
	if !strings.Contains(err.Error(), "256 MiB") && !strings.Contains(err.Error(), fmt.Sprint(rollout.MaxLineSize)) {
		t.Errorf("AppendLines(300 MB line) = %v, want the error to name the limit", err)
	}
	unchanged(t, m, root, files, rows)
}

// TestUnknownTypeKeptVerbatim appends lines of a type spool does not know,
// with odd spacing and unknown members: they are kept byte for byte and
// read back as written.
func TestUnknownTypeKeptVerbatim(t *testing.T) {
	lines := []string{
		`{"timestamp":"2026-04-20T10:15:31.000Z","type":"future_item","payload":{"nested":[1,2.50,{"x":null}],"u":"\u00e9"},"extra":true}`,
		`{ "timestamp" : "2026-04-20T10:15:32Z" , "type":"weird" , "payload" : { } , "z" : [ ] }`,
		`{"type":"no_timestamp","payload":{"k":"v"}}`,
	}
	root := t.TempDir()
	m, _ := openManager(t, root)
	th := startThread(t, m, "first")
	ctx := context.Background()
	before := readAll(t, m, th.ID)

	raw := make([][]byte, len(lines))
	for i, l := range lines {
		raw[i] = []byte(l)
	}
	res, err := m.AppendLines(ctx, th.ID, raw)
	if err != nil {
		t.Fatalf("AppendLines(unknown types) = %v", err)
	}
	if res.Thread.UserMessageCount != 1 {
		t.Errorf("user messages = %d, want 1", res.Thread.UserMessageCount)
	}
	got := readAll(t, m, th.ID)
	if !bytes.HasPrefix(got, before) {
		t.Fatalf("history before the append changed")
	}
	added := bytes.SplitAfter(got[len(before):], []byte("\n"))
	if len(added) != len(lines)+1 || len(added[len(lines)]) != 0 {
		t.Fatalf("read back %d lines, want %d: %q", len(added)-1, len(lines), got[len(before):])
	}
	for i, l := range lines[:2] {
		if string(added[i]) != l+"\n" {
			t.Errorf("line %d read back as %q, want %q", i, added[i], l+"\n")
		}
		if res.Offsets[i] != int64(len(before)+len(bytes.Join(added[:i], nil))) {
			t.Errorf("line %d offset %d does not match where it was read back", i, res.Offsets[i])
		}
	}
	// A line without a timestamp gets one, and is otherwise kept.
	if last := string(added[2]); !strings.HasPrefix(last, `{"timestamp":"`) || !strings.HasSuffix(last, `"type":"no_timestamp","payload":{"k":"v"}}`+"\n") {
		t.Errorf("line without timestamp read back as %q", last)
	}
	// Reopening the root keeps them, and the index agrees with the file.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	verifyRoot(t, root)
}

// verifyRoot opens the index of root (no manager may hold it) and requires
// that indexer.Verify finds no drift.
func verifyRoot(t *testing.T, root string) indexer.VerifyReport {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(root, manager.IndexFile))
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	defer st.Close()
	rep, err := indexer.Verify(ctx, st, rolloutfs.Local{Root: root})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, d := range rep.Drifts {
		t.Errorf("drift: %v", d)
	}
	return rep
}

// TestRolloutsThatAreNotThreads places a file without session_meta and
// one whose meta id disagrees with its name in the root: Open still
// opens, reports both, indexes neither and leaves them untouched.
func TestRolloutsThatAreNotThreads(t *testing.T) {
	root := t.TempDir()
	noMetaID, wrongID, otherID := uuid.NewString(), uuid.NewString(), uuid.NewString()
	noMeta := rolloutRel(t, noMetaID)
	writeRollout(t, root, noMeta, `{"timestamp":"2026-04-20T10:15:31.000Z","type":"event_msg","payload":{"type":"user_message","message":"hi"}}`+"\n")
	wrong := rolloutRel(t, wrongID)
	writeRollout(t, root, wrong, metaLine(t, otherID)+`{"timestamp":"2026-04-20T10:15:31.000Z","type":"event_msg","payload":{}}`+"\n")
	files := snapshotFiles(t, root)

	ctx := context.Background()
	for _, tt := range []struct {
		rel  string
		want error
	}{{noMeta, indexer.ErrNoMeta}, {wrong, indexer.ErrIDMismatch}} {
		if _, _, err := indexer.ScanFile(ctx, rolloutfs.Local{Root: root}, tt.rel); !errors.Is(err, tt.want) {
			t.Errorf("ScanFile(%s) = %v, want %v", tt.rel, err, tt.want)
		}
	}

	m, logs := openManager(t, root)
	for _, id := range []string{noMetaID, wrongID, otherID} {
		if _, err := m.Get(ctx, id); !errors.Is(err, manager.ErrNotFound) {
			t.Errorf("Get(%s) = %v, want ErrNotFound", id, err)
		}
	}
	if rows := snapshotIndex(t, m); len(rows.Threads) != 0 {
		t.Errorf("index holds %d threads, want 0", len(rows.Threads))
	}
	for _, rel := range []string{noMeta, wrong} {
		if !strings.Contains(logs.String(), path.Base(rel)) {
			t.Errorf("open did not report %s; log:\n%s", rel, logs)
		}
	}
	unchanged(t, m, root, files, snapshotIndex(t, m))

	// The indexer reports them too, as problems, and indexes nothing.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(root, manager.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sum, err := indexer.Sync(ctx, st, rolloutfs.Local{Root: root}, indexer.SyncOptions{Full: true})
	if err != nil {
		t.Fatalf("Sync = %v", err)
	}
	reported := map[string]bool{}
	for _, p := range sum.Problems {
		reported[p.Path] = true
	}
	if !reported[noMeta] || !reported[wrong] || sum.Scanned != 0 {
		t.Errorf("Sync: scanned %d, problems %v; want both files reported and none indexed", sum.Scanned, sum.Problems)
	}
}

// TestDuplicateIDs places the same thread in sessions/ and in
// archived_sessions/: it is indexed once, from the same file every time
// (the live one), and the other file is reported.
func TestDuplicateIDs(t *testing.T) {
	root := t.TempDir()
	id := uuid.NewString()
	live := rolloutRel(t, id)
	archived := rollout.ArchivedPath(path.Base(live))
	body := metaLine(t, id) + `{"timestamp":"2026-04-20T10:15:31.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hello"}]}}` + "\n"
	writeRollout(t, root, live, body)
	writeRollout(t, root, archived, body+`{"timestamp":"2026-04-20T10:15:32.000Z","type":"event_msg","payload":{}}`+"\n")
	files := snapshotFiles(t, root)

	for attempt := range 3 {
		m, logs := openManager(t, root)
		rows := snapshotIndex(t, m)
		if len(rows.Threads) != 1 || rows.Threads[0].ID != id {
			t.Fatalf("attempt %d: index holds %+v, want thread %s once", attempt, rows.Threads, id)
		}
		if got := rows.Threads[0].RolloutPath; got != live {
			t.Errorf("attempt %d: indexed from %s, want the live file %s", attempt, got, live)
		}
		if !strings.Contains(logs.String(), path.Base(archived)) || !strings.Contains(logs.String(), indexer.ProblemDuplicate) {
			t.Errorf("attempt %d: the duplicate was not reported; log:\n%s", attempt, logs)
		}
		unchanged(t, m, root, files, rows)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		// Rebuild from scratch: the same file must win.
		removeIndex(t, filepath.Join(root, manager.IndexFile))
	}
}

// TestPathTricksInIDs passes ids and paths that try to leave the root to
// every manager call that takes one.
func TestPathTricksInIDs(t *testing.T) {
	root := t.TempDir()
	m, _ := openManager(t, root)
	th := startThread(t, m, "first")
	ctx := context.Background()
	files, rows := snapshotFiles(t, root), snapshotIndex(t, m)
	bad := []string{
		"../../../etc/passwd",
		"/etc/passwd",
		"../" + th.ID,
		th.ID + "/../" + th.ID,
		"/" + th.ID[1:],
		"..%2f..%2fetc%2fpasswd",
		th.ID + "\x00",
		"",
	}
	n := 0
	calls := map[string]func(id string) error{
		"Get":    func(id string) error { _, err := m.Get(ctx, id); return err },
		"Resume": func(id string) error { _, err := m.Resume(ctx, id); return err },
		"Append": func(id string) error { _, err := m.Append(ctx, id, []rollout.Item{userItem("x")}); return err },
		"Fork":   func(id string) error { _, err := m.Fork(ctx, id, manager.ForkOptions{}); return err },
		"ForkAt": func(id string) error {
			_, err := m.Fork(ctx, id, manager.ForkOptions{BeforeUserMessage: &n})
			return err
		},
		"Rename":    func(id string) error { _, err := m.Rename(ctx, id, "x"); return err },
		"Archive":   func(id string) error { _, err := m.Archive(ctx, id); return err },
		"Unarchive": func(id string) error { _, err := m.Unarchive(ctx, id); return err },
		"Delete":    func(id string) error { return m.Delete(ctx, id) },
		"ReadFrom": func(id string) error {
			rc, err := m.ReadFrom(ctx, id, -1)
			if err == nil {
				rc.Close()
			}
			return err
		},
		"Ancestors": func(id string) error { _, err := m.Ancestors(ctx, id); return err },
	}
	names := make([]string, 0, len(calls))
	for name := range calls {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, id := range bad {
			if err := calls[name](id); !errors.Is(err, manager.ErrInvalidID) {
				t.Errorf("%s(%q) = %v, want ErrInvalidID", name, id, err)
			}
		}
	}
	for _, p := range []string{
		"/etc/passwd",
		"../../etc/passwd",
		"sessions/../../" + path.Base(th.RolloutPath),
		filepath.Join(root, "..", path.Base(th.RolloutPath)),
		"spool.db",
		"sessions/2026/01/01/not-a-rollout.jsonl",
	} {
		if _, err := m.ResumePath(ctx, p); !errors.Is(err, manager.ErrInvalidPath) {
			t.Errorf("ResumePath(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	unchanged(t, m, root, files, rows)
}

// TestForkOutOfRange forks before user messages that do not exist.
func TestForkOutOfRange(t *testing.T) {
	root := t.TempDir()
	m, _ := openManager(t, root)
	th := startThread(t, m, "one", "two")
	ctx := context.Background()
	files, rows := snapshotFiles(t, root), snapshotIndex(t, m)
	for _, n := range []int{2, 3, 1 << 30, -1, -2} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			_, err := m.Fork(ctx, th.ID, manager.ForkOptions{BeforeUserMessage: &n})
			var oor *manager.OutOfRangeError
			if !errors.Is(err, manager.ErrOutOfRange) || !errors.As(err, &oor) {
				t.Fatalf("Fork(before %d) = %v, want an *OutOfRangeError", n, err)
			}
			if oor.Count != 2 || oor.Requested != n {
				t.Errorf("Fork(before %d): error says count %d requested %d, want 2 and %d", n, oor.Count, oor.Requested, n)
			}
			if !strings.Contains(err.Error(), "2 user messages") {
				t.Errorf("Fork(before %d) = %q, want the message to name the count", n, err)
			}
			unchanged(t, m, root, files, rows)
		})
	}
}

// TestSecondOpenIsLocked opens a root twice in one process.
func TestSecondOpenIsLocked(t *testing.T) {
	root := t.TempDir()
	m, _ := openManager(t, root)
	startThread(t, m, "one")
	files := snapshotFiles(t, root)
	_, err := manager.Open(context.Background(), manager.Options{Root: root})
	var held *manager.LockedError
	if !errors.Is(err, manager.ErrLocked) || !errors.As(err, &held) {
		t.Fatalf("second Open = %v, want a *LockedError wrapping ErrLocked", err)
	}
	if want := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(held.Holder, want) || !strings.Contains(err.Error(), want) {
		t.Errorf("second Open = %q (holder %q), want the holder named (%s)", err, held.Holder, want)
	}
	unchanged(t, m, root, files, snapshotIndex(t, m))
}

// TestUnusableIndex replaces the index with garbage, or marks it as
// written by a newer schema: Open refuses with a typed error and touches no
// rollout; deleting the index and opening again (or a full indexer.Sync on
// a fresh index) brings every thread back.
func TestUnusableIndex(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dbPath string)
		want    error
		rebuild func(t *testing.T, root string)
	}{
		{"garbage", writeGarbage, store.ErrCorrupt, rebuildByOpen},
		{"garbage, rebuilt by Sync", writeGarbage, store.ErrCorrupt, rebuildBySync},
		{"newer schema", bumpSchema, store.ErrSchemaTooNew, rebuildByOpen},
		{"newer schema, rebuilt by Sync", bumpSchema, store.ErrSchemaTooNew, rebuildBySync},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			ctx := context.Background()
			m, err := manager.Open(ctx, manager.Options{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			parent := startThread(t, m, "one", "two", "three")
			zero := 1
			if _, err := m.Fork(ctx, parent.ID, manager.ForkOptions{BeforeUserMessage: &zero, Name: "fork"}); err != nil {
				t.Fatal(err)
			}
			archived := startThread(t, m, "old")
			if _, err := m.Archive(ctx, archived.ID); err != nil {
				t.Fatal(err)
			}
			rows := snapshotIndex(t, m)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			files := snapshotFiles(t, root)

			dbPath := filepath.Join(root, manager.IndexFile)
			tt.damage(t, dbPath)
			_, err = manager.Open(ctx, manager.Options{Root: root})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open on a damaged index = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "reindex") {
				t.Errorf("Open = %q, want it to say how to rebuild", err)
			}
			tt.rebuild(t, root)

			m2, _ := openManager(t, root)
			if got := snapshotIndex(t, m2); !sameThreads(got, rows) {
				t.Errorf("after the rebuild:\n got %+v\nwant %+v", got, rows)
			}
			unchanged(t, m2, root, files, snapshotIndex(t, m2))
		})
	}
}

func writeGarbage(t *testing.T, dbPath string) {
	t.Helper()
	removeIndex(t, dbPath)
	garbage := bytes.Repeat([]byte("this is not a SQLite database \x00\xff"), 4096)
	if err := os.WriteFile(dbPath, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
}

func bumpSchema(t *testing.T, dbPath string) {
	t.Helper()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)`); err != nil {
		t.Fatal(err)
	}
}

func removeIndex(t *testing.T, dbPath string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

func rebuildByOpen(t *testing.T, root string) {
	t.Helper()
	removeIndex(t, filepath.Join(root, manager.IndexFile))
}

func rebuildBySync(t *testing.T, root string) {
	t.Helper()
	ctx := context.Background()
	removeIndex(t, filepath.Join(root, manager.IndexFile))
	st, err := store.Open(ctx, filepath.Join(root, manager.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := indexer.Sync(ctx, st, rolloutfs.Local{Root: root}, indexer.SyncOptions{Full: true}); err != nil {
		t.Fatalf("Sync(Full) = %v", err)
	}
}

// sameThreads compares two snapshots on what a rebuild must restore:
// every column read from the files (the file mtime and the archive time
// come from the file system, which the rebuild reads again).
func sameThreads(a, b indexRows) bool {
	if len(a.Threads) != len(b.Threads) {
		return false
	}
	for i := range a.Threads {
		x, y := a.Threads[i], b.Threads[i]
		if x != y {
			return false
		}
		if !slices.Equal(a.Messages[x.ID], b.Messages[x.ID]) {
			return false
		}
	}
	return true
}
