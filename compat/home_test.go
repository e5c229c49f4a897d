//go:build compat

package compat

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// TestCodexUpdatedAtIsMtime: Codex's updatedAt is the rollout file's
// modification time, not its newest envelope timestamp (spool's
// updated_at); createdAt is the thread's creation time. A file touched
// while Codex is down shows its new mtime after a scanning thread/list.
func TestCodexUpdatedAtIsMtime(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryLegacy, 1, 31)
	st.write(t, home)
	mtime := time.Unix(1700000000, 0)
	if err := os.Chtimes(st.Path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	list := func() thread {
		t.Helper()
		s := startCodex(t, home)
		var l listAnswer
		call(t, s, "thread/list", map[string]any{"sortKey": "updated_at"}, &l)
		if len(l.Data) != 1 {
			t.Fatalf("thread/list = %s", mustJSON(l.Data))
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close codex: %v", err)
		}
		return l.Data[0]
	}
	if got := list(); got.UpdatedAt != mtime.Unix() {
		t.Fatalf("updatedAt = %d, want the file's mtime %d (newest envelope is %s)", got.UpdatedAt, mtime.Unix(), st.Turns[0].Completed)
	}
	later := time.Unix(1710000000, 0)
	if err := os.Chtimes(st.Path, later, later); err != nil {
		t.Fatal(err)
	}
	if got := list(); got.UpdatedAt != later.Unix() {
		t.Fatalf("after touching the file: updatedAt = %d, want %d", got.UpdatedAt, later.Unix())
	}
}

// TestCodexRefusesUnknownHistoryMode: a history_mode Codex does not know
// hides the thread from thread/list and makes thread/read fail; spool's
// ParseSessionMeta refuses the same line with ErrUnknownHistoryMode.
// Codex also refuses a reference fork whose base is a legacy rollout.
func TestCodexRefusesUnknownHistoryMode(t *testing.T) {
	home := newHome(t)
	legacy := newSpoolThread(t, rollout.HistoryLegacy, 1, 32)
	legacy.write(t, home)
	odd := newSpoolThread(t, rollout.HistoryLegacy, 1, 33)
	odd.write(t, home)
	oddData := bytes.Replace(odd.Data, []byte(`"base_instructions":null}`), []byte(`"base_instructions":null,"history_mode":"columnar"}`), 1)
	writeFile(t, odd.Path, oddData)
	line, _, _ := bytes.Cut(oddData, []byte{'\n'})
	if _, err := rollout.ParseSessionMeta(line); !errors.Is(err, rollout.ErrUnknownHistoryMode) {
		t.Fatalf("ParseSessionMeta: %v, want ErrUnknownHistoryMode", err)
	}

	const forkID = "019dab90-0000-7000-8000-000000000034"
	created := legacy.Created.Add(time.Hour)
	meta := rollout.SessionMeta{ID: forkID, ForkedFromID: legacy.ID, Timestamp: rollout.FormatTimestamp(created), Cwd: "/tmp", Source: "cli",
		HistoryMode: rollout.HistoryPaginated, HistoryBase: &rollout.HistoryBase{ThreadID: legacy.ID, EndOrdinalExclusive: 3, EndByteOffset: int64(len(legacy.Data))}}
	forkLine, err := rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta})
	if err != nil {
		t.Fatal(err)
	}
	if forkLine, err = rollout.WithOrdinal(forkLine, 0); err != nil {
		t.Fatal(err)
	}
	rel, _ := rollout.SessionPath(rollout.FileName(created, forkID))
	writeFile(t, filepath.Join(home, filepath.FromSlash(rel)), forkLine)

	s := startCodex(t, home)
	var l listAnswer
	call(t, s, "thread/list", map[string]any{}, &l)
	for _, th := range l.Data {
		if th.ID == odd.ID {
			t.Fatalf("thread/list shows the thread with an unknown history_mode")
		}
	}
	err = s.Call(t.Context(), "thread/read", map[string]any{"threadId": odd.ID}, nil)
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || !strings.Contains(rpcErr.Message, "unknown variant `columnar`") {
		t.Fatalf("thread/read of an unknown history_mode: %v", err)
	}
	err = s.Call(t.Context(), "thread/read", map[string]any{"threadId": forkID, "includeTurns": true}, nil)
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32600 || !strings.Contains(rpcErr.Message, "source rollout is not paginated") {
		t.Fatalf("thread/read of a reference fork of a legacy thread: %v", err)
	}
}

