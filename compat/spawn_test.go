//go:build compat

package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// spawnRun is a Codex app-server (under mockresponses) whose thread
// parent ran one turn, parentTurnID, whose model call spawned the
// sub-agent childID; the sub-agent's first turn, childTurnID, completed.
type spawnRun struct {
	s            *Server
	stderr       *fixtures.Buffer
	home         string
	parent       thread // as thread/start answered
	prompt       string // the parent's user message
	parentTurnID string
	childID      string
	childTurnID  string
}

// spawnSubAgent starts Codex on a fresh home under mockresponses and has
// it run a turn whose prompt holds "SPAWN:"+task, so that the model calls
// spawn_agent with task as its message. It returns once both the parent's
// turn and the sub-agent's first turn have completed (JSON-RPC
// turn/completed, in either order).
func spawnSubAgent(t *testing.T, task string) *spawnRun {
	t.Helper()
	r := &spawnRun{home: newHome(t), stderr: &fixtures.Buffer{}, prompt: "delegate this: SPAWN:" + task}
	mock := buildMock(t)
	s, err := Start(t.Context(), Options{Binary: codexBinary(t), Home: r.home, Stderr: r.stderr, MockResponses: mock})
	if err != nil {
		t.Fatalf("%v\n%s", err, r.stderr.String())
	}
	t.Cleanup(func() { _ = s.Close() })
	r.s = s
	var parent threadAnswer
	call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &parent)
	r.parent = parent.Thread
	var started struct {
		Turn struct {
			ID string `json:"id"`
		} `json:"turn"`
	}
	call(t, s, "turn/start", map[string]any{"threadId": r.parent.ID, "input": []any{map[string]any{"type": "text", "text": r.prompt}}}, &started)
	r.parentTurnID = started.Turn.ID

	// The parent's spawn item completes before its turn does.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := s.WaitNotification(ctx, "turn/completed"); err != nil {
		t.Fatalf("%v\n%s", err, r.stderr.String())
	}
	r.childID = spawnedThread(t, s.Notifications())
	if r.childID == "" {
		t.Fatalf("a turn completed without a completed spawnAgent item: %s\n%s", mustJSON(s.Notifications()), r.stderr.String())
	}
	done, err := s.WaitNotifications(ctx, "turn/completed", 2)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.stderr.String())
	}
	for _, n := range done {
		var p struct {
			ThreadID string `json:"threadId"`
			Turn     struct {
				ID         string `json:"id"`
				RootTurnID string `json:"rootTurnId"`
				Status     string `json:"status"`
			} `json:"turn"`
		}
		if err := json.Unmarshal(n.Params, &p); err != nil {
			t.Fatal(err)
		}
		if p.Turn.Status != "completed" || p.ThreadID != r.parent.ID && p.ThreadID != r.childID {
			t.Fatalf("turn/completed %s, want a completed turn of %s or %s", n.Params, r.parent.ID, r.childID)
		}
		if p.ThreadID != r.childID {
			continue
		}
		if p.Turn.RootTurnID != r.parentTurnID {
			t.Fatalf("sub-agent turn rootTurnId = %q, want the parent's turn %s", p.Turn.RootTurnID, r.parentTurnID)
		}
		r.childTurnID = p.Turn.ID
	}
	if r.childTurnID == "" {
		t.Fatalf("no turn of the sub-agent %s completed: %s", r.childID, mustJSON(done))
	}
	return r
}

