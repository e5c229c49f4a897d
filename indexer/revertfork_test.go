package indexer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// TestFullRescanRereadsRevertedForksOfChangedBases: a reverted thread is
// indexed from its newest file, a revert segment, whose history_base
// names the thread itself; the messages before the cut lie in its earlier
// files, and for a reference fork in the base its first file continues.
// When a full rescan counts a prompt it did not count before (the rescan
// an upgrade asks for), a reverted thread must hold the messages a rebuild
// from the files gives it, whatever the order the workers read the files
// in: whether the prompt is in its parent (a reverted reference fork, one
// reverted twice, the second time in its first segment, and a reference
// fork of one), in its own first file (a reverted thread), or in its first
// file's copy of its parent's (a reverted copy fork).
func TestFullRescanRereadsRevertedForksOfChangedBases(t *testing.T) {
	const (
		ts     = "2026-11-20T10:00:00.000Z"
		parent = "019dab90-0000-7000-8000-0000000000f1"
		fork   = "019dab90-0000-7000-8000-0000000000f2"
		forkOf = "019dab90-0000-7000-8000-0000000000f3" // a reference fork of fork
	)
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	forkCreated := created.Add(time.Minute)
	for _, tc := range []struct {
		name string
		// write writes the files, and returns those holding the prompt
		// counted only now.
		write       func(t *testing.T, root string) []string
		before, now map[string]int // user messages counted before and now
	}{{
		name: "reverted reference fork",
		write: func(t *testing.T, root string) []string {
			rel, data := writeFirstFile(t, root, parent, created, changingBase(t, ts, parent))
			forkData := withTurns(t, fork, forkCreated, forkMeta(t, ts, fork, parent, int64(len(data)), 4), 5, 2)
			writeFirstFile(t, root, fork, forkCreated, forkData)
			revertOwnTurn(t, root, fork, forkCreated, forkData, 1)
			return []string{rel}
		},
		before: map[string]int{parent: 2, fork: 3},
		now:    map[string]int{parent: 3, fork: 4},
	}, {
		name: "reference fork of a reverted reference fork",
		write: func(t *testing.T, root string) []string {
			rel, data := writeFirstFile(t, root, parent, created, changingBase(t, ts, parent))
			forkData := withTurns(t, fork, forkCreated, forkMeta(t, ts, fork, parent, int64(len(data)), 4), 5, 2)
			writeFirstFile(t, root, fork, forkCreated, forkData)
			_, seg := revertOwnTurn(t, root, fork, forkCreated, forkData, 1)
			next := ordinalOf(t, seg, int64(bytes.IndexByte(seg, '\n')+1)) + 1
			writeFirstFile(t, root, forkOf, forkCreated.Add(48*time.Hour), forkMeta(t, ts, forkOf, fork, int64(len(seg)), next))
			return []string{rel}
		},
		before: map[string]int{parent: 2, fork: 3, forkOf: 3},
		now:    map[string]int{parent: 3, fork: 4, forkOf: 4},
	}, {
		name: "reference fork reverted twice",
		write: func(t *testing.T, root string) []string {
			rel, data := writeFirstFile(t, root, parent, created, changingBase(t, ts, parent))
			forkData := withTurns(t, fork, forkCreated, forkMeta(t, ts, fork, parent, int64(len(data)), 4), 5, 2)
			writeFirstFile(t, root, fork, forkCreated, forkData)
			seg1, seg1Data := revertOwnTurn(t, root, fork, forkCreated, forkData, 1)
			// Two turns in the first segment, the second reverted again.
			next := ordinalOf(t, seg1Data, int64(bytes.IndexByte(seg1Data, '\n')+1)) + 1
			seg1Data = withTurns(t, fork, forkCreated.Add(25*time.Hour), seg1Data, next, 2)
			writeRollout(t, root, seg1, string(seg1Data))
			hist, err := rollout.ScanTurns(bytes.NewReader(seg1Data))
			if err != nil || len(hist.Turns) != 2 {
				t.Fatalf("first segment: %d turns (%v), want 2", len(hist.Turns), err)
			}
			// Codex names a file it cuts in by its segment's uuid.
			cut := hist.Turns[1].Offset
			at := forkCreated.Add(72 * time.Hour)
			meta, err := rollout.SegmentMetaLine(rollout.FormatTimestamp(at), rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
				ID: fork, Cwd: "/src", Originator: "test", CLIVersion: "0.169.0", Source: "cli",
			}}, rollout.HistoryBase{ThreadID: rollout.BaseRef(seg1, fork), EndByteOffset: cut, EndOrdinalExclusive: ordinalOf(t, seg1Data, cut)})
			if err != nil {
				t.Fatal(err)
			}
			name, err := rollout.SegmentFileName(at, fork, "019dab90-9999-7000-8000-0000000000e2")
			if err != nil {
				t.Fatal(err)
			}
			seg2, err := rollout.SessionPath(name)
			if err != nil {
				t.Fatal(err)
			}
			writeRollout(t, root, seg2, string(meta))
			return []string{rel}
		},
		before: map[string]int{parent: 2, fork: 4},
		now:    map[string]int{parent: 3, fork: 5},
	}, {
		name: "reverted thread",
		write: func(t *testing.T, root string) []string {
			data := withTurns(t, parent, created, changingBase(t, ts, parent), 4, 2)
			rel, _ := writeFirstFile(t, root, parent, created, data)
			revertOwnTurn(t, root, parent, created, data, 1)
			return []string{rel}
		},
		before: map[string]int{parent: 3},
		now:    map[string]int{parent: 4},
	}, {
		name: "reverted copy fork",
		write: func(t *testing.T, root string) []string {
			rel, data := writeFirstFile(t, root, parent, created, changingBase(t, ts, parent))
			meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
				ID: fork, ForkedFromID: parent, Timestamp: ts, Cwd: "/src", Source: "cli", HistoryMode: rollout.HistoryPaginated,
			}})
			if err != nil {
				t.Fatal(err)
			}
			// Its meta, then its parent's lines as Codex copies them,
			// numbered on.
			forkData := mustOrdinal(t, string(meta), 0)
			n := int64(1)
			for l := range bytes.Lines(data) {
				var v map[string]any
				if err := json.Unmarshal(l, &v); err != nil {
					t.Fatal(err)
				}
				delete(v, "ordinal")
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				forkData = append(forkData, mustOrdinal(t, string(b)+"\n", n)...)
				n++
			}
			forkData = withTurns(t, fork, forkCreated, forkData, n, 2)
			forkRel, _ := writeFirstFile(t, root, fork, forkCreated, forkData)
			revertOwnTurn(t, root, fork, forkCreated, forkData, 1)
			return []string{rel, forkRel}
		},
		before: map[string]int{parent: 2, fork: 3},
		now:    map[string]int{parent: 3, fork: 4},
	}} {
		for _, run := range []struct {
			workers int
			seed    uint64 // for SyncOptions.Shuffle and a batch size, when not 0
		}{{1, 0}, {2, 0}, {4, 0}, {2, 1}, {2, 2}, {2, 3}} {
			t.Run(fmt.Sprintf("%s, %d workers, seed %d", tc.name, run.workers, run.seed), func(t *testing.T) {
				opts := func() SyncOptions {
					o := SyncOptions{Full: true, Workers: run.workers}
					if run.seed != 0 {
						o.Shuffle = rand.New(rand.NewPCG(run.seed, 0))
						o.BatchSize = int(run.seed)
					}
					return o
				}
				root := t.TempDir()
				rels := tc.write(t, root)
				st := openStore(t)
				mustSync(t, st, root, opts())
				wantCounts(t, st, "older index", tc.before)

				// This release counts the prompt: the files read as if
				// it did, their sizes unchanged.
				for _, rel := range rels {
					abs := filepath.Join(root, filepath.FromSlash(rel))
					data, err := os.ReadFile(abs)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Contains(data, uncountedPrompt) {
						t.Fatalf("%s holds no uncounted prompt", rel)
					}
					counted := bytes.Repeat([]byte("c"), len(uncountedPrompt))
					if err := os.WriteFile(abs, bytes.ReplaceAll(data, uncountedPrompt, counted), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				mustSync(t, st, root, opts())
				wantCounts(t, st, "after the rescan", tc.now)
				mustVerifyClean(t, st, root)
				compareRebuild(t, st, root)
			})
		}
	}
}

// uncountedPrompt is a user message's text, as a rollout line holds it
// (JSON escapes < and >), that is not counted as a prompt: the tests
// replace it to stand for one an older release did not count.
var uncountedPrompt = []byte(`\u003cenvironment_context\u003ex\u003c/environment_context\u003e`)

// changingBase returns the first file of a paginated thread id of three
// user messages ending at ordinal 3, whose second is uncountedPrompt.
func changingBase(t *testing.T, ts, id string) []byte {
	t.Helper()
	meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: id, Timestamp: ts, Cwd: "/src", Source: "cli", HistoryMode: rollout.HistoryPaginated,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Join([][]byte{mustOrdinal(t, string(meta), 0), mustOrdinal(t, userLine(ts, "first"), 1),
		mustOrdinal(t, userLine(ts, "<environment_context>x</environment_context>"), 2), mustOrdinal(t, userLine(ts, "third"), 3)}, nil)
}

// writeFirstFile writes data as the first file of thread id, created
// then, and returns its path and data.
func writeFirstFile(t *testing.T, root, id string, created time.Time, data []byte) (string, []byte) {
	t.Helper()
	rel, _ := rollout.SessionPath(rollout.FileName(created, id))
	writeRollout(t, root, rel, string(data))
	return rel, data
}

// withTurns returns head followed by n complete paginated turns of thread
// id, numbered from ordinal next on, a minute apart after created.
func withTurns(t *testing.T, id string, created time.Time, head []byte, next int64, n int) []byte {
	t.Helper()
	data := bytes.Clone(head)
	for i := range n {
		start := created.Add(time.Duration(i+1) * time.Minute)
		lines, after, err := rollout.RenderTurn(rollout.HistoryPaginated, next, rollout.TurnSpec{
			ThreadID: id, TurnID: fmt.Sprintf("turn-%s-%d", id[len(id)-2:], i), UserText: fmt.Sprintf("own prompt %d of %s", i, id), AgentText: "answer",
			Cwd: "/src", Model: "gpt-5", Started: start, Completed: start.Add(time.Second),
			UserItemID: fmt.Sprintf("019dab90-2222-7000-8000-0000%s%06d", id[len(id)-4:], i), AgentItemID: fmt.Sprintf("019dab90-3333-7000-8000-0000%s%06d", id[len(id)-4:], i),
		})
		if err != nil {
			t.Fatal(err)
		}
		data, next = append(data, lines...), after
	}
	return data
}

// revertOwnTurn writes a revert segment of thread id, whose first file
// (created then) holds data, that cuts it before its own turn turn, a day
// later, and returns the segment's path and bytes.
func revertOwnTurn(t *testing.T, root, id string, created time.Time, data []byte, turn int) (string, []byte) {
	t.Helper()
	hist, err := rollout.ScanTurns(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Turns) <= turn {
		t.Fatalf("thread %s has %d turns, want more than %d", id, len(hist.Turns), turn)
	}
	rt := &revertedThread{id: id, created: created, data: data, hist: hist}
	return rt.revert(t, root, data, hist.Turns[turn].Offset, "019dab90-9999-7000-8000-0000"+id[len(id)-8:], created.Add(24*time.Hour))
}

// wantCounts fails t for each thread whose user message count is not
// want's.
func wantCounts(t *testing.T, st *store.Store, when string, want map[string]int) {
	t.Helper()
	for id, n := range want {
		if th, err := st.Get(t.Context(), id); err != nil || th.UserMessageCount != n {
			t.Errorf("%s: %s has %d user messages (%v), want %d", when, id, th.UserMessageCount, err, n)
		}
	}
}

// compareRebuild fails t where live disagrees with an index rebuilt from
// the files under root (indextest.Compare, which imports this package).
func compareRebuild(t *testing.T, live *store.Store, root string) {
	t.Helper()
	ctx := t.Context()
	rebuilt := openStore(t)
	mustSync(t, rebuilt, root, SyncOptions{Full: true})
	ids, err := live.IDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rebuiltIDs, err := rebuilt.IDs(ctx); err != nil || fmt.Sprint(ids) != fmt.Sprint(rebuiltIDs) {
		t.Fatalf("thread ids: live %v, rebuilt %v (%v)", ids, rebuiltIDs, err)
	}
	for _, id := range ids {
		for _, q := range []struct {
			name string
			get  func(*store.Store) (any, error)
		}{
			{"row", func(s *store.Store) (any, error) {
				th, err := s.Get(ctx, id)
				th.FileMtime = 0
				return th, err
			}},
			{"user messages", func(s *store.Store) (any, error) { return s.UserMessages(ctx, id) }},
			{"rolled back messages", func(s *store.Store) (any, error) { return s.RolledBack(ctx, id) }},
			{"ancestors", func(s *store.Store) (any, error) {
				rels, err := s.Ancestors(ctx, id)
				ids := make([]string, len(rels))
				for i, r := range rels {
					ids[i] = fmt.Sprintf("%s@%d", r.ID, r.Depth)
				}
				return ids, err
			}},
			{"segments", func(s *store.Store) (any, error) { return s.Segments(ctx, id) }},
		} {
			w, err := q.get(live)
			if err != nil {
				t.Fatal(err)
			}
			g, err := q.get(rebuilt)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", w) != fmt.Sprintf("%+v", g) {
				t.Errorf("thread %s %s differ:\nlive    %+v\nrebuilt %+v", id, q.name, w, g)
			}
		}
	}
}
