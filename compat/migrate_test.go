//go:build compat

package compat

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// TestMigrateRolloutsUnderARunningManager: `codex migrate-rollouts
// --apply` rewrites a legacy thread as a paginated one at the same path
// while a watching manager serves the home (a follower reads it). The
// manager read the new file but announced it as appended (it grew), so a
// follower read on from its old offset into the rewritten bytes. It is
// announced as reverted, with the thread as migrated, and the index agrees
// with the file.
func TestMigrateRolloutsUnderARunningManager(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryLegacy, 3, 36)
	st.write(t, home)
	rolledBack := append(st.Data, `{"timestamp":"2026-11-20T10:00:00.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":1}}`+"\n"...)
	writeFile(t, st.Path, rolledBack)

	m, err := manager.Open(t.Context(), manager.Options{Root: home, Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	before, err := m.Get(t.Context(), st.ID)
	if err != nil || before.HistoryMode == string(rollout.HistoryPaginated) {
		t.Fatalf("thread before migrating: %+v, %v; want a legacy one", before, err)
	}
	sub := m.Subscribe(0)
	defer sub.Close()

	cmd := exec.CommandContext(t.Context(), "unshare", "-n", codexBinary(t), "migrate-rollouts", "--apply", "--json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "CODEX_HOME=" + home, "OPENAI_API_KEY=sk-dummy"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !bytes.Contains(out, []byte(`"status": "migrated"`)) {
		t.Fatalf("migrate-rollouts: %v\n%s\n%s", err, out, stderr.String())
	}
	data, err := os.ReadFile(st.Path)
	if err != nil {
		t.Fatal(err)
	}

	wait, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for done := false; !done; {
		select {
		case e := <-sub.Events():
			if e.ThreadID != st.ID {
				continue
			}
			if e.Type != manager.EventReverted {
				t.Fatalf("the migrated thread was announced %s (size %d of %d); want %s", e.Type, e.Size, len(data), manager.EventReverted)
			}
			if e.Thread == nil || e.Thread.HistoryMode != string(rollout.HistoryPaginated) || e.Size != int64(len(data)) {
				t.Fatalf("reverted event: size %d, thread %+v; want the paginated thread of %d bytes", e.Size, e.Thread, len(data))
			}
			done = true
		case <-wait.Done():
			t.Fatal("the watcher did not announce the migrated thread")
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	verifyHome(t, home, 1)
}
