package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// paginatedBig writes the big rollout as a paginated thread (its meta in
// paginated mode, every line numbered) into a new root and returns the
// root and the file.
func paginatedBig(b *testing.B) (root, path string) {
	b.Helper()
	_, parent, src := big(b, rolloutfs.SyncAlways)
	root = b.TempDir()
	path = filepath.Join(root, filepath.FromSlash(parent.RolloutPath))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	w := bufio.NewWriterSize(out, 1<<20)
	r := bufio.NewReaderSize(in, 1<<20)
	var buf []byte
	for ordinal := int64(0); ; ordinal++ {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			break
		}
		if ordinal == 0 {
			meta, perr := rollout.ParseSessionMeta(bytes.TrimSuffix(line, []byte("\n")))
			if perr != nil {
				b.Fatal(perr)
			}
			meta.HistoryMode = rollout.HistoryPaginated
			if line, err = rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta}); err != nil {
				b.Fatal(err)
			}
		}
		if buf, err = rollout.Renumber(buf[:0], line, ordinal); err != nil {
			b.Fatal(err)
		}
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return root, path
}

// BenchmarkForkCopy is the copy mode of a paginated thread: a fork before
// a user message near the end of the big rollout made paginated, with
// "mode":"copy", which renumbers every line's ordinal as it copies
// (spool/sync=always and none), and the same for a copy of a whole
// reference fork of it (the chain materialised). copy-after-meta is the
// floor: the same prefix bytes copied in the kernel into a file that
// starts with a meta line.
func BenchmarkForkCopy(b *testing.B) {
	ctx := context.Background()
	root, path := paginatedBig(b)
	ms := map[rolloutfs.SyncPolicy]*manager.Manager{}
	for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncNone} {
		r := linkedRoot(b, root)
		ms[policy] = openManager(b, r, policy)
	}
	page, err := ms[rolloutfs.SyncAlways].List(ctx, store.ListOptions{Limit: 1})
	if err != nil || len(page.Threads) != 1 || page.Threads[0].HistoryMode != string(rollout.HistoryPaginated) {
		b.Fatalf("the paginated big thread: %v, %+v", err, page.Threads)
	}
	parent := page.Threads[0]
	cutBefore := parent.UserMessageCount - 2
	msg, err := ms[rolloutfs.SyncAlways].UserMessages(ctx, parent.ID)
	if err != nil {
		b.Fatal(err)
	}
	cut := msg[cutBefore].Cut()
	report := func(b *testing.B) {
		b.ReportMetric(float64(cut)/1e6/(b.Elapsed().Seconds()/float64(b.N)), "MB/s")
	}
	for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncNone} {
		m := ms[policy]
		b.Run("spool/sync="+policy.String(), func(b *testing.B) {
			forkEach(b, m, parent.ID, manager.ForkOptions{Mode: manager.ForkCopy, BeforeUserMessage: &cutBefore}, nil)
			report(b)
		})
	}
	b.Run("spool-chain/sync=always", func(b *testing.B) {
		m := ms[rolloutfs.SyncAlways]
		ref, err := m.Fork(ctx, parent.ID, manager.ForkOptions{BeforeUserMessage: &cutBefore})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Delete(ctx, ref.ID)
		forkEach(b, m, ref.ID, manager.ForkOptions{Mode: manager.ForkCopy}, nil)
		report(b)
	})
	b.Run("copy-after-meta", func(b *testing.B) {
		meta := forkMeta(b, parent)
		writeEach(b, func(dst string) error { return CopyPrefixAfter(path, dst, meta, cut) })
		report(b)
	})
}
