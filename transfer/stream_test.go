package transfer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// streamBackends are the backends the bounded-memory test runs on: the
// local one here, the distributed one behind its build tag.
var streamBackends = []struct {
	name string
	mode rollout.HistoryMode
	open func(t *testing.T) manager.Backend
}{
	{"local legacy", rollout.HistoryLegacy, func(t *testing.T) manager.Backend { return openLocal(t) }},
	{"local paginated", rollout.HistoryPaginated, func(t *testing.T) manager.Backend { return openLocal(t) }},
}

// generated is a self-contained rollout of at least size bytes, made as
// it is read: a meta line, then user and assistant messages of about 1 KiB
// (numbered when paginated). It is never whole in memory.
type generated struct {
	id   string
	mode rollout.HistoryMode
	size int64
	n    int64  // lines made
	made int64  // bytes made
	buf  []byte // made, not yet read
}

func (g *generated) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.made >= g.size {
			return 0, io.EOF
		}
		var line []byte
		if g.n == 0 {
			meta := rollout.SessionMeta{ID: g.id, Timestamp: "2026-11-25T00:00:00.000Z", Cwd: "/work", Source: "cli", HistoryMode: g.mode}
			var err error
			if line, err = rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta}); err != nil {
				return 0, err
			}
		} else {
			role := []string{"user", "assistant"}[g.n%2]
			it := item(role, fmt.Sprintf("message %d %s", g.n, bytes.Repeat([]byte("x"), 1000)))
			line = fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:01.000Z","type":%q,"payload":%s}`+"\n", it.Type, it.Payload)
		}
		if g.mode == rollout.HistoryPaginated {
			var err error
			if line, err = rollout.Renumber(nil, line, g.n); err != nil {
				return 0, err
			}
		}
		g.buf = line
		g.n++
		g.made += int64(len(line))
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// heapProbe passes r through and, once at bytes have passed, collects
// garbage and records the live heap: what the reader's consumer holds
// then, with most of the stream behind it.
type heapProbe struct {
	r      io.Reader
	at     int64
	passed int64
	live   uint64 // 0 until measured
}

func (h *heapProbe) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.passed += int64(n)
	if h.live == 0 && h.passed >= h.at {
		h.live = liveHeap()
	}
	return n, err
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestImportAndExportStream (issue #17): a 32 MiB rollout is imported from
// a reader and exported to one without either side holding it: three
// quarters of the way through each stream, the live heap has grown by
// less than a quarter of the history. Reading the history whole (io.ReadAll,
// a []byte rollout) would hold at least that much at that point. The
// export says byte for byte what was imported.
func TestImportAndExportStream(t *testing.T) {
	const size = 32 << 20
	const bound = size / 4
	for _, tc := range streamBackends {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.open(t)
			id := uuid.Must(uuid.NewV7()).String()
			want := sha256.New()
			in := &heapProbe{r: io.TeeReader(&generated{id: id, mode: tc.mode, size: size}, want), at: size * 3 / 4}
			base := liveHeap()
			th, err := b.(manager.Importer).Import(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			if in.passed < size {
				t.Fatalf("import read %d bytes, want at least %d", in.passed, size)
			}
			if grew := int64(in.live) - int64(base); grew > bound {
				t.Fatalf("import: live heap grew by %d bytes three quarters through, want at most %d", grew, bound)
			}
			if th.UserMessageCount == 0 {
				t.Fatalf("imported thread counts no user messages")
			}

			base = liveHeap()
			rc, err := Export(t.Context(), b, id)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got := sha256.New()
			out := &heapProbe{r: rc, at: size * 3 / 4}
			n, err := io.Copy(got, out)
			if err != nil {
				t.Fatal(err)
			}
			if grew := int64(out.live) - int64(base); grew > bound {
				t.Fatalf("export: live heap grew by %d bytes three quarters through, want at most %d", grew, bound)
			}
			if n != in.passed || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
				t.Fatalf("export: %d bytes differing from the %d imported", n, in.passed)
			}
		})
	}
}

// TestFailedImportLeavesNothing: an import whose rollout fails to read
// after several chunks, or ends without a newline, creates nothing: no
// thread, and the id stays free for the next import. A source cut short
// is the source's failure, never taken for the target's storage being
// unreachable (a retry-later).
func TestFailedImportLeavesNothing(t *testing.T) {
	const size = 4 << 20
	broken := errors.New("connection reset")
	for _, bk := range streamBackends {
		for _, tc := range []struct {
			name string
			tail io.Reader
			want error
		}{
			{"read error", iotest.ErrReader(broken), broken},
			{"source cut short", iotest.ErrReader(io.ErrUnexpectedEOF), io.ErrUnexpectedEOF},
			{"torn last line", strings.NewReader(`{"timestamp":"2026-11-25T00:00:02.000Z","type":"event_msg"`), manager.ErrInvalidArgument},
		} {
			t.Run(bk.name+"/"+tc.name, func(t *testing.T) {
				b := bk.open(t)
				id := uuid.Must(uuid.NewV7()).String()
				in := io.MultiReader(&generated{id: id, mode: bk.mode, size: size}, tc.tail)
				if _, err := b.(manager.Importer).Import(t.Context(), in); !errors.Is(err, tc.want) || errors.Is(err, manager.ErrUnavailable) {
					t.Fatalf("import: %v, want %v (and not ErrUnavailable)", err, tc.want)
				}
				if _, err := b.Get(t.Context(), id); !errors.Is(err, manager.ErrNotFound) {
					t.Fatalf("get after a failed import: %v, want ErrNotFound", err)
				}
				if _, err := b.(manager.Importer).Import(t.Context(), &generated{id: id, mode: bk.mode, size: size}); err != nil {
					t.Fatalf("import again: %v", err)
				}
			})
		}
	}
}
