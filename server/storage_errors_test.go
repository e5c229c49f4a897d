package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
	"github.com/spoolhq/spool/server"
	"github.com/spoolhq/spool/store"
)

// TestStorageErrors checks how refusals from the storage layer reach a
// client: a full disk is 507 insufficient_storage (not a bare 500), too
// many open files 503 with Retry-After, a thread a running Codex writes
// is 409 busy naming the holder, and a thread ending with a line its
// writer may still finish is 409 torn_tail with Retry-After. Each leaves
// the thread as it was.
func TestStorageErrors(t *testing.T) {
	root := t.TempDir()
	fsys := faultfs.New(rolloutfs.Local{Root: root, LockWait: 50 * time.Millisecond})
	// A grace no stall of a loaded machine outlasts: the torn line must
	// still be in it when the append is answered.
	const grace = time.Hour
	e := newEnvWith(t, server.Config{}, manager.Options{Root: root, FS: fsys, Sync: rolloutfs.SyncAlways, TornGrace: grace})
	th := e.create(map[string]any{"cwd": "/w"})
	e.appendItems(th.ID, userItem("one"))
	before, err := e.m.Get(t.Context(), th.ID)
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		after, err := e.m.Get(t.Context(), th.ID)
		if err != nil || after.IndexedSize != before.IndexedSize || after.UserMessageCount != before.UserMessageCount {
			t.Fatalf("thread after a refused append: %+v (%v), want it as before", after, err)
		}
	}
	appendBody := map[string]any{"type": "response_item", "payload": userItem("two")["payload"]}

	t.Run("disk full", func(t *testing.T) {
		fsys.Inject(func(p faultfs.Point) error {
			if p.Op == faultfs.OpWrite {
				return syscall.ENOSPC
			}
			return nil
		})
		defer fsys.Inject(nil)
		resp := e.do("POST", "/v1/threads/"+th.ID+"/items", "", appendBody)
		wantError(t, resp, http.StatusInsufficientStorage, server.CodeInsufficientStorage)
		unchanged(t)
	})

	t.Run("too many open files", func(t *testing.T) {
		fsys.Inject(func(p faultfs.Point) error {
			if p.Op == faultfs.OpCreate {
				return syscall.EMFILE
			}
			return nil
		})
		defer fsys.Inject(nil)
		resp := e.do("POST", "/v1/threads", "", map[string]any{"cwd": "/w"})
		retry := resp.Header.Get("Retry-After")
		wantError(t, resp, http.StatusServiceUnavailable, server.CodeUnavailable)
		if retry != "1" {
			t.Errorf("Retry-After = %q, want 1", retry)
		}
	})

	t.Run("codex holds the thread", func(t *testing.T) {
		lock, err := codexlock.TryLock(root, th.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Unlock()
		resp := e.do("POST", "/v1/threads/"+th.ID+"/items", "", appendBody)
		body := wantError(t, resp, http.StatusConflict, server.CodeBusy)
		if !strings.Contains(body.Error.Message, "process "+strconv.Itoa(os.Getpid())) {
			t.Errorf("busy message %q does not name the holder (pid %d)", body.Error.Message, os.Getpid())
		}
		if strings.Contains(body.Error.Message, root) {
			t.Errorf("busy message %q shows the server's root %s", body.Error.Message, root)
		}
		unchanged(t)
	})

	t.Run("codex holds the names lock", func(t *testing.T) {
		// Codex's lock on session_index.jsonl, held past LockWait.
		fixtures.LockFile(t, filepath.Join(root, rollout.SessionIndexFile+".lock"))
		resp := e.do("PATCH", "/v1/threads/"+th.ID, "", map[string]any{"name": "while held"})
		body := wantError(t, resp, http.StatusConflict, server.CodeBusy)
		if strings.Contains(body.Error.Message, root) {
			t.Errorf("busy message %q shows the server's root %s", body.Error.Message, root)
		}
		unchanged(t)
	})

	t.Run("writer lock that cannot be taken", func(t *testing.T) {
		// Not held by anyone: its directory is a file. A storage failure,
		// not busy, and the answer shows nothing of the server's disk.
		locks := filepath.Join(root, codexlock.Dir)
		if err := os.RemoveAll(locks); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(locks, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(locks)
		resp := e.do("POST", "/v1/threads/"+th.ID+"/items", "", appendBody)
		body := wantError(t, resp, http.StatusInternalServerError, server.CodeInternal)
		if strings.Contains(body.Error.Message, root) {
			t.Errorf("message %q shows the server's root %s", body.Error.Message, root)
		}
		unchanged(t)
	})

	t.Run("unfinished last line", func(t *testing.T) {
		f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(before.RolloutPath)), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(`{"timestamp":"2026-11-25T10:00:00.000Z","type":"resp`)
		f.Close()
		resp := e.do("POST", "/v1/threads/"+th.ID+"/items", "", appendBody)
		retry := resp.Header.Get("Retry-After")
		wantError(t, resp, http.StatusConflict, server.CodeTornTail)
		if secs, err := strconv.Atoi(retry); err != nil || secs < 1 || time.Duration(secs)*time.Second > grace+time.Second {
			t.Errorf("Retry-After = %q, want 1..%d seconds", retry, int(grace/time.Second)+1)
		}
		unchanged(t)
	})
}

// TestErrorsSayEachThingOnce reads a thread that does not exist and lists
// with a bad cursor: the messages name the thread and the call once each,
// not once per layer.
func TestErrorsSayEachThingOnce(t *testing.T) {
	e := newEnv(t, server.Config{})
	const id = "01a21400-0000-7000-8000-00000000abcd"
	for _, path := range []string{"/v1/threads/" + id, "/v1/threads/" + id + "/items", "/v1/threads/" + id + "/ancestors"} {
		body := wantError(t, e.do("GET", path, "", nil), http.StatusNotFound, server.CodeNotFound)
		if n := strings.Count(body.Error.Message, id); n != 1 {
			t.Errorf("GET %s: message %q names the thread %d times, want once", path, body.Error.Message, n)
		}
	}
	body := wantError(t, e.do("GET", "/v1/threads?cursor=bogus", "", nil), http.StatusBadRequest, server.CodeInvalidArgument)
	if n := strings.Count(body.Error.Message, "list threads"); n > 1 {
		t.Errorf("message %q says list threads %d times", body.Error.Message, n)
	}
}

var _ = store.ErrNotFound
