package indexer

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

func TestWalk(t *testing.T) {
	root := testHome(t)
	archived := rollout.ArchivedSessionsDir + "/rollout-2026-06-01T08-00-00-" + idX + ".jsonl"
	writeRollout(t, root, archived, metaLine("2026-06-01T08:00:00.000Z", idX, ""))
	for _, junk := range []string{
		relA + TornSuffix + "123",                             // a repair side file
		"sessions/2026/05/01/notes.txt",                       // not a rollout
		"sessions/rollout-bad-id.jsonl",                       // no id
		"other/rollout-2026-06-01T08-00-00-" + idY + ".jsonl", // outside the layout
	} {
		writeRollout(t, root, junk, "x\n")
	}
	got, err := Walk(context.Background(), rolloutfs.Local{Root: root})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	want := []string{archived, relA, relB, relC}
	if !slices.Equal(got, want) {
		t.Fatalf("Walk = %v, want %v", got, want)
	}

	empty := t.TempDir()
	if got, err := Walk(context.Background(), rolloutfs.Local{Root: empty}); err != nil || len(got) != 0 {
		t.Fatalf("Walk(empty root) = %v, %v, want nothing", got, err)
	}
	if _, err := Walk(context.Background(), rolloutfs.Local{Root: filepath.Join(empty, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Walk(missing root) err = %v, want ErrNotExist", err)
	}
}

// TestSyncChildBeforeParent indexes a fork whose file is found (and
// written) before its parent's: lineage comes from the fork's own file, so
// the order does not matter.
func TestSyncChildBeforeParent(t *testing.T) {
	root := t.TempDir()
	const ts = "2026-06-01T08:00:00.000Z"
	// The child's name sorts first: it sits in an earlier date folder.
	childRel := "sessions/2026/06/01/rollout-2026-06-01T08-00-00-" + idY + ".jsonl"
	parentRel := "sessions/2026/06/02/rollout-2026-06-02T08-00-00-" + idX + ".jsonl"
	grandRel := "sessions/2026/06/01/rollout-2026-06-01T07-00-00-" + idZ + ".jsonl"
	writeRollout(t, root, parentRel, metaLine(ts, idX, ""), userLine(ts, "parent question"))
	writeRollout(t, root, childRel, metaLine(ts, idY, idX), metaLine(ts, idX, ""), userLine(ts, "parent question"))
	writeRollout(t, root, grandRel, metaLine(ts, idZ, idY), metaLine(ts, idY, idX), metaLine(ts, idX, ""), userLine(ts, "parent question"))

	st := openStore(t)
	sum := mustSync(t, st, root, SyncOptions{Workers: 1, BatchSize: 1})
	if sum.Scanned != 3 {
		t.Fatalf("Scanned = %d, want 3", sum.Scanned)
	}
	if got := ancestorIDs(t, st, idY); !slices.Equal(got, []string{idX}) {
		t.Errorf("ancestors of child = %v, want [%s]", got, idX)
	}
	if got := ancestorIDs(t, st, idZ); !slices.Equal(got, []string{idY, idX}) {
		t.Errorf("ancestors of grandchild = %v, want [%s %s]", got, idY, idX)
	}
	desc, err := st.Descendants(context.Background(), idX)
	if err != nil {
		t.Fatal(err)
	}
	if len(desc) != 2 || desc[0].ID != idY || desc[0].Depth != 1 || desc[1].ID != idZ || desc[1].Depth != 2 {
		t.Errorf("descendants of parent = %+v, want %s at 1 and %s at 2", desc, idY, idZ)
	}
	mustVerifyClean(t, st, root)
}

// TestSyncIncremental walks a root through the changes Sync must notice
// without rescanning everything.
func TestSyncIncremental(t *testing.T) {
	ctx := context.Background()
	root := testHome(t)
	st := openStore(t)

	first := mustSync(t, st, root, SyncOptions{})
	if first.Files != 3 || first.Scanned != 3 || first.Skipped != 0 || first.UserMessages != 7 {
		t.Fatalf("first sync = %+v, want 3 files scanned, 7 user messages", first)
	}
	if first.BytesRead != 1643+1837+2369 {
		t.Fatalf("first sync read %d bytes, want %d", first.BytesRead, 1643+1837+2369)
	}
	mustVerifyClean(t, st, root)

	t.Run("unchanged files are skipped", func(t *testing.T) {
		sum := mustSync(t, st, root, SyncOptions{})
		if sum.Skipped != 3 || sum.Scanned != 0 || sum.CaughtUp != 0 || sum.BytesRead != 0 {
			t.Fatalf("sync = %+v, want 3 skipped and nothing read", sum)
		}
	})

	t.Run("grown file is read from its indexed size", func(t *testing.T) {
		added := userLine("2026-05-01T09:10:00.000Z", "Fourth question") + assistantLine("2026-05-01T09:10:01.000Z", "Fourth answer")
		appendTo(t, root, relA, added)
		sum := mustSync(t, st, root, SyncOptions{})
		if sum.CaughtUp != 1 || sum.Skipped != 2 || sum.Scanned != 0 {
			t.Fatalf("sync = %+v, want 1 caught up, 2 skipped", sum)
		}
		size := fileSize(t, root, relA)
		if sum.BytesRead != int64(len(added)) || sum.BytesRead >= size {
			t.Fatalf("read %d bytes, want %d (less than the file's %d)", sum.BytesRead, len(added), size)
		}
		if sum.Lines != 2 || sum.UserMessages != 1 {
			t.Fatalf("read %d lines, %d user messages, want 2, 1", sum.Lines, sum.UserMessages)
		}
		th, err := st.Get(ctx, idA)
		if err != nil {
			t.Fatal(err)
		}
		if th.UserMessageCount != 4 || th.IndexedSize != size {
			t.Fatalf("thread has %d messages, indexed size %d, want 4, %d", th.UserMessageCount, th.IndexedSize, size)
		}
		mustVerifyClean(t, st, root)
	})

	t.Run("rewritten file is rescanned", func(t *testing.T) {
		writeRollout(t, root, relA, metaLine("2026-05-01T09:00:00.000Z", idA, ""), userLine("2026-05-01T09:00:01.000Z", "Only question"))
		sum := mustSync(t, st, root, SyncOptions{})
		if sum.Scanned != 1 || sum.Skipped != 2 {
			t.Fatalf("sync = %+v, want 1 scanned, 2 skipped", sum)
		}
		mustVerifyClean(t, st, root)
	})

	t.Run("archived file moves", func(t *testing.T) {
		archivedRel := rollout.ArchivedSessionsDir + "/" + path.Base(relB)
		if err := os.MkdirAll(filepath.Join(root, rollout.ArchivedSessionsDir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(root, relB), filepath.Join(root, archivedRel)); err != nil {
			t.Fatal(err)
		}
		sum := mustSync(t, st, root, SyncOptions{})
		if sum.Moved != 1 || sum.Scanned != 0 || sum.Deleted != 0 {
			t.Fatalf("sync = %+v, want 1 moved, nothing scanned or deleted", sum)
		}
		th, err := st.Get(ctx, idB)
		if err != nil {
			t.Fatal(err)
		}
		if !th.Archived || th.RolloutPath != archivedRel || th.ArchivedAt == 0 {
			t.Fatalf("thread = archived %v at %d, path %s; want archived at %s", th.Archived, th.ArchivedAt, th.RolloutPath, archivedRel)
		}
		mustVerifyClean(t, st, root)
	})

	t.Run("removed file's row is deleted", func(t *testing.T) {
		if err := os.Remove(filepath.Join(root, relC)); err != nil {
			t.Fatal(err)
		}
		sum := mustSync(t, st, root, SyncOptions{})
		if sum.Deleted != 1 || sum.Files != 2 {
			t.Fatalf("sync = %+v, want 2 files, 1 deleted", sum)
		}
		if _, err := st.Get(ctx, idC); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(deleted) err = %v, want ErrNotFound", err)
		}
		mustVerifyClean(t, st, root)
	})

	t.Run("full rescans everything", func(t *testing.T) {
		sum := mustSync(t, st, root, SyncOptions{Full: true, Workers: 1})
		if sum.Scanned != 2 || sum.Skipped != 0 {
			t.Fatalf("sync = %+v, want 2 scanned", sum)
		}
	})
}

func TestSyncNames(t *testing.T) {
	ctx := context.Background()
	root := testHome(t)
	writeNames := func(lines ...string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, rollout.SessionIndexFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeNames(`{"id":"`+idA+`","thread_name":"old","updated_at":"2026-05-01T09:00:00Z"}`,
		`{"id":"`+idA+`","thread_name":"from index","updated_at":"2026-05-01T09:30:00Z"}`)
	st := openStore(t)
	mustSync(t, st, root, SyncOptions{})
	names := map[string]string{idA: "from index", idB: "", idC: ""}
	for id, want := range names {
		th, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if th.Name != want {
			t.Errorf("name of %s = %q, want %q", id, th.Name, want)
		}
	}

	// A rename recorded only in session_index.jsonl reaches unchanged threads.
	writeNames(`{"id":"`+idA+`","thread_name":"from index","updated_at":"2026-05-01T09:30:00Z"}`,
		`{"id":"`+idB+`","thread_name":"bravo","updated_at":"2026-05-01T10:30:00Z"}`)
	sum := mustSync(t, st, root, SyncOptions{})
	if sum.Renamed != 1 || sum.Skipped != 3 {
		t.Fatalf("sync = %+v, want 1 renamed, 3 skipped", sum)
	}
	th, err := st.Get(ctx, idB)
	if err != nil {
		t.Fatal(err)
	}
	if th.Name != "bravo" {
		t.Fatalf("name of B = %q, want bravo", th.Name)
	}
	mustVerifyClean(t, st, root)
}

func TestSyncDuplicateIDs(t *testing.T) {
	ctx := context.Background()
	root := testHome(t)
	archivedRel := rollout.ArchivedSessionsDir + "/" + path.Base(relA)
	if err := os.MkdirAll(filepath.Join(root, rollout.ArchivedSessionsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(filepath.Join(root, relA), filepath.Join(root, archivedRel)); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	sum := mustSync(t, st, root, SyncOptions{})
	if sum.Files != 4 || sum.Scanned != 3 {
		t.Fatalf("sync = %+v, want 4 files, 3 scanned", sum)
	}
	var dups []Problem
	for _, p := range sum.Problems {
		if p.Kind == ProblemDuplicate {
			dups = append(dups, p)
		}
	}
	if len(dups) != 1 || dups[0].Path != archivedRel || !strings.Contains(dups[0].Detail, relA) {
		t.Fatalf("duplicate problems = %+v, want one for %s naming %s", dups, archivedRel, relA)
	}
	th, err := st.Get(ctx, idA)
	if err != nil {
		t.Fatal(err)
	}
	if th.RolloutPath != relA || th.Archived {
		t.Fatalf("A indexed from %s (archived %v), want the live file %s", th.RolloutPath, th.Archived, relA)
	}
	rep := mustVerifyClean(t, st, root)
	if len(rep.Problems) != 1 {
		t.Fatalf("verify problems = %+v, want the duplicate", rep.Problems)
	}
}

func TestSyncNotAThread(t *testing.T) {
	ctx := context.Background()
	root := testHome(t)
	st := openStore(t)
	mustSync(t, st, root, SyncOptions{})
	// C's file loses its meta line: it no longer holds a thread.
	writeRollout(t, root, relC, userLine("2026-05-01T11:00:00.000Z", "orphan"))
	sum := mustSync(t, st, root, SyncOptions{})
	if sum.Failed != 1 || sum.Deleted != 1 {
		t.Fatalf("sync = %+v, want 1 failed, 1 deleted", sum)
	}
	if _, err := st.Get(ctx, idC); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(C) err = %v, want ErrNotFound", err)
	}
	mustVerifyClean(t, st, root)
}

func TestSyncProgressAndCancel(t *testing.T) {
	root := testHome(t)
	st := openStore(t)
	var calls []SyncProgress
	mustSync(t, st, root, SyncOptions{Full: true, Progress: func(p SyncProgress) { calls = append(calls, p) }})
	if len(calls) != 3 || calls[2].FilesDone != 3 || calls[2].FilesTotal != 3 || calls[2].BytesRead != 1643+1837+2369 {
		t.Fatalf("progress calls = %+v, want 3 ending at 3/3 files", calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Sync(ctx, st, rolloutfs.Local{Root: root}, SyncOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sync(cancelled) err = %v, want context.Canceled", err)
	}
}

// TestSyncCodexHome indexes a copy of the shared Codex-shaped fixtures.
func TestSyncCodexHome(t *testing.T) {
	home := fixtures.CodexHome(t)
	root := t.TempDir()
	copyTree(t, home, root, func(rel string) bool {
		return rel == "app-server-tests-shape" || rel == "README.md"
	})
	ctx := context.Background()
	st := openStore(t)
	sum := mustSync(t, st, root, SyncOptions{})
	if sum.Scanned != 5 || sum.Failed != 0 || len(sum.Problems) != 0 {
		t.Fatalf("sync = %+v, want 5 scanned, no problems", sum)
	}

	const (
		parent   = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
		fork     = "019dab60-0a1b-72c3-8d4e-5f6a7b8c9d0e"
		rollback = "019dab70-1c2d-7e3f-8a4b-9c0d1e2f3a4b"
		compact  = "019dab80-5e6f-7a8b-9c0d-1e2f3a4b5c6d"
		archived = "67e55044-10b1-426f-9247-bb680e5fe0c8"
	)
	tests := []struct {
		id       string
		parentID string
		size     int64
		archived bool
		name     string
		msgs     []wantMsg // text compared by prefix
	}{
		{id: parent, size: 10198, msgs: []wantMsg{{1600, 5, "Add a --verbose flag", false}, {7158, 20, "Also document it in README.md", false}}},
		{id: fork, parentID: parent, size: 7703, msgs: []wantMsg{{2145, 6, "Add a --verbose flag", false}}},
		{id: rollback, size: 6481, msgs: []wantMsg{{913, 3, "What does main.go do?", false}, {4801, 18, "Instead, list the vendor dir", false}}},
		{id: compact, size: 5606, name: "repo layout", msgs: []wantMsg{{587, 2, "Summarize the repo layout", false}, {3959, 13, "Now refactor internal/ into pkg/", false}}},
		{id: archived, size: 577, archived: true, msgs: []wantMsg{{276, 1, "Saved user message", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.id[:8], func(t *testing.T) {
			th, err := st.Get(ctx, tt.id)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if th.ParentID != tt.parentID || th.IndexedSize != tt.size || th.Archived != tt.archived || th.UserMessageCount != len(tt.msgs) {
				t.Errorf("thread = parent %q, size %d, archived %v, %d messages; want %q, %d, %v, %d",
					th.ParentID, th.IndexedSize, th.Archived, th.UserMessageCount, tt.parentID, tt.size, tt.archived, len(tt.msgs))
			}
			if tt.name != "" && th.Name != tt.name {
				t.Errorf("name = %q, want %q", th.Name, tt.name)
			}
			var wantAncestors []string
			if tt.parentID != "" {
				wantAncestors = []string{tt.parentID}
			}
			if got := ancestorIDs(t, st, tt.id); !slices.Equal(got, wantAncestors) {
				t.Errorf("ancestors = %v, want %v", got, wantAncestors)
			}
			msgs, err := st.UserMessages(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(tt.msgs) {
				t.Fatalf("%d user messages, want %d: %+v", len(msgs), len(tt.msgs), msgs)
			}
			for i, w := range tt.msgs {
				m := msgs[i]
				if m.Ordinal != i || m.Offset != w.offset || m.Line != w.line || !strings.HasPrefix(m.Preview, w.text) {
					t.Errorf("message %d = %+v, want offset %d line %d text %q...", i, m, w.offset, w.line, w.text)
				}
			}
		})
	}
	mustVerifyClean(t, st, root)
}

// TestSyncRemovesOnlyUnheldTemps: RemoveTemps removes a temporary file a
// crash left, and leaves one a writer still holds (another process's
// create under way: its flock), without counting or reporting it: beside
// a rollout, and beside session_index.jsonl in the root, where a rewrite
// of the names (a clear, a delete) makes its temporary file.
func TestSyncRemovesOnlyUnheldTemps(t *testing.T) {
	for _, beside := range []string{relA, rollout.SessionIndexFile} {
		t.Run(path.Base(beside), func(t *testing.T) {
			root := t.TempDir()
			writeRollout(t, root, relA, metaLine("2026-05-01T09:00:00.000Z", idA, ""))
			leftover := beside + ".a1" + rolloutfs.TempSuffix
			held := beside + ".b2" + rolloutfs.TempSuffix
			writeRollout(t, root, leftover, `{"half":`)
			writeRollout(t, root, held, `{"half":`)
			f, err := os.Open(filepath.Join(root, filepath.FromSlash(held)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
				t.Fatal(err)
			}
			sum := mustSync(t, openStore(t), root, SyncOptions{RemoveTemps: true})
			if sum.TempsRemoved != 1 || len(sum.Problems) != 0 {
				t.Fatalf("temps removed %d, problems %v; want 1 and none", sum.TempsRemoved, sum.Problems)
			}
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(leftover))); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the leftover: %v, want it removed", err)
			}
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(held))); err != nil {
				t.Fatalf("the held temporary file: %v, want it kept", err)
			}
		})
	}
}

// finishingWriter is a local FS on which every temporary file's writer
// finishes (its name goes) just before a RemoveTemp of it: the sync
// listed the file while a create of another process was under way.
type finishingWriter struct{ rolloutfs.Local }

func (f finishingWriter) RemoveTemp(ctx context.Context, name string) error {
	if err := os.Remove(filepath.Join(f.Root, filepath.FromSlash(name))); err != nil {
		return err
	}
	return f.Local.RemoveTemp(ctx, name)
}

// TestSyncOfATempGoneMeanwhile: a temporary file whose create completes
// between the sync's listing and its removal (another process's create,
// whose temporary file no sync can tell from a leftover before it tries)
// is no problem: it is gone, as the sync wanted. Before, the sync reported
// "remove temporary file: no such file or directory", and reindex, which
// removes temporary files while a server may be creating, exited 1.
func TestSyncOfATempGoneMeanwhile(t *testing.T) {
	root := t.TempDir()
	writeRollout(t, root, relA, metaLine("2026-05-01T09:00:00.000Z", idA, ""))
	writeRollout(t, root, relA+".c3"+rolloutfs.TempSuffix, `{"half":`)
	sum, err := Sync(t.Context(), openStore(t), finishingWriter{rolloutfs.Local{Root: root}}, SyncOptions{RemoveTemps: true})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if sum.TempsRemoved != 0 || len(sum.Problems) != 0 {
		t.Fatalf("temps removed %d, problems %v; want 0 and none", sum.TempsRemoved, sum.Problems)
	}
}
