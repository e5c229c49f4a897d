package manager

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
)

// TestRewriteByAnotherProgramIsAnnouncedAsReverted: another program cuts
// a thread's file or rewrites it in place (an editor saving it, Codex's
// migrate-rollouts --apply turning a legacy thread into a paginated
// one). The sync that indexed it announced nothing (a cut file did not
// grow) or appended (a rewritten one grew), so a follower read on from
// its old offset into bytes that are no longer the lines it followed. The
// thread is announced as reverted, as when another process lays its
// history out anew, with nothing appended before it, and the index agrees
// with the file.
func TestRewriteByAnotherProgramIsAnnouncedAsReverted(t *testing.T) {
	rewrites := []struct {
		name string
		// rewrite returns the file's new content from its old one, whose
		// last two lines (a user message and its reply) start at last.
		rewrite func(t *testing.T, data []byte, last int) []byte
		// keepTime: the rewrite keeps the file's modification time (a
		// rewrite within the clock's tick), which only the watcher is
		// told of.
		keepTime bool
	}{
		{"cut before its last turn", func(t *testing.T, data []byte, last int) []byte {
			return data[:last]
		}, false},
		{"last turn rewritten, same size", func(t *testing.T, data []byte, last int) []byte {
			return respelled(data, last, `"one"`, `"eno"`)
		}, false},
		{"last turn rewritten longer", func(t *testing.T, data []byte, last int) []byte {
			return append(data[:last:last], encodeLines(t, user("one, said again at length"), assistant("b, and more"), user("two"))...)
		}, false},
		{"last reply rewritten, same size and time", func(t *testing.T, data []byte, last int) []byte {
			return respelled(data, last, `"b"`, `"B"`)
		}, true},
		{"rewritten longer, a line's end at the old end", func(t *testing.T, data []byte, last int) []byte {
			// The last reply's text changed, its length kept, and a line
			// more: only the bytes before the old end tell.
			return append(respelled(data, last, `"b"`, `"B"`), encodeLines(t, user("two"))...)
		}, false},
	}
	read := func(t *testing.T, m *Manager, id string) {
		if _, err := m.UserMessages(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	appendOne := func(t *testing.T, m *Manager, id string) {
		if _, err := m.Append(t.Context(), id, []rollout.Item{user("after the rewrite")}); err != nil {
			t.Fatal(err)
		}
	}
	syncs := []struct {
		name string
		live bool // the thread is held in memory
		// use makes the manager find the rewrite; nil for the watcher.
		use func(t *testing.T, m *Manager, id string)
	}{
		{"watched", false, nil},
		{"watched and live", true, nil},
		{"read", false, read},
		{"read and live", true, read},
		{"appended to", false, appendOne},
		{"appended to and live", true, appendOne},
	}
	for _, rw := range rewrites {
		for _, sy := range syncs {
			if rw.keepTime && sy.use != nil {
				continue // a read or an append trusts a file's size and time
			}
			t.Run(rw.name+"/"+sy.name, func(t *testing.T) {
				ctx := t.Context()
				var m *Manager
				var reports <-chan SyncReport
				if sy.use == nil {
					m, reports = openWatching(t)
				} else {
					m = openTest(t)
				}
				th := start(t, m, user("zero"), assistant("a"), user("one"), assistant("b"))
				if !sy.live {
					if err := m.Evict(ctx, th.ID); err != nil {
						t.Fatal(err)
					}
				}
				abs := filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath))
				data, err := os.ReadFile(abs)
				if err != nil {
					t.Fatal(err)
				}
				last := lastLinesStart(data, 2)
				fi, err := os.Stat(abs)
				if err != nil {
					t.Fatal(err)
				}
				mtime := fi.ModTime()
				sub := m.Subscribe(0)
				defer sub.Close()

				rewritten := rw.rewrite(t, data, last)
				f, err := os.OpenFile(abs, os.O_WRONLY|os.O_TRUNC, 0) // in place: the same file
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.Write(rewritten); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				// A modification time other than spool's last, which the
				// kernel's coarse clock may not give a quick rewrite, or
				// spool's last when the case keeps it.
				newTime := mtime.Add(time.Second)
				if rw.keepTime {
					newTime = mtime
				}
				if err := os.Chtimes(abs, time.Time{}, newTime); err != nil {
					t.Fatal(err)
				}
				if sy.use != nil {
					sy.use(t, m, th.ID)
				}

				awaitRevertedTo(t, sub, th.ID, int64(len(rewritten)))
				verified := func() bool {
					rep, err := indexer.Verify(ctx, m.store, m.fsys)
					if err == nil && rep.Clean() {
						return true
					}
					if reports == nil {
						t.Fatalf("verify: %+v %+v, %v", rep.Drifts, rep.Problems, err)
					}
					return false
				}
				if reports != nil {
					// A watcher that found the file empty between the
					// truncate and the write announced it then, at the
					// old size, which a same-size rewrite has: the sync
					// of the written file may come after that event.
					waitFor(t, reports, "the index agrees with the rewritten file", verified)
				} else {
					verified()
				}
				rc, _, err := m.ReadAfter(ctx, th.ID, 0)
				got := readAll(t, rc, err)
				if !bytes.HasPrefix(got, rewritten) {
					t.Fatalf("history after the rewrite = %q, want %q", got, rewritten)
				}
			})
		}
	}
}

