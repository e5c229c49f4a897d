package crashtest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestOddFilesInRoot puts what another local user or a crash may leave in
// a root beside real threads: a FIFO, a symbolic link to a file outside
// the root and a directory, each named like a rollout, and the temporary
// file of a start cut short. Open must finish (a FIFO must not block it), index
// neither the FIFO nor the link, leave the outside file alone, remove the
// temporary file and say so in its log.
func TestOddFilesInRoot(t *testing.T) {
	root := t.TempDir()
	m, _ := openManager(t, root)
	th := startThread(t, m, "real")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "sessions", "2026", "11", "25")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const (
		fifoID = "01a21400-0000-7000-8000-000000000001"
		linkID = "01a21400-0000-7000-8000-000000000002"
		tmpID  = "01a21400-0000-7000-8000-000000000003"
		dirID  = "01a21400-0000-7000-8000-000000000004"
	)
	name := func(id string) string { return rollout.FileName(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), id) }
	if err := syscall.Mkfifo(filepath.Join(dir, name(fifoID)), 0o600); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret.jsonl")
	secret := `{"timestamp":"2026-11-25T10:00:00.000Z","type":"session_meta","payload":{"id":"` + linkID + `","timestamp":"2026-11-25T10:00:00.000Z","cwd":"/"}}` + "\n"
	if err := os.WriteFile(outside, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, name(linkID))); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, name(dirID)), 0o700); err != nil {
		t.Fatal(err)
	}
	temp := filepath.Join(dir, name(tmpID)+".123"+rolloutfs.TempSuffix)
	if err := os.WriteFile(temp, []byte(`{"half":`), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	opened := make(chan error, 1)
	var m2 *manager.Manager
	logs := &fixtures.Buffer{}
	go func() {
		var err error
		m2, err = manager.Open(ctx, manager.Options{Root: root, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		opened <- err
	}()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Open did not finish: blocked on the FIFO?")
	}
	defer m2.Close()

	page, err := m2.List(ctx, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Threads) != 1 || page.Threads[0].ID != th.ID {
		t.Fatalf("threads = %+v, want only %s", page.Threads, th.ID)
	}
	for _, id := range []string{fifoID, linkID} {
		if _, err := m2.Get(ctx, id); err == nil {
			t.Errorf("thread %s was indexed", id)
		}
	}
	if data, err := os.ReadFile(outside); err != nil || string(data) != secret {
		t.Errorf("the file outside the root changed: %v", err)
	}
	if _, err := os.Stat(temp); !os.IsNotExist(err) {
		t.Errorf("the temporary file is still there: %v", err)
	}
	if !strings.Contains(logs.String(), "temps_removed=1") {
		t.Errorf("the log does not count the temporary file: %s", logs.String())
	}
	for _, want := range []string{name(fifoID), name(linkID), name(dirID)} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not name %s as a problem", want)
		}
	}
	// Verify names them too, as a sync does.
	st, err := store.OpenReadOnly(ctx, filepath.Join(root, manager.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := indexer.Verify(ctx, st, rolloutfs.Local{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{name(fifoID), name(linkID), name(dirID)} {
		found := false
		for _, p := range rep.Problems {
			found = found || strings.HasSuffix(p.Path, want) && p.Kind == indexer.ProblemError
		}
		if !found {
			t.Errorf("Verify does not name %s as a problem: %v", want, rep.Problems)
		}
	}
}
