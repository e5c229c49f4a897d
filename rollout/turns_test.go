package rollout

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/fixtures"
)

// TestTurnTrackerKeepsSeedCuts: histories without turn lines (the items of
// Codex's drops_from_last_user_only and
// ignores_session_prefix_messages_when_truncating) are cut right before
// the message's own line, as the seed rule says.
func TestTurnTrackerKeepsSeedCuts(t *testing.T) {
	tests := []struct {
		name     string
		items    []string
		before   int
		wantKept []string
	}{
		{"drops_from_last_user_only", []string{"meta", "u1", "a1", "a2", "u2", "a3", "reasoning", "call", "a4"}, 1, []string{"meta", "u1", "a1", "a2"}},
		{"ignores_session_prefix_messages_when_truncating", []string{"meta", "agents", "env", "u1", "a1", "u2", "a2"}, 1, []string{"meta", "agents", "env", "u1", "a1"}},
		{"ignores_session_prefix_messages_when_truncating before 0", []string{"meta", "agents", "env", "u1", "a1"}, 0, []string{"meta", "agents", "env"}},
		{"rollback", []string{"meta", "u1", "a1", "u2", "a2", "rollback1", "u3", "a3", "u4", "a4"}, 2, []string{"meta", "u1", "a1", "u2", "a2", "rollback1", "u3", "a3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var file, want bytes.Buffer
			for _, it := range tt.items {
				file.WriteString(seedItem(t, it) + "\n")
			}
			for _, it := range tt.wantKept {
				want.WriteString(seedItem(t, it) + "\n")
			}
			h, err := ScanTurns(bytes.NewReader(file.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Turns) != 0 {
				t.Fatalf("turns = %+v, want none", h.Turns)
			}
			m := h.Messages[tt.before]
			if m.CutOffset != m.Offset || m.TurnID != "" {
				t.Fatalf("message %d: cut %d turn %q, want its own offset %d and no turn", tt.before, m.CutOffset, m.TurnID, m.Offset)
			}
			if got := file.Bytes()[:m.CutOffset]; !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("prefix:\n%s\nwant:\n%s", got, want.Bytes())
			}
		})
	}
}

// turnItem builds the lines of the synthetic turn tests.
func turnItem(t *testing.T, name string) string {
	t.Helper()
	kind, id, _ := strings.Cut(name, ":")
	switch kind {
	case "start":
		return `{"timestamp":"t","type":"event_msg","payload":{"type":"task_started","turn_id":"` + id + `"}}`
	case "ctx":
		return `{"timestamp":"t","type":"turn_context","payload":{"turn_id":"` + id + `","cwd":"/"}}`
	case "done":
		return `{"timestamp":"t","type":"event_msg","payload":{"type":"task_complete","turn_id":"` + id + `"}}`
	case "abort":
		return `{"timestamp":"t","type":"event_msg","payload":{"type":"turn_aborted","turn_id":"` + id + `","reason":"interrupted"}}`
	case "deepstart", "deepdone": // nested deeper than Codex reads
		return nestedLine(turnItem(t, strings.TrimPrefix(kind, "deep")+":"+id), CodexMaxDepth+1)
	}
	return seedItem(t, name)
}

