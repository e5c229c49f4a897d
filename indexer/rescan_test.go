package indexer

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestFullRescanRereadsForksOfChangedBases: an index an older release
// made counts a base's user messages by that release's rules (it counted
// a rollback marker in a paginated history, or a line nested deeper than
// Codex reads), and its reference forks inherit those counts. The rescan
// an upgrade asks for (or reindex --full) corrects the base; its forks
// must inherit the corrected messages, as a rebuild from the files gives
// them, whatever the order the workers read the files in.
func TestFullRescanRereadsForksOfChangedBases(t *testing.T) {
	const (
		ts     = "2026-11-20T10:00:00.000Z"
		parent = "019dab90-0000-7000-8000-0000000000c1"
		fork   = "019dab90-0000-7000-8000-0000000000c2"
		forkOf = "019dab90-0000-7000-8000-0000000000c3" // a reference fork of fork
	)
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			root := t.TempDir()
			meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
				ID: parent, Timestamp: ts, Cwd: "/src", Source: "cli", HistoryMode: rollout.HistoryPaginated,
			}})
			if err != nil {
				t.Fatal(err)
			}
			meta = mustOrdinal(t, string(meta), 0)
			// The second prompt as the older release read it (not
			// counted), and as this one does: the same length, so the
			// file's size does not change between the two.
			uncounted := mustOrdinal(t, userLine(ts, "<environment_context>x</environment_context>"), 2)
			text := "a second prompt, counted by now"
			text += strings.Repeat(".", len(uncounted)-len(mustOrdinal(t, userLine(ts, text), 2)))
			counted := mustOrdinal(t, userLine(ts, text), 2)
			if len(uncounted) != len(counted) {
				t.Fatalf("test lines differ in length: %d and %d", len(uncounted), len(counted))
			}
			data := bytes.Join([][]byte{meta, mustOrdinal(t, userLine(ts, "first"), 1), uncounted, mustOrdinal(t, userLine(ts, "third"), 3)}, nil)
			parentRel := writeForkChain(t, root, created, data, parent, fork, forkOf)

			st := openStore(t)
			mustSync(t, st, root, SyncOptions{Full: true, Workers: workers})
			for _, id := range []string{parent, fork, forkOf} {
				if th, err := st.Get(t.Context(), id); err != nil || th.UserMessageCount != 2 {
					t.Fatalf("older index: %s has %d user messages (%v), want 2", id, th.UserMessageCount, err)
				}
			}

			// This release counts the second prompt.
			copy(data[len(meta)+len(mustOrdinal(t, userLine(ts, "first"), 1)):], counted)
			if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(parentRel)), data, 0o644); err != nil {
				t.Fatal(err)
			}
			mustSync(t, st, root, SyncOptions{Full: true, Workers: workers})
			for _, id := range []string{parent, fork, forkOf} {
				if th, err := st.Get(t.Context(), id); err != nil || th.UserMessageCount != 3 {
					t.Errorf("after the rescan: %s has %d user messages (%v), want 3", id, th.UserMessageCount, err)
				}
			}
			mustVerifyClean(t, st, root)
		})
	}
}

// writeForkChain writes under root the paginated thread parent (data,
// ending at ordinal 3), its reference fork fork made whole, and forkOf, a
// reference fork of fork made whole, a minute apart from created, and
// returns parent's path.
func writeForkChain(t *testing.T, root string, created time.Time, data []byte, parent, fork, forkOf string) string {
	t.Helper()
	ts := created.Format("2006-01-02T15:04:05.000Z")
	parentRel, _ := rollout.SessionPath(rollout.FileName(created, parent))
	writeRollout(t, root, parentRel, string(data))
	forkData := forkMeta(t, ts, fork, parent, int64(len(data)), 4)
	forkRel, _ := rollout.SessionPath(rollout.FileName(created.Add(time.Minute), fork))
	writeRollout(t, root, forkRel, string(forkData))
	forkOfRel, _ := rollout.SessionPath(rollout.FileName(created.Add(2*time.Minute), forkOf))
	writeRollout(t, root, forkOfRel, string(forkMeta(t, ts, forkOf, fork, int64(len(forkData)), 5)))
	return parentRel
}

