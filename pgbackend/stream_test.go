//go:build distributed

package pgbackend

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// peakLiveHeap runs fn while collecting garbage over and over, and returns
// by how much the live heap grew at most meanwhile. A history held whole
// stays live for the whole write that follows its read, so the collector
// sees it.
func peakLiveHeap(t *testing.T, fn func()) int64 {
	t.Helper()
	live := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	base := live()
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var max int64
		for {
			select {
			case <-done:
				peak <- max
				return
			default:
			}
			if grew := live() - base; grew > max {
				max = grew
			}
		}
	}()
	fn()
	close(done)
	return <-peak
}

// bigThread starts a thread and appends size bytes of one-line turns to
// it, a MiB per append.
func bigThread(t *testing.T, b *Backend, size int) manager.Thread {
	t.Helper()
	th, err := b.Start(t.Context(), manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	pad := bytes.Repeat([]byte("x"), 1000)
	for n := 0; n < size; {
		var lines []byte
		for len(lines) < 1<<20 {
			lines = fmt.Appendf(lines, `{"timestamp":"2026-11-25T00:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"prompt %d %s"}]}}`+"\n", n, pad)
		}
		if _, err := b.store.Append(t.Context(), th.ID, lines, -1); err != nil {
			t.Fatal(err)
		}
		n += len(lines)
	}
	if th, err = b.Get(t.Context(), th.ID); err != nil {
		t.Fatal(err)
	}
	return th
}

// history returns the SHA-256 of thread id's history, of the history
// after its first line, and its user-message count.
func history(t *testing.T, b *Backend, id string) (whole, afterFirst []byte, count int) {
	t.Helper()
	th, err := b.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b.ReadFrom(t.Context(), id, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := bytes.Cut(data, []byte{'\n'})
	if th.HistoryMode == string(rollout.HistoryPaginated) {
		// A self-contained copy renumbers its lines from its own meta:
		// compare the lines, not where they count from.
		data, rest = renumber(t, data), renumber(t, rest)
	}
	w, a := sha256.Sum256(data), sha256.Sum256(rest)
	return w[:], a[:], th.UserMessageCount
}

// renumber returns the lines of b numbered 0, 1, 2, ...
func renumber(t *testing.T, b []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(rollout.Renumbered(0, bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRewritesStream (issue #17): a copy fork of a thread and a purge that
// makes a reference fork of it self-contained stream the history in
// chunks: what the live heap grows by meanwhile does not depend on the
// history's size. Each runs on a 4 MiB and a 20 MiB thread; the larger may
// take less than half the 16 MiB between them more, where a history read
// whole first takes all of it. Either thread is then its meta and the
// original's history, byte for byte but for the ordinals a paginated copy
// renumbers.
func TestRewritesStream(t *testing.T) {
	const small, large = 4 << 20, 20 << 20
	for _, tc := range []struct {
		name string
		// rewrite makes a self-contained thread of its meta, then
		// parent's history, and returns its id and how much the live heap
		// grew meanwhile.
		rewrite func(t *testing.T, b *Backend, parent string) (string, int64)
	}{
		{"copy fork", func(t *testing.T, b *Backend, parent string) (string, int64) {
			var child manager.Thread
			grew := peakLiveHeap(t, func() {
				var err error
				if child, err = b.Fork(t.Context(), parent, manager.ForkOptions{Mode: manager.ForkCopy}); err != nil {
					t.Error(err)
				}
			})
			return child.ID, grew
		}},
		{"purge of a base", func(t *testing.T, b *Backend, parent string) (string, int64) {
			child, err := b.Fork(t.Context(), parent, manager.ForkOptions{})
			if err != nil {
				t.Fatal(err)
			}
			grew := peakLiveHeap(t, func() {
				if err := b.Purge(t.Context(), parent); err != nil {
					t.Error(err)
				}
			})
			th, err := b.Get(t.Context(), child.ID)
			if err != nil || th.BaseID != "" {
				t.Fatalf("the fork after the purge: base %q, %v; want self-contained", th.BaseID, err)
			}
			return child.ID, grew
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var grew [2]int64
			for i, size := range []int{small, large} {
				// No bucket: the sealer stays out of the measurement.
				b, err := Open(t.Context(), Options{DSN: disttest.DSN(t)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { b.Close() })
				parent := bigThread(t, b, size)
				want, _, wantCount := history(t, b, parent.ID)
				var id string
				id, grew[i] = tc.rewrite(t, b, parent.ID)
				if _, got, count := history(t, b, id); !bytes.Equal(got, want) || count != wantCount {
					t.Fatalf("%s holds other lines after its meta than the original's history (%d user messages, want %d)", id, count, wantCount)
				}
			}
			t.Logf("grew %v", grew)
			if more := grew[1] - grew[0]; more > (large-small)/2 {
				t.Fatalf("the live heap grew by %d bytes with a %d-byte history and %d with a %d-byte one: %d more, want at most %d",
					grew[0], small, grew[1], large, more, (large-small)/2)
			}
		})
	}
}