// TestCodexMigrateRollouts: `codex migrate-rollouts --apply` rewrites a
// legacy rollout in place (same path) as a paginated one: history_mode
// paginated, ordinals 0..n-1, the rollback applied physically (the
// rolled-back turn and the marker are gone), the user_message and
// agent_message echoes replaced by item_completed events. spool reads the
// migrated file with the same turns Codex shows.
func TestCodexMigrateRollouts(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryLegacy, 3, 35)
	st.write(t, home)
	rolledBack := append(st.Data, `{"timestamp":"2026-11-20T10:00:00.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":1}}`+"\n"...)
	writeFile(t, st.Path, rolledBack)
	before := history(t, st.Path)
	if len(before.Turns) != 2 || len(before.Messages) != 2 {
		t.Fatalf("spool sees %d turns, %d messages before migrating, want 2 and 2", len(before.Turns), len(before.Messages))
	}

	cmd := exec.CommandContext(t.Context(), "unshare", "-n", codexBinary(t), "migrate-rollouts", "--apply", "--json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "CODEX_HOME=" + home, "OPENAI_API_KEY=sk-dummy"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !bytes.Contains(out, []byte(`"status": "migrated"`)) {
		t.Fatalf("migrate-rollouts: %v\n%s\n%s", err, out, stderr.String())
	}
	if files := findFiles(t, home, st.ID); len(files) != 1 || files[0] != st.Path {
		t.Fatalf("files after migrating: %v, want only %s", files, st.Path)
	}
	data, err := os.ReadFile(st.Path)
	if err != nil {
		t.Fatal(err)
	}
	if meta := firstMeta(t, st.Path); meta.Mode() != rollout.HistoryPaginated || meta.ID != st.ID {
		t.Fatalf("migrated meta = %+v", meta)
	}
	rd := rollout.NewReader(bytes.NewReader(data), 0, 0)
	var kinds []string
	for want := int64(0); rd.Next(); want++ {
		if n, ok, err := rollout.LineOrdinal(rd.Line().Raw); err != nil || !ok || n != want {
			t.Fatalf("migrated line %d: ordinal %d %v %v, want %d", rd.Line().Number, n, ok, err, want)
		}
		kinds = append(kinds, rd.Line().PayloadType)
	}
	joined := strings.Join(kinds, " ")
	for _, gone := range []string{"thread_rolled_back", "user_message", "agent_message"} {
		if strings.Contains(joined, gone) {
			t.Fatalf("migrated file still holds %s: %s", gone, joined)
		}
	}
	if strings.Count(joined, "item_completed") != 4 {
		t.Fatalf("migrated file: %s, want 4 item_completed events", joined)
	}
	after := history(t, st.Path)
	if len(after.Turns) != 2 || after.Turns[0].ID != st.Turns[0].TurnID || after.Turns[1].ID != st.Turns[1].TurnID || len(after.Messages) != 2 {
		t.Fatalf("spool reads the migrated file as %+v", after.Turns)
	}
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	if got := turnsOf(t, s, st.ID); len(got) != 2 || got[0].ID != st.Turns[0].TurnID || got[1].ID != st.Turns[1].TurnID {
		t.Fatalf("Codex shows the migrated thread as %s", describe(got))
	}
}

// TestCodexDeleteRemovesSegments: deleting a reverted thread removes its
// first file and its revert segment.
func TestCodexDeleteRemovesSegments(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 2, 36)
	st.write(t, home)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	call(t, s, "thread/revert", map[string]any{"threadId": st.ID, "beforeTurnId": st.Turns[1].TurnID}, nil)
	if files := findFiles(t, home, st.ID); len(files) != 2 {
		t.Fatalf("files after revert: %v, want 2", files)
	}
	call(t, s, "thread/delete", map[string]any{"threadId": st.ID}, nil)
	if files := findFiles(t, home, st.ID); len(files) != 0 {
		t.Fatalf("files after delete: %v, want none", files)
	}
}

// TestCodexReadsSpawnSource: a meta whose source is
// {"subagent":{"thread_spawn":{"parent_thread_id":P,...}}} is a spawned
// sub-agent to Codex (thread/read reports the spawn with parent P; the
// default thread/list, interactive sources only, hides it; sourceKinds
// subAgentThreadSpawn lists it) and to spool (SessionMeta.SpawnParentID).
func TestCodexReadsSpawnSource(t *testing.T) {
	home := newHome(t)
	parent := newSpoolThread(t, rollout.HistoryLegacy, 1, 37)
	parent.write(t, home)
	child := newSpoolThread(t, rollout.HistoryLegacy, 1, 38)
	child.write(t, home)
	source := `{"subagent":{"thread_spawn":{"parent_thread_id":"` + parent.ID + `","depth":1,"agent_nickname":"scout","agent_role":"worker"}}}`
	data := bytes.Replace(child.Data, []byte(`"source":"cli"`), []byte(`"source":`+source), 1)
	writeFile(t, child.Path, data)
	if meta := firstMeta(t, child.Path); meta.SpawnParentID != parent.ID {
		t.Fatalf("SpawnParentID = %q, want %s", meta.SpawnParentID, parent.ID)
	}

	s := startCodex(t, home)
	var read struct {
		Thread struct {
			Source struct {
				SubAgent struct {
					ThreadSpawn struct {
						ParentThreadID string `json:"parent_thread_id"`
					} `json:"thread_spawn"`
				} `json:"subAgent"`
			} `json:"source"`
			AgentNickname string `json:"agentNickname"`
		} `json:"thread"`
	}
	call(t, s, "thread/read", map[string]any{"threadId": child.ID}, &read)
	if read.Thread.Source.SubAgent.ThreadSpawn.ParentThreadID != parent.ID || read.Thread.AgentNickname != "scout" {
		t.Fatalf("Codex reads the spawn as %+v, want parent %s, nickname scout", read.Thread, parent.ID)
	}
	if got := listIDs(t, s, map[string]any{}); len(got) != 1 || got[0] != parent.ID {
		t.Fatalf("default thread/list = %v, want only the parent", got)
	}
	if got := listIDs(t, s, map[string]any{"sourceKinds": []string{"subAgentThreadSpawn"}}); len(got) != 1 || got[0] != child.ID {
		t.Fatalf("thread/list of spawned sub-agents = %v, want only the child", got)
	}
}