// encodeLines returns items as rollout lines.
func encodeLines(t *testing.T, items ...rollout.Item) []byte {
	t.Helper()
	var out []byte
	for _, it := range items {
		line, err := rollout.EncodeItem(it, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, line...)
	}
	return out
}

// lastLinesStart returns the offset where the last n lines of data start.
func lastLinesStart(data []byte, n int) int {
	end := len(data)
	for range n {
		end = bytes.LastIndexByte(data[:end-1], '\n') + 1
	}
	return end
}

// TestEmptiedThenRewrittenIsAnnouncedAsReverted: another program rewrites
// a thread's file in place by truncating it and then writing, and the
// watcher syncs in between. The empty file dropped the thread's row, so
// the rewritten file came back as a thread nobody was told of, and a
// follower waited at its old offset for ever. The thread stays indexed
// while its file is empty, is announced reverted, and the rewritten file
// is read whole and announced reverted again, never appended to.
func TestEmptiedThenRewrittenIsAnnouncedAsReverted(t *testing.T) {
	for _, live := range []bool{false, true} {
		t.Run(map[bool]string{false: "evicted", true: "live"}[live], func(t *testing.T) {
			ctx := t.Context()
			m, reports := openWatching(t)
			th := start(t, m, user("zero"), assistant("a"), user("one"), assistant("b"))
			if !live {
				if err := m.Evict(ctx, th.ID); err != nil {
					t.Fatal(err)
				}
			}
			abs := filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath))
			data, err := os.ReadFile(abs)
			if err != nil {
				t.Fatal(err)
			}
			sub := m.Subscribe(0)
			defer sub.Close()
			f, err := os.OpenFile(abs, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			awaitProblem(t, reports, th.RolloutPath, indexer.ProblemEmpty)
			if _, err := m.store.Get(ctx, th.ID); err != nil {
				t.Fatalf("the thread while its file is empty: %v", err)
			}
			// The first prompt's text changed, its length kept: the old
			// end is still a line's end in the rewritten file.
			rewritten := bytes.Replace(data, []byte(`"zero"`), []byte(`"orez"`), 1)
			rewritten = append(rewritten, encodeLines(t, user("two"))...)
			if _, err := f.Write(rewritten); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			awaitRevertedTo(t, sub, th.ID, int64(len(rewritten)))
			rep, err := indexer.Verify(ctx, m.store, m.fsys)
			if err != nil || !rep.Clean() {
				t.Fatalf("verify: %+v %+v, %v", rep.Drifts, rep.Problems, err)
			}
			msgs, err := m.UserMessages(ctx, th.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 3 || msgs[0].Preview != "orez" {
				t.Fatalf("user messages after the rewrite = %+v, want orez, one, two", msgs)
			}
		})
	}
}

// awaitProblem reads background syncs' reports until one reports a
// problem of kind at rel, failing t if none does within a generous
// deadline.
func awaitProblem(t *testing.T, reports <-chan SyncReport, rel, kind string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		select {
		case r := <-reports:
			for _, p := range r.Summary.Problems {
				if p.Path == rel && p.Kind == kind {
					return
				}
			}
		case <-ctx.Done():
			t.Fatalf("no background sync reported %s for %s", kind, rel)
		}
	}
}

// awaitRevertedTo reads sub's events of thread id until one announces it
// reverted at size, failing t on any other kind of event of the thread
// or when none comes within a generous deadline.
func awaitRevertedTo(t *testing.T, sub *Subscription, id string, size int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	last := int64(-1)
	for {
		select {
		case e := <-sub.Events():
			if e.ThreadID != id {
				continue
			}
			if e.Type != EventReverted {
				t.Fatalf("after the rewrite the thread was announced %s (size %d); want %s", e.Type, e.Size, EventReverted)
			}
			if e.Size == size {
				return
			}
			last = e.Size
		case <-ctx.Done():
			t.Fatalf("the rewrite was not announced at size %d (last reverted event's size: %d)", size, last)
		}
	}
}

