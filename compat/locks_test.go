//go:build compat

package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// flockHolders returns the /proc/locks entries that hold (not wait for) a
// FLOCK on inode ino, as "MODE pid" strings (MODE is WRITE or READ).
func flockHolders(t *testing.T, ino uint64) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		// "1: FLOCK ADVISORY WRITE 123 fe:00:456 0 EOF"; waiters have "->" after the number.
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		dev := strings.Split(f[5], ":")
		if len(dev) == 3 && dev[2] == fmt.Sprint(ino) {
			out = append(out, f[3]+" "+f[4])
		}
	}
	return out
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestWriterLock establishes Codex 0.169's per-thread writer lock: while a
// thread is loaded, its app-server holds an exclusive flock(2) (not an
// fcntl lock) on $CODEX_HOME/thread-writer-locks/<id>.lock, for the whole
// time it is loaded, not per write (thread/unsubscribe does not drop it);
// .coordination.lock is not held meanwhile; another process cannot take
// even a shared flock; a second app-server's thread/resume fails at once
// with "already has an active writer"; when the first server exits, the
// lock file is removed and the second server can load the thread.
func TestWriterLock(t *testing.T) {
	home := newHome(t)
	a := startCodex(t, home)
	var started threadAnswer
	call(t, a, "thread/start", map[string]any{"cwd": "/tmp"}, &started)
	id := started.Thread.ID
	user := map[string]any{"type": "message", "role": "user", "content": []map[string]string{{"type": "input_text", "text": "x"}}}
	call(t, a, "thread/inject_items", map[string]any{"threadId": id, "items": []any{user}}, nil)

	lockPath := filepath.Join(home, "thread-writer-locks", id+".lock")
	coordination := filepath.Join(home, "thread-writer-locks", ".coordination.lock")
	want := fmt.Sprintf("WRITE %d", a.Pid())
	if got := flockHolders(t, inode(t, lockPath)); len(got) != 1 || got[0] != want {
		t.Fatalf("flocks on %s = %v, want [%s]", lockPath, got, want)
	}
	if got := flockHolders(t, inode(t, coordination)); len(got) != 0 {
		t.Fatalf("flocks on .coordination.lock while idle = %v, want none", got)
	}
	f, err := os.Open(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("shared flock on a loaded thread's lock: %v, want EWOULDBLOCK", err)
	}

	call(t, a, "thread/unsubscribe", map[string]any{"threadId": id}, nil)
	if got := flockHolders(t, inode(t, lockPath)); len(got) != 1 || got[0] != want {
		t.Fatalf("after thread/unsubscribe, flocks = %v, want [%s] still", got, want)
	}

	b := startCodex(t, home)
	err = b.Call(t.Context(), "thread/resume", map[string]any{"threadId": id, "excludeTurns": true}, nil)
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32600 || !strings.Contains(rpcErr.Message, "already has an active writer") {
		t.Fatalf("second server's resume: %v, want -32600 active writer", err)
	}

	if err := a.Close(); err != nil {
		t.Fatalf("close first server: %v", err)
	}
	if _, err := os.Stat(lockPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file after the first server exited: %v, want it removed", err)
	}
	call(t, b, "thread/resume", map[string]any{"threadId": id, "excludeTurns": true}, nil)
	want = fmt.Sprintf("WRITE %d", b.Pid())
	if got := flockHolders(t, inode(t, lockPath)); len(got) != 1 || got[0] != want {
		t.Fatalf("after the second server loaded it, flocks = %v, want [%s]", got, want)
	}
}

// TestCodexLocksSessionIndex establishes how Codex 0.169 writes
// session_index.jsonl: it waits for an exclusive flock(2) (not an fcntl
// lock) on $CODEX_HOME/session_index.jsonl.lock before it appends a name,
// and its thread/delete, under the same lock, replaces the file by a new
// one (another inode) without the deleted thread's lines. A line another
// process appends to the old file meanwhile is lost, so spool takes the
// same lock for its appends (rolloutfs.Local.AppendRecord, whose unit test
// holds it as Codex does).
func TestCodexLocksSessionIndex(t *testing.T) {
	home := newHome(t)
	kept := newSpoolThread(t, rollout.HistoryLegacy, 1, 260)
	kept.write(t, home)
	deleted := newSpoolThread(t, rollout.HistoryLegacy, 1, 261)
	deleted.write(t, home)
	index := filepath.Join(home, rollout.SessionIndexFile)
	fsys := rolloutfs.Local{Root: home}
	appendName := func(id, name string) {
		t.Helper()
		line, err := rollout.EncodeNameEntry(rollout.NameEntry{ID: id, ThreadName: name, UpdatedAt: "2026-11-20T10:00:00Z"})
		if err != nil {
			t.Fatal(err)
		}
		if err := fsys.AppendRecord(t.Context(), rollout.SessionIndexFile, line); err != nil {
			t.Fatal(err)
		}
	}
	appendName(kept.ID, "kept")
	appendName(deleted.ID, "deleted")
	s := startCodex(t, home)

	lock, err := os.OpenFile(index+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	renamed := make(chan error, 1)
	go func() {
		renamed <- s.Call(t.Context(), "thread/name/set", map[string]any{"threadId": kept.ID, "name": "by codex"}, nil)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	select {
	case err := <-renamed:
		t.Fatalf("Codex renamed while the lock was held (%v): want it to wait", err)
	case <-ctx.Done():
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := <-renamed; err != nil {
		t.Fatal(err)
	}

	before := inode(t, index)
	call(t, s, "thread/delete", map[string]any{"threadId": deleted.ID}, nil)
	if inode(t, index) == before {
		t.Fatalf("thread/delete left %s in place, want it replaced", index)
	}
	data, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	names, err := rollout.ReadNames(t.Context(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := names[deleted.ID]; ok || names[kept.ID].ThreadName != "by codex" {
		t.Fatalf("session_index.jsonl after Codex's delete:\n%s\nwant the deleted thread's lines gone, the other's kept", data)
	}
}