// TestCodexSpawnsSubAgent: a model call of Codex 0.169 (answered by
// mockresponses with a spawn_agent call in the multi_agent_v1 namespace;
// no feature flag is set) makes Codex spawn a sub-agent: a paginated
// thread of its own rollout file whose meta source is
// {"subagent":{"thread_spawn":{"parent_thread_id":P,"depth":1,...}}}, whose
// first turn has the spawn message as its user message, and which Codex
// reads with the spawn parent and a nickname, hides from the default
// thread/list and lists with sourceKinds subAgentThreadSpawn. The parent's
// rollout holds the function_call and its output (the child's id and
// nickname), and after its turn a <subagent_notification> user message.
// spool indexes the child with a spawn edge naming the parent, reads both
// histories with the turns Codex shows and one user message each (the
// notification is context), and Verify finds no drift.
func TestCodexSpawnsSubAgent(t *testing.T) {
	const task = "count the files"
	r := spawnSubAgent(t, task)
	s, home := r.s, r.home
	parentID, childID := r.parent.ID, r.childID

	// What Codex says about the child.
	var read struct {
		Thread struct {
			Path           string  `json:"path"`
			Preview        string  `json:"preview"`
			ParentThreadID *string `json:"parentThreadId"`
			ForkedFromID   *string `json:"forkedFromId"`
			ThreadSource   *string `json:"threadSource"`
			AgentNickname  *string `json:"agentNickname"`
			AgentRole      *string `json:"agentRole"`
			Source         struct {
				SubAgent struct {
					ThreadSpawn struct {
						ParentThreadID string `json:"parent_thread_id"`
						Depth          int    `json:"depth"`
						AgentNickname  string `json:"agent_nickname"`
					} `json:"thread_spawn"`
				} `json:"subAgent"`
			} `json:"source"`
		} `json:"thread"`
	}
	call(t, s, "thread/read", map[string]any{"threadId": childID}, &read)
	child := read.Thread
	spawn := child.Source.SubAgent.ThreadSpawn
	if spawn.ParentThreadID != parentID || spawn.Depth != 1 {
		t.Fatalf("Codex reads the child's spawn as %+v, want parent %s at depth 1", spawn, parentID)
	}
	// Unlike a meta without a top-level parent_thread_id
	// (TestCodexReadsSpawnSource), Codex's own spawn fills parentThreadId.
	if child.ParentThreadID == nil || *child.ParentThreadID != parentID || child.ForkedFromID != nil {
		t.Fatalf("child parentThreadId = %v, forkedFromId = %v, want %s and null", child.ParentThreadID, child.ForkedFromID, parentID)
	}
	if child.ThreadSource == nil || *child.ThreadSource != "subagent" || child.AgentRole != nil {
		t.Fatalf("child threadSource = %v, agentRole = %v, want subagent and null", child.ThreadSource, child.AgentRole)
	}
	// The nickname is drawn at random; it is the same everywhere.
	nickname := spawn.AgentNickname
	if nickname == "" || child.AgentNickname == nil || *child.AgentNickname != nickname {
		t.Fatalf("child agentNickname = %v, source nickname %q, want the same, not empty", child.AgentNickname, nickname)
	}
	if child.Preview != task {
		t.Fatalf("child preview = %q, want the spawn message %q", child.Preview, task)
	}
	codexTurns := map[string][]turn{parentID: turnsOf(t, s, parentID), childID: turnsOf(t, s, childID)}
	if got, want := describe(codexTurns[childID]), r.childTurnID+":completed[user="+task+",agent=mock answer]"; got != want {
		t.Fatalf("Codex shows the child as %s, want %s", got, want)
	}
	if got, want := describe(codexTurns[parentID]), r.parentTurnID+":completed[user="+r.prompt+",collabAgentToolCall,agent=mock answer]"; got != want {
		t.Fatalf("Codex shows the parent as %s, want %s", got, want)
	}
	if got := listIDs(t, s, map[string]any{}); !slices.Equal(got, []string{parentID}) {
		t.Fatalf("default thread/list = %v, want only the parent %s", got, parentID)
	}
	if got := listIDs(t, s, map[string]any{"sourceKinds": []string{"subAgentThreadSpawn"}}); !slices.Equal(got, []string{childID}) {
		t.Fatalf("thread/list of spawned sub-agents = %v, want only the child %s", got, childID)
	}
	// Codex tells the parent that the child finished after the parent's
	// turn, in a line of its own.
	waitForText(t, r.parent.Path, "<subagent_notification>")
	if err := s.Close(); err != nil {
		t.Fatalf("close codex: %v", err)
	}

	// The files Codex wrote.
	if files := findFiles(t, home, childID); len(files) != 1 || files[0] != child.Path {
		t.Fatalf("child files = %v, want only %s", files, child.Path)
	}
	meta := firstMeta(t, child.Path)
	if meta.SpawnParentID != parentID || meta.Mode() != rollout.HistoryPaginated || meta.ForkedFromID != "" {
		t.Fatalf("child meta: spawn parent %q, mode %s, forked from %q; want %s, paginated, none", meta.SpawnParentID, meta.Mode(), meta.ForkedFromID, parentID)
	}
	var rawMeta struct {
		Payload struct {
			SessionID      string `json:"session_id"`
			ParentThreadID string `json:"parent_thread_id"`
			ThreadSource   string `json:"thread_source"`
			AgentNickname  string `json:"agent_nickname"`
		} `json:"payload"`
	}
	data, err := os.ReadFile(child.Path)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	if err := json.Unmarshal(line, &rawMeta); err != nil {
		t.Fatal(err)
	}
	if p := rawMeta.Payload; p.SessionID != parentID || p.ParentThreadID != parentID || p.ThreadSource != "subagent" || p.AgentNickname != nickname {
		t.Fatalf("child meta session_id, parent_thread_id, thread_source, agent_nickname = %+v, want %s, %s, subagent, %s", p, parentID, parentID, nickname)
	}

	// What spool makes of the home: the turns Codex shows, in both files
	// (the parent's notification after its turn opens none).
	for id, path := range map[string]string{parentID: r.parent.Path, childID: child.Path} {
		var got, want []string
		for _, tn := range history(t, path).Turns {
			got = append(got, tn.ID+":"+tn.Status.String())
		}
		for _, tn := range codexTurns[id] {
			want = append(want, tn.ID+":"+tn.Status)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("spool reads the turns of %s as %v, Codex shows %v", path, got, want)
		}
	}
	rel, err := filepath.Rel(home, child.Path)
	if err != nil {
		t.Fatal(err)
	}
	withManager(t, home, func(m *manager.Manager) {
		ctx := t.Context()
		th, err := m.Get(ctx, childID)
		if err != nil {
			t.Fatalf("spool does not index the sub-agent: %v", err)
		}
		if th.RolloutPath != filepath.ToSlash(rel) || th.ParentID != "" || th.Preview != task || th.UserMessageCount != 1 {
			t.Fatalf("spool's row of the child: path %s, fork parent %q, preview %q, %d user messages; want %s, none, %q, 1",
				th.RolloutPath, th.ParentID, th.Preview, th.UserMessageCount, rel, task)
		}
		if rollout.SpawnParent(th.Source) != parentID {
			t.Fatalf("spool's child source %s names spawn parent %q, want %s", th.Source, rollout.SpawnParent(th.Source), parentID)
		}
		by, err := m.SpawnedBy(ctx, childID)
		if err != nil {
			t.Fatal(err)
		}
		if len(by) != 1 || by[0].ID != parentID || by[0].Depth != 1 || by[0].Thread == nil {
			t.Fatalf("SpawnedBy(child) = %s, want the parent %s at depth 1", mustJSON(by), parentID)
		}
		spawns, err := m.Spawns(ctx, parentID)
		if err != nil {
			t.Fatal(err)
		}
		if len(spawns) != 1 || spawns[0].ID != childID || spawns[0].Depth != 1 {
			t.Fatalf("Spawns(parent) = %s, want the child %s at depth 1", mustJSON(spawns), childID)
		}
		if anc, err := m.Ancestors(ctx, childID); err != nil || len(anc) != 0 {
			t.Fatalf("Ancestors(child) = %s, %v; a spawn is no fork", mustJSON(anc), err)
		}

		for _, want := range []struct {
			who, id, turnID, text string
		}{
			{"child", childID, r.childTurnID, task},
			{"parent", parentID, r.parentTurnID, r.prompt},
		} {
			msgs, err := m.UserMessages(ctx, want.id)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 || msgs[0].Preview != want.text || msgs[0].TurnID != want.turnID {
				t.Fatalf("spool's user messages of the %s: %+v, want one, %q in turn %s", want.who, msgs, want.text, want.turnID)
			}
			span, err := m.Turn(ctx, want.id, want.turnID)
			if err != nil {
				t.Fatal(err)
			}
			if span.Status != "completed" || span.UserMessages != 1 {
				t.Fatalf("spool's turn %s of the %s: %+v, want completed with 1 user message", want.turnID, want.who, span)
			}
		}

		rc, err := m.ReadFrom(ctx, parentID, -1)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		checkSpawnCall(t, lines, task, childID, nickname)
	})

	verifyHome(t, home, 2)
}

