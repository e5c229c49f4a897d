//go:build compat

package compat

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/internal/testbin"
	"github.com/spoolhq/spool/rollout"
)

// buildMock builds compat/internal/mockresponses into a temporary
// directory and returns its path.
func buildMock(t *testing.T) string {
	t.Helper()
	bin, err := testbin.Build(t.Context(), t.TempDir(), "./internal/mockresponses")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// turnShape describes the lines of the turn whose task_started is at or
// after from: "type/payload.type" per line, with the item type of
// item_completed events, leaving out what Codex adds around the exchange
// and RenderTurn does not write (context messages, world_state,
// thread_settings_applied, token accounting).
func turnShape(t *testing.T, data []byte, from int64) []string {
	t.Helper()
	var shape []string
	rd := rollout.NewReader(bytes.NewReader(data[from:]), from, 0)
	started := false
	for rd.Next() {
		l := rd.Line()
		if l.Type == rollout.TypeEventMsg && l.PayloadType == "task_started" {
			started = true
		}
		if !started {
			continue
		}
		var env struct {
			Payload struct {
				Role string `json:"role"`
				Item struct {
					Type string `json:"type"`
				} `json:"item"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(l.Raw, &env); err != nil {
			t.Fatal(err)
		}
		kind := l.Type + "/" + l.PayloadType
		switch {
		case l.Type == "world_state", l.Type == "token_usage_record",
			l.PayloadType == "thread_settings_applied", l.PayloadType == "token_count",
			l.Type == rollout.TypeResponseItem && env.Payload.Role == "developer",
			l.Type == rollout.TypeResponseItem && env.Payload.Role == "user" && rollout.Classify(l).Kind != rollout.KindUserMessage:
			continue
		case l.PayloadType == "item_completed":
			kind += ":" + env.Payload.Item.Type
		case l.Type == rollout.TypeResponseItem:
			kind += ":" + env.Payload.Role
		}
		shape = append(shape, kind)
		if l.PayloadType == "task_complete" {
			break
		}
	}
	return shape
}

// TestRenderTurnMatchesCodex runs a real turn in Codex 0.169 (its model
// answered by mockresponses inside the network namespace), in a paginated
// thread Codex started and in a legacy thread spool wrote, and checks that
// rollout.RenderTurn writes the lines of a turn in the order and shapes
// Codex wrote them, leaving out only Codex's context and token lines.
func TestRenderTurnMatchesCodex(t *testing.T) {
	mock := buildMock(t)
	for _, mode := range []rollout.HistoryMode{rollout.HistoryPaginated, rollout.HistoryLegacy} {
		t.Run(string(mode), func(t *testing.T) {
			home := newHome(t)
			var threadID string
			var from int64
			if mode == rollout.HistoryLegacy {
				st := newSpoolThread(t, mode, 1, 41)
				st.write(t, home)
				writeFile(t, st.Path, bytes.Replace(st.Data, []byte(`"model_provider":"openai"`), []byte(`"model_provider":"mock"`), 1))
				threadID, from = st.ID, int64(len(st.Data))
			}
			stderr := &fixtures.Buffer{}
			s, err := Start(t.Context(), Options{Binary: codexBinary(t), Home: home, Stderr: stderr, MockResponses: mock})
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			t.Cleanup(func() { _ = s.Close() })
			var th threadAnswer
			if mode == rollout.HistoryLegacy {
				call(t, s, "thread/resume", map[string]any{"threadId": threadID, "excludeTurns": true}, &th)
			} else {
				call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &th)
			}
			var started struct {
				Turn struct {
					ID string `json:"id"`
				} `json:"turn"`
			}
			call(t, s, "turn/start", map[string]any{"threadId": th.Thread.ID, "input": []any{map[string]any{"type": "text", "text": "hello world"}}}, &started)
			if _, err := s.WaitNotification(t.Context(), "turn/completed"); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if err := s.Close(); err != nil {
				t.Fatalf("close codex: %v", err)
			}
			data, err := os.ReadFile(th.Thread.Path)
			if err != nil {
				t.Fatal(err)
			}
			codex := turnShape(t, data, from)
			h, err := rollout.ScanTurns(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			last := h.Turns[len(h.Turns)-1]
			if last.ID != started.Turn.ID || last.Status != rollout.TurnCompleted || last.UserMessages != 1 {
				t.Fatalf("spool reads Codex's turn as %+v, want %s completed with 1 message", last, started.Turn.ID)
			}

			now := time.Now()
			lines, _, err := rollout.RenderTurn(mode, 1, rollout.TurnSpec{
				ThreadID: th.Thread.ID, TurnID: "t", UserText: "hello world", AgentText: "mock answer",
				Started: now, Completed: now, UserItemID: "u", AgentItemID: "a",
			})
			if err != nil {
				t.Fatal(err)
			}
			spool := turnShape(t, lines, 0)
			if !slices.Equal(codex, spool) {
				t.Fatalf("Codex 0.169 wrote the turn as\n%s\nRenderTurn writes\n%s", strings.Join(codex, "\n"), strings.Join(spool, "\n"))
			}
		})
	}
}

// TestCutOfCodexTurns: in a legacy thread whose turns Codex ran itself
// (with its context messages inside the turns), a copy fork that spool cuts
// at UserMessage.CutOffset of user message 1 is shown by Codex with
// exactly the turns of Codex's own fork through turn 0.
func TestCutOfCodexTurns(t *testing.T) {
	mock := buildMock(t)
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryLegacy, 0, 42)
	st.write(t, home)
	writeFile(t, st.Path, bytes.Replace(st.Data, []byte(`"model_provider":"openai"`), []byte(`"model_provider":"mock"`), 1))
	stderr := &fixtures.Buffer{}
	s, err := Start(t.Context(), Options{Binary: codexBinary(t), Home: home, Stderr: stderr, MockResponses: mock})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { _ = s.Close() })
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	var turnIDs []string
	for i, text := range []string{"first question", "second question"} {
		var started struct {
			Turn struct {
				ID string `json:"id"`
			} `json:"turn"`
		}
		call(t, s, "turn/start", map[string]any{"threadId": st.ID, "input": []any{map[string]any{"type": "text", "text": text}}}, &started)
		if _, err := s.WaitNotifications(t.Context(), "turn/completed", i+1); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		turnIDs = append(turnIDs, started.Turn.ID)
	}
	var own threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": st.ID, "lastTurnId": turnIDs[0], "excludeTurns": true}, &own)
	want := describe(turnsOf(t, s, own.Thread.ID))
	if err := s.Close(); err != nil {
		t.Fatalf("close codex: %v", err)
	}

	data, err := os.ReadFile(st.Path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := rollout.ScanTurns(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Messages) != 2 || h.Messages[1].Text != "second question" || h.Messages[1].TurnID != turnIDs[1] {
		t.Fatalf("spool counts %+v in Codex's turns, want the two questions", h.Messages)
	}
	const forkID = "019dab90-0000-7000-8000-000000000043"
	created := st.Created.Add(time.Hour)
	meta := rollout.SessionMeta{ID: forkID, ForkedFromID: st.ID, Timestamp: rollout.FormatTimestamp(created), Cwd: "/tmp", Source: "cli", ModelProvider: "mock"}
	line, err := rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta})
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := rollout.SessionPath(rollout.FileName(created, forkID))
	writeFile(t, filepath.Join(home, filepath.FromSlash(rel)), append(line, data[:h.Messages[1].CutOffset]...))

	s2 := startCodex(t, home)
	if got := describe(turnsOf(t, s2, forkID)); got != want || !strings.Contains(got, "first question") {
		t.Fatalf("spool's cut: Codex shows %s, its own fork %s", got, want)
	}
}