// forkMeta returns the file of a reference fork id of base cut at end,
// whose ordinal there is ord, as Codex 0.169 writes it: its meta alone,
// numbered ord.
func forkMeta(t *testing.T, ts, id, base string, end, ord int64) []byte {
	t.Helper()
	line, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: id, ForkedFromID: base, Timestamp: ts, Cwd: "/src", Source: "cli",
		HistoryMode: rollout.HistoryPaginated, ForkedFromOrdinalExclusive: &ord,
		HistoryBase: &rollout.HistoryBase{ThreadID: base, EndOrdinalExclusive: ord, EndByteOffset: end},
	}})
	if err == nil {
		line, err = rollout.WithOrdinal(line, ord)
	}
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// TestOneFullRescanMendsForksBelowAnEditedBase: user messages of a base
// deleted by hand (the sqlite3 shell) are restored by one full rescan,
// and so are those its reference forks, and theirs, inherit: a fork is
// read once its base is written again, not against the edited rows.
func TestOneFullRescanMendsForksBelowAnEditedBase(t *testing.T) {
	const (
		ts     = "2026-11-20T10:00:00.000Z"
		parent = "019dab90-0000-7000-8000-0000000000d1"
		fork   = "019dab90-0000-7000-8000-0000000000d2"
		forkOf = "019dab90-0000-7000-8000-0000000000d3" // a reference fork of fork
	)
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			ctx := t.Context()
			root := t.TempDir()
			meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
				ID: parent, Timestamp: ts, Cwd: "/src", Source: "cli", HistoryMode: rollout.HistoryPaginated,
			}})
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Join([][]byte{mustOrdinal(t, string(meta), 0), mustOrdinal(t, userLine(ts, "first"), 1),
				mustOrdinal(t, userLine(ts, "second"), 2), mustOrdinal(t, userLine(ts, "third"), 3)}, nil)
			writeForkChain(t, root, created, data, parent, fork, forkOf)

			index := filepath.Join(t.TempDir(), "spool.db")
			st, err := store.Open(ctx, index)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			mustSync(t, st, root, SyncOptions{Full: true, Workers: workers})
			want := map[string]string{}
			for _, id := range []string{parent, fork, forkOf} {
				msgs, err := st.UserMessages(ctx, id)
				if err != nil || len(msgs) != 3 {
					t.Fatalf("user messages of %s = %v, %v; want 3", id, msgs, err)
				}
				want[id] = fmt.Sprint(msgs)
			}

			db, err := sql.Open("sqlite", index+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, `DELETE FROM user_messages WHERE thread_id = ?`, parent); err != nil {
				t.Fatal(err)
			}

			mustSync(t, st, root, SyncOptions{Full: true, Workers: workers})
			for _, id := range []string{parent, fork, forkOf} {
				if msgs, err := st.UserMessages(ctx, id); err != nil || fmt.Sprint(msgs) != want[id] {
					t.Errorf("after one full rescan: user messages of %s = %v, %v; want %s", id, msgs, err, want[id])
				}
			}
			mustVerifyClean(t, st, root)
		})
	}
}