// TestCodexForkOfSubAgent: Codex's own thread/fork of a spawned sub-agent
// is no sub-agent. The fork's meta has the forking client's source
// ("vscode", as for thread/start over app-server) and none of the child's
// parent_thread_id, thread_source or agent_nickname; Codex reads it with
// forkedFromId the child, parentThreadId, threadSource and agentNickname
// null, and lists it by default. spool reads it the same way: a fork of
// the child with no spawn edge.
func TestCodexForkOfSubAgent(t *testing.T) {
	r := spawnSubAgent(t, "list the tests")
	var fork threadAnswer
	call(t, r.s, "thread/fork", map[string]any{"threadId": r.childID, "excludeTurns": true}, &fork)
	forkID := fork.Thread.ID
	var read struct {
		Thread struct {
			Source         json.RawMessage `json:"source"`
			ForkedFromID   *string         `json:"forkedFromId"`
			ParentThreadID *string         `json:"parentThreadId"`
			ThreadSource   *string         `json:"threadSource"`
			AgentNickname  *string         `json:"agentNickname"`
		} `json:"thread"`
	}
	call(t, r.s, "thread/read", map[string]any{"threadId": forkID}, &read)
	f := read.Thread
	if string(f.Source) != `"vscode"` || f.ForkedFromID == nil || *f.ForkedFromID != r.childID || f.ParentThreadID != nil || f.ThreadSource != nil || f.AgentNickname != nil {
		t.Fatalf("Codex reads its fork of the sub-agent as %s, want source vscode, forked from %s, no parent thread, thread source or nickname", mustJSON(f), r.childID)
	}
	if got, want := slices.Sorted(slices.Values(listIDs(t, r.s, map[string]any{}))), slices.Sorted(slices.Values([]string{r.parent.ID, forkID})); !slices.Equal(got, want) {
		t.Fatalf("default thread/list = %v, want the parent and the fork %v", got, want)
	}
	if err := r.s.Close(); err != nil {
		t.Fatalf("close codex: %v", err)
	}

	meta := firstMeta(t, fork.Thread.Path)
	if meta.Source != "vscode" || meta.SpawnParentID != "" || meta.ForkedFromID != r.childID {
		t.Fatalf("fork meta: source %s, spawn parent %q, forked from %q; want vscode, none, %s", meta.Source, meta.SpawnParentID, meta.ForkedFromID, r.childID)
	}
	withManager(t, r.home, func(m *manager.Manager) {
		ctx := t.Context()
		if by, err := m.SpawnedBy(ctx, forkID); err != nil || len(by) != 0 {
			t.Fatalf("SpawnedBy(fork) = %s, %v; want none", mustJSON(by), err)
		}
		if anc, err := m.Ancestors(ctx, forkID); err != nil || len(anc) != 1 || anc[0].ID != r.childID {
			t.Fatalf("Ancestors(fork) = %s, %v; want the child %s", mustJSON(anc), err, r.childID)
		}
		if spawns, err := m.Spawns(ctx, r.parent.ID); err != nil || len(spawns) != 1 || spawns[0].ID != r.childID {
			t.Fatalf("Spawns(parent) = %s, %v; want only the child %s", mustJSON(spawns), err, r.childID)
		}
	})
	verifyHome(t, r.home, 3)
}

