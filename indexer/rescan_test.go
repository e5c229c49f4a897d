package indexer

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
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