// TestFullSyncReadsAReferenceForkOnce: a full Sync indexes a reference
// fork in the rounds, once its base is written (waitsForBase). Where the
// base had a row already (a rescan of an existing index: reindex --full,
// an upgrade's rescan), the walk's workers read the fork whole only for
// the writer to set the result aside, and each round read it whole again
// until its base was in: a fork with a history of its own was read twice,
// a fork of a fork three times. A fork that waits is now read no further
// than its meta line (and the reader's buffer); the index is the same
// (verify is clean, the chain is inherited).
func TestFullSyncReadsAReferenceForkOnce(t *testing.T) {
	const (
		ts     = "2026-11-20T10:00:00.000Z"
		parent = "019dab90-0000-7000-8000-0000000000e1"
		fork   = "019dab90-0000-7000-8000-0000000000e2"
		forkOf = "019dab90-0000-7000-8000-0000000000e3" // a reference fork of fork
		own    = 64                                     // user lines of each fork's own history, 16 KiB each
	)
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: parent, Timestamp: ts, Cwd: "/src", Source: "cli", HistoryMode: rollout.HistoryPaginated,
	}})
	if err != nil {
		t.Fatal(err)
	}
	parentData := bytes.Join([][]byte{mustOrdinal(t, string(meta), 0), mustOrdinal(t, userLine(ts, "first"), 1),
		mustOrdinal(t, userLine(ts, "second"), 2), mustOrdinal(t, userLine(ts, "third"), 3)}, nil)
	// withOwn returns a fork's meta (numbered first) followed by its own
	// user lines, numbered on.
	withOwn := func(metaLine []byte, first int64) []byte {
		data := slices.Clone(metaLine)
		for i := range int64(own) {
			data = append(data, mustOrdinal(t, userLine(ts, fmt.Sprintf("own prompt %d %s", i, strings.Repeat("x", 16<<10))), first+1+i)...)
		}
		return data
	}
	forkData := withOwn(forkMeta(t, ts, fork, parent, int64(len(parentData)), 4), 4)
	forkOfData := withOwn(forkMeta(t, ts, forkOf, fork, int64(len(forkData)), 5+own), 5+own)

	root := t.TempDir()
	rels := map[string]string{}
	for i, th := range []struct {
		id   string
		data []byte
	}{{parent, parentData}, {fork, forkData}, {forkOf, forkOfData}} {
		rels[th.id], _ = rollout.SessionPath(rollout.FileName(created.Add(time.Duration(i)*time.Minute), th.id))
		writeRollout(t, root, rels[th.id], string(th.data))
	}
	const buffer = 256 << 10 // what a scan reads ahead (rollout.NewReader)
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			st := openStore(t)
			// A rebuild, then a rescan of the index it made (reindex
			// --full, an upgrade's rescan): there every base has a row
			// while the walk reads its forks.
			for _, pass := range []string{"rebuild", "rescan"} {
				fsys := &readCounter{Local: rolloutfs.Local{Root: root}, read: map[string]int64{}}
				sum, err := Sync(t.Context(), st, fsys, SyncOptions{Full: true, Workers: workers})
				if err != nil || sum.Scanned != 3 || sum.Failed != 0 {
					t.Fatalf("%s: scanned %d, failed %d, %v; want 3, 0", pass, sum.Scanned, sum.Failed, err)
				}
				for _, f := range []struct {
					id    string
					data  []byte
					depth int
				}{{fork, forkData, 1}, {forkOf, forkOfData, 2}} {
					// Once whole (and the bytes of its tail sum), and a
					// buffer of its start where it waits: in the walk, and
					// in each round its base is in.
					limit := int64(len(f.data)) + TailBytes + int64(f.depth)*buffer
					if got := fsys.bytesRead(rels[f.id]); got > limit {
						t.Errorf("%s: fork %s: read %d bytes of its %d-byte file, want at most %d (once whole, and where it waits a buffer)", pass, f.id, got, len(f.data), limit)
					}
				}
				if th, err := st.Get(t.Context(), forkOf); err != nil || th.UserMessageCount != 3+2*own {
					t.Errorf("%s: %s has %d user messages (%v), want %d", pass, forkOf, th.UserMessageCount, err, 3+2*own)
				}
				mustVerifyClean(t, st, root)
			}
		})
	}
}

// readCounter is a local FS that counts the bytes read of each file,
// safe for the concurrent use of a Sync's workers.
type readCounter struct {
	rolloutfs.Local
	mu   sync.Mutex       // guards read
	read map[string]int64 // rollout path -> bytes read
}

func (c *readCounter) Open(ctx context.Context, name string) (rolloutfs.ReadFile, error) {
	f, err := c.Local.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return &countedFile{ReadFile: f, c: c, name: name}, nil
}

func (c *readCounter) bytesRead(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read[name]
}

type countedFile struct {
	rolloutfs.ReadFile
	c    *readCounter
	name string
}

func (f *countedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.ReadFile.ReadAt(p, off)
	f.c.mu.Lock()
	f.c.read[f.name] += int64(n)
	f.c.mu.Unlock()
	return n, err
}