// TestEmptiedFileThreadCanBeDeletedOrArchived: a thread whose file another
// program emptied (to write it anew, and may never) stays indexed, but
// every use that loads it read the empty file whole, found no meta and
// failed: it could not be deleted or archived, and stayed listed for as
// long as the file stayed empty. The load leaves an empty file to the use
// (an append still refuses it), so that a delete removes the thread and an
// archive moves it, keeping it to be read whole once written.
func TestEmptiedFileThreadCanBeDeletedOrArchived(t *testing.T) {
	for _, synced := range []bool{false, true} {
		for _, op := range []string{"delete", "archive"} {
			name := op + map[bool]string{false: "/before a sync", true: "/after a sync"}[synced]
			t.Run(name, func(t *testing.T) {
				ctx := t.Context()
				m := openTest(t)
				th := start(t, m, user("zero"), assistant("a"))
				if err := m.Evict(ctx, th.ID); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath)), 0); err != nil {
					t.Fatal(err)
				}
				if synced {
					sum, err := indexer.SyncPaths(ctx, m.store, m.fsys, []string{th.RolloutPath}, indexer.SyncOptions{Hold: m.holdSync})
					if err != nil || len(sum.Rewritten) != 1 {
						t.Fatalf("sync of the emptied file: rewritten %v, %v; want the thread", sum.Rewritten, err)
					}
				}
				if _, err := m.Append(ctx, th.ID, []rollout.Item{user("one")}); !errors.Is(err, ErrBusy) {
					t.Fatalf("an append to the emptied file: %v; want it refused, %v", err, ErrBusy)
				}
				switch op {
				case "delete":
					if err := m.Delete(ctx, th.ID); err != nil {
						t.Fatalf("delete: %v", err)
					}
					if _, err := m.Get(ctx, th.ID); !errors.Is(err, ErrNotFound) {
						t.Fatalf("get after the delete: %v, want ErrNotFound", err)
					}
				case "archive":
					got, err := m.Archive(ctx, th.ID)
					if err != nil {
						t.Fatalf("archive: %v", err)
					}
					if _, err := os.Stat(filepath.Join(m.Root(), filepath.FromSlash(got.RolloutPath))); err != nil || !got.Archived {
						t.Fatalf("archived at %s (%v): %v", got.RolloutPath, got.Archived, err)
					}
				}
			})
		}
	}
}

// respelled returns a copy of data with the first was after offset last
// replaced by now, of the same length.
func respelled(data []byte, last int, was, now string) []byte {
	out := bytes.Clone(data)
	copy(out[last+bytes.Index(data[last:], []byte(was)):], now)
	return out
}

// TestEmptiedFileThreadReadsBusy: a thread whose own file another program
// emptied to write it anew read as no bytes at all, though the index
// still counts its lines and user messages: a reader took the thread for
// empty. A read answers ErrBusy until the file is written, then reads the
// new bytes.
func TestEmptiedFileThreadReadsBusy(t *testing.T) {
	for _, synced := range []bool{false, true} {
		t.Run(map[bool]string{false: "before a sync", true: "after a sync"}[synced], func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t)
			th := start(t, m, user("zero"), assistant("a"))
			abs := filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath))
			data, err := os.ReadFile(abs)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(abs, 0); err != nil {
				t.Fatal(err)
			}
			if synced {
				if _, err := indexer.SyncPaths(ctx, m.store, m.fsys, []string{th.RolloutPath}, indexer.SyncOptions{Hold: m.holdSync}); err != nil {
					t.Fatal(err)
				}
			}
			reads := map[string]func() error{
				"ReadFrom": func() error {
					rc, err := m.ReadFrom(ctx, th.ID, 0)
					if err == nil {
						rc.Close()
					}
					return err
				},
				"ReadAfter": func() error {
					rc, _, err := m.ReadAfter(ctx, th.ID, 0)
					if err == nil {
						rc.Close()
					}
					return err
				},
			}
			for name, read := range reads {
				if err := read(); !errors.Is(err, ErrBusy) {
					t.Fatalf("%s of the emptied thread: %v, want %v", name, err, ErrBusy)
				}
			}
			if err := os.WriteFile(abs, data, 0o600); err != nil {
				t.Fatal(err)
			}
			rc, _, err := m.ReadAfter(ctx, th.ID, 0)
			if err != nil {
				t.Fatalf("ReadAfter once written: %v", err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("ReadAfter once written: %d bytes (%v), want the file's %d", len(got), err, len(data))
			}
		})
	}
}

// TestReferenceForkOfAnEmptiedThreadReadsBusy: a reference fork reads its
// first bytes from its base's file; when another program empties that file
// to write it anew, a read of the fork failed with the error of a read past
// the empty file's end. It answers ErrBusy, as a read of the base does,
// and reads as before once the base's file is written.
func TestReferenceForkOfAnEmptiedThreadReadsBusy(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := startPaginated(t, m, user("zero"), assistant("a"), user("one"), assistant("b"))
	fork, err := m.Fork(ctx, base.ID, ForkOptions{Mode: ForkReference, BeforeUserMessage: intp(1)})
	if err != nil {
		t.Fatal(err)
	}
	read := func() ([]byte, error) {
		rc, _, err := m.ReadAfter(ctx, fork.ID, 0)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	want, err := read()
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(m.Root(), filepath.FromSlash(base.RolloutPath))
	data, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Evict(ctx, base.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(abs, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := read(); !errors.Is(err, ErrBusy) {
		t.Fatalf("read of the fork of the emptied thread: %v, want %v", err, ErrBusy)
	}
	if err := os.WriteFile(abs, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := read(); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read once written: %d bytes (%v), want %d", len(got), err, len(want))
	}
}