// verifyHome runs indexer.Verify (what reindex --verify runs) on the index
// a manager left in home and fails on any drift or problem, or unless the
// index holds threads rows.
func verifyHome(t *testing.T, home string, threads int) {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(home, manager.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := indexer.Verify(t.Context(), st, rolloutfs.Local{Root: home})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() || rep.Threads != threads {
		t.Fatalf("Verify of the home: %d threads, drifts %v, want %d and none", rep.Threads, rep.Drifts, threads)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify problem: %s", p)
	}
}

// spawnedThread returns the one thread that the completed spawnAgent
// items among notes name as spawned, "" when there is none.
func spawnedThread(t *testing.T, notes []Notification) string {
	t.Helper()
	var spawned []string
	for _, n := range notes {
		if n.Method != "item/completed" {
			continue
		}
		var p struct {
			Item struct {
				Type              string   `json:"type"`
				Tool              string   `json:"tool"`
				Status            string   `json:"status"`
				ReceiverThreadIDs []string `json:"receiverThreadIds"`
			} `json:"item"`
		}
		if err := json.Unmarshal(n.Params, &p); err != nil {
			t.Fatal(err)
		}
		if p.Item.Type == "collabAgentToolCall" && p.Item.Tool == "spawnAgent" && p.Item.Status == "completed" {
			spawned = append(spawned, p.Item.ReceiverThreadIDs...)
		}
	}
	if len(spawned) > 1 {
		t.Fatalf("spawnAgent items name %v, want one thread", spawned)
	}
	if len(spawned) == 0 {
		return ""
	}
	return spawned[0]
}

// checkSpawnCall checks that the parent's history holds Codex's spawn
// call of task (a response_item function_call spawn_agent in the
// multi_agent_v1 namespace) and its output naming the child and its
// nickname, and after them the <subagent_notification> of the child's
// completion.
func checkSpawnCall(t *testing.T, history []byte, task, childID, nickname string) {
	t.Helper()
	type payload struct {
		Type      string          `json:"type"`
		Name      string          `json:"name"`
		Namespace string          `json:"namespace"`
		Arguments string          `json:"arguments"`
		CallID    string          `json:"call_id"`
		Output    string          `json:"output"`
		Content   json.RawMessage `json:"content"`
	}
	var calls, outputs []payload
	notified := false
	rd := rollout.NewReader(bytes.NewReader(history), 0, 0)
	for rd.Next() {
		l := rd.Line()
		if l.Type != rollout.TypeResponseItem {
			continue
		}
		var env struct {
			Payload payload `json:"payload"`
		}
		if err := json.Unmarshal(l.Raw, &env); err != nil {
			t.Fatal(err)
		}
		switch p := env.Payload; p.Type {
		case "function_call":
			calls = append(calls, p)
		case "function_call_output":
			outputs = append(outputs, p)
		case "message":
			notified = notified || len(outputs) > 0 && bytes.Contains(p.Content, []byte(`<subagent_notification>\n{\"agent_path\":\"`+childID+`\"`))
		}
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || len(outputs) != 1 {
		t.Fatalf("parent's history: function calls %+v, outputs %+v, want one of each", calls, outputs)
	}
	var args struct {
		Message string `json:"message"`
	}
	fc := calls[0]
	if err := json.Unmarshal([]byte(fc.Arguments), &args); err != nil || fc.Name != "spawn_agent" || fc.Namespace != "multi_agent_v1" || args.Message != task {
		t.Fatalf("parent's function call %+v, want spawn_agent in multi_agent_v1 with message %q", fc, task)
	}
	var out struct {
		AgentID  string `json:"agent_id"`
		Nickname string `json:"nickname"`
	}
	fo := outputs[0]
	if err := json.Unmarshal([]byte(fo.Output), &out); err != nil || fo.CallID != fc.CallID || out.AgentID != childID || out.Nickname != nickname {
		t.Fatalf("parent's function call output %+v, want call %s answered with agent_id %s, nickname %s", fo, fc.CallID, childID, nickname)
	}
	if !notified {
		t.Fatalf("parent's history has no <subagent_notification> of %s after the call", childID)
	}
}

// waitForText returns once the file at path contains text, woken by
// fsnotify events on its directory; it fails the test after a minute.
func waitForText(t *testing.T, path, text string) {
	t.Helper()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		data, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(text)) {
			return
		}
		select {
		case <-w.Events:
		case err := <-w.Errors:
			t.Fatalf("watch %s: %v", path, err)
		case <-ctx.Done():
			t.Fatalf("%s: no %q written within a minute", path, text)
		}
	}
}