func TestTurnTracker(t *testing.T) {
	type want struct {
		turns   string // "id:status:messages:first-line:end-line" per turn
		cuts    string // line number each message is cut at
		wantIDs string // turn id of each message
	}
	tests := []struct {
		name  string
		items []string
		want  want
	}{
		{
			name:  "codex 0.169 order",
			items: []string{"meta", "start:t1", "env", "ctx:t1", "u1", "a1", "done:t1", "start:t2", "ctx:t2", "u2", "a2", "done:t2"},
			want:  want{"t1:completed:1:1:7 t2:completed:1:7:12", "1 7", "t1 t2"},
		},
		{
			name:  "turn_context first",
			items: []string{"meta", "ctx:t1", "start:t1", "u1", "done:t1", "ctx:t2", "start:t2", "u2", "done:t2"},
			want:  want{"t1:completed:1:1:5 t2:completed:1:5:9", "1 5", "t1 t2"},
		},
		{
			name:  "second message of a turn is cut at its line",
			items: []string{"meta", "start:t1", "u1", "a1", "u2", "done:t1"},
			want:  want{"t1:completed:2:1:6", "1 4", "t1 t1"},
		},
		{
			name:  "aborted turn",
			items: []string{"meta", "start:t1", "u1", "abort:t1", "start:t2", "u2"},
			want:  want{"t1:aborted:1:1:4 t2:open:1:4:-", "1 4", "t1 t2"},
		},
		{
			name:  "open turn ended by the next start",
			items: []string{"meta", "start:t1", "u1", "start:t2", "u2", "done:t2"},
			want:  want{"t1:open:1:1:3 t2:completed:1:3:6", "1 3", "t1 t2"},
		},
		{
			name:  "end naming another turn is ignored",
			items: []string{"meta", "start:t1", "u1", "done:t9", "u2", "done:t1"},
			want:  want{"t1:completed:2:1:6", "1 4", "t1 t1"},
		},
		{
			name:  "message between turns",
			items: []string{"meta", "start:t1", "u1", "done:t1", "u2", "start:t2", "u3", "done:t2"},
			want:  want{"t1:completed:1:1:4 t2:completed:1:5:8", "1 4 5", "t1  t2"},
		},
		{
			name:  "turn_context without turn_id names no turn",
			items: []string{"meta", "ctx:", "u1", "a1", "ctx:", "u2"},
			want:  want{"", "2 5", " "},
		},
		{
			name:  "task_started without turn_id starts a turn",
			items: []string{"meta", "start:", "ctx:", "u1", "done:", "start:", "u2"},
			want:  want{":completed:1:1:5 :open:1:5:-", "1 5", " "},
		},
		{
			name:  "end nested deeper than Codex reads ends nothing",
			items: []string{"meta", "start:t1", "u1", "deepdone:t1"},
			want:  want{"t1:open:1:1:-", "1", "t1"},
		},
		{
			name:  "start nested deeper than Codex reads starts nothing",
			items: []string{"meta", "start:t1", "u1", "done:t1", "deepstart:t2", "u2", "done:t2"},
			want:  want{"t1:completed:1:1:4", "1 5", "t1 "},
		},
		{
			name:  "rollback drops the turn",
			items: []string{"meta", "start:t1", "u1", "done:t1", "start:t2", "u2", "done:t2", "rollback1", "start:t3", "u3", "done:t3"},
			want:  want{"t1:completed:1:1:4 t3:completed:1:8:11", "1 8", "t1 t3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var file bytes.Buffer
			var lineAt []int64 // offset of each line
			for _, it := range tt.items {
				lineAt = append(lineAt, int64(file.Len()))
				file.WriteString(turnItem(t, it) + "\n")
			}
			lineAt = append(lineAt, int64(file.Len()))
			lineOf := func(off int64) string {
				for i, o := range lineAt {
					if o == off {
						return strconv.Itoa(i)
					}
				}
				return "-"
			}
			h, err := ScanTurns(bytes.NewReader(file.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			var turns, cuts, ids []string
			for _, tn := range h.Turns {
				end := "-"
				if tn.End != 0 {
					end = lineOf(tn.End)
				}
				turns = append(turns, tn.ID+":"+tn.Status.String()+":"+strconv.Itoa(tn.UserMessages)+":"+lineOf(tn.Offset)+":"+end)
			}
			for _, m := range h.Messages {
				cuts = append(cuts, lineOf(m.CutOffset))
				ids = append(ids, m.TurnID)
			}
			got := want{strings.Join(turns, " "), strings.Join(cuts, " "), strings.Join(ids, " ")}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestTurnsOfCodexFixtures: in the hand-written Codex-shaped fixtures, a
// fork before user message 1 of 019dab4f is cut at its turn's task_started
// (line 19), not at the message (line 20); the fixture fork 019dab60, cut
// at the message line, holds a turn that never completes: the phantom
// "interrupted" turn Codex 0.169 shows.
func TestTurnsOfCodexFixtures(t *testing.T) {
	dir := fixtures.CodexHome(t)
	if dir == "" {
		t.Fatal("../shared/codex-fixtures not found beside the repository")
	}
	read := func(name string) History {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, "sessions/2026/04/20", name))
		if err != nil {
			t.Fatal(err)
		}
		h, err := ScanTurns(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	parent := read("rollout-2026-04-20T10-15-30-019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c.jsonl")
	if len(parent.Turns) != 2 || parent.Turns[0].Status != TurnCompleted || parent.Turns[1].Status != TurnCompleted {
		t.Fatalf("parent turns = %+v, want 2 completed", parent.Turns)
	}
	m := parent.Messages[1]
	if m.Offset != 7158 || m.CutOffset != parent.Turns[1].Offset || m.CutOffset >= m.Offset || m.TurnID != parent.Turns[1].ID {
		t.Fatalf("message 1 = %+v, want cut at turn 2's start %d before its line 7158", m, parent.Turns[1].Offset)
	}
	fork := read("rollout-2026-04-20T10-34-12-019dab60-0a1b-72c3-8d4e-5f6a7b8c9d0e.jsonl")
	last := fork.Turns[len(fork.Turns)-1]
	if len(fork.Turns) != 2 || last.Status != TurnOpen || last.UserMessages != 0 {
		t.Fatalf("fixture fork turns = %+v, want a completed turn and an open one without messages", fork.Turns)
	}
}