// TestSpoolForkOfCodexSubAgent: spool's fork of a sub-agent Codex spawned
// is, like Codex's own fork of one, no sub-agent: its meta has the source
// Codex reads when there is none and no spawn, so Codex lists it by default
// and spool records no spawner; the spawner still has its one spawn.
func TestSpoolForkOfCodexSubAgent(t *testing.T) {
	r := spawnSubAgent(t, "read the logs")
	if err := r.s.Close(); err != nil {
		t.Fatalf("close codex: %v", err)
	}
	var forkID string
	withManager(t, r.home, func(m *manager.Manager) {
		ctx := t.Context()
		fork, err := m.Fork(ctx, r.childID, manager.ForkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		forkID = fork.ID
		if by, err := m.SpawnedBy(ctx, forkID); err != nil || len(by) != 0 || fork.Source != "vscode" {
			t.Fatalf("spool's fork: spawned by %s (%v), source %q; want none, vscode", mustJSON(by), err, fork.Source)
		}
		if spawns, err := m.Spawns(ctx, r.parent.ID); err != nil || len(spawns) != 1 || spawns[0].ID != r.childID {
			t.Fatalf("Spawns(parent) = %s, %v; want only the child %s", mustJSON(spawns), err, r.childID)
		}
	})
	s := startCodex(t, r.home)
	var read struct {
		Thread struct {
			Source         json.RawMessage `json:"source"`
			ForkedFromID   *string         `json:"forkedFromId"`
			ParentThreadID *string         `json:"parentThreadId"`
		} `json:"thread"`
	}
	call(t, s, "thread/read", map[string]any{"threadId": forkID}, &read)
	if f := read.Thread; string(f.Source) != `"vscode"` || f.ForkedFromID == nil || *f.ForkedFromID != r.childID || f.ParentThreadID != nil {
		t.Fatalf("Codex reads spool's fork of the sub-agent as %s, want source vscode, forked from %s, no parent thread", mustJSON(f), r.childID)
	}
	codexList := slices.Sorted(slices.Values(listIDs(t, s, map[string]any{})))
	if want := slices.Sorted(slices.Values([]string{r.parent.ID, forkID})); !slices.Equal(codexList, want) {
		t.Fatalf("default thread/list = %v, want the parent and spool's fork %v", codexList, want)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close codex: %v", err)
	}
	// spool lists what Codex does by default when asked to leave sub-agents out.
	withManager(t, r.home, func(m *manager.Manager) {
		no := false
		page, err := m.List(t.Context(), manager.ListOptions{Spawned: &no})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, th := range page.Threads {
			ids = append(ids, th.ID)
		}
		if slices.Sort(ids); !slices.Equal(ids, codexList) {
			t.Fatalf("spool's list without sub-agents = %v, Codex's default thread/list = %v", ids, codexList)
		}
	})
}
