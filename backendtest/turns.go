package backendtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// threeTurns starts a thread with the complete Codex turns turn-a, turn-b
// and turn-c, written as Codex writes them (manager.TurnWriter).
func threeTurns(t *testing.T, b manager.Backend) manager.Thread {
	t.Helper()
	tw := implements[manager.TurnWriter](t, b)
	th := start(t, b)
	for _, id := range []string{"turn-a", "turn-b", "turn-c"} {
		res, err := tw.AppendTurn(t.Context(), th.ID, manager.TurnOptions{TurnID: id, Prompt: "prompt " + id, Answer: "answer " + id})
		if err != nil {
			t.Fatal(err)
		}
		th = res.Thread
	}
	return th
}

// testForkAtTheStartOfItsOwnBytes: a reference fork of a whole fork cut
// through the last turn the whole fork inherited takes none of the whole
// fork's own bytes, so its base is the thread that holds them: the whole
// fork can be deleted, and the fork reads on as before.
func testForkAtTheStartOfItsOwnBytes(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	th := threeTurns(t, b)
	whole := forkIn(t, b, th.ID, manager.ForkReference)
	fork, err := b.Fork(ctx, whole.ID, manager.ForkOptions{LastTurnID: "turn-c", Mode: manager.ForkReference})
	if err != nil {
		t.Fatal(err)
	}
	if fork.BaseID != th.ID {
		t.Errorf("the fork's base is %s, want %s, whose bytes it takes (the whole fork is %s)", fork.BaseID, th.ID, whole.ID)
	}
	said := Said(t, b, fork.ID)
	if err := b.Delete(ctx, whole.ID); err != nil {
		t.Fatalf("delete the whole fork: %v", err)
	}
	if after := Said(t, b, fork.ID); !slices.Equal(after, said) {
		t.Fatalf("the fork says %q after its parent went, %q before", after, said)
	}
}

// historyTurns reads a thread's whole history and returns its turns as
// rollout.ScanTurns sees them.
func historyTurns(t *testing.T, b manager.Backend, id string) (rollout.History, []byte) {
	t.Helper()
	data := history(t, b, id)
	h, err := rollout.ScanTurns(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return h, data
}

// ReadAll returns what rc yields and closes it; err is the error of the
// call that returned rc. Either error fails t.
func ReadAll(t *testing.T, rc io.ReadCloser, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testReadTurnByID reads one turn by its id: exactly its lines, from its
// task_started through its task_complete, at positions in the history; a
// reference fork reads an inherited turn at the same positions, and not a
// turn past its cut.
func testReadTurnByID(t *testing.T, b manager.Backend) {
	tr := implements[manager.TurnReader](t, b)
	th := threeTurns(t, b)
	h, data := historyTurns(t, b, th.ID)
	// Each user message names its turn and where a fork before it is cut
	// (its turn's start), as the API's turns list answers them.
	msgs, err := b.UserMessages(t.Context(), th.ID)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("UserMessages: %+v, %v", msgs, err)
	}
	for i, m := range msgs {
		if want := []string{"turn-a", "turn-b", "turn-c"}[i]; m.TurnID != want || m.Cut() != h.Turns[i].Offset {
			t.Fatalf("user message %d: turn %q, cut at %d; want %s, cut at its turn's start %d", i, m.TurnID, m.Cut(), want, h.Turns[i].Offset)
		}
	}
	rc, span, err := tr.ReadTurnByID(t.Context(), th.ID, "turn-b")
	got := ReadAll(t, rc, err)
	if span.Offset != h.Turns[1].Offset || span.End != h.Turns[1].End || span.Status != "completed" || span.UserMessage != 1 || span.UserMessages != 1 {
		t.Fatalf("span = %+v, want turn-b at [%d, %d), completed, user message 1", span, h.Turns[1].Offset, h.Turns[1].End)
	}
	if want := data[span.Offset:span.End]; !bytes.Equal(got, want) {
		t.Fatalf("turn-b read %q, want %q", got, want)
	}
	child, err := b.Fork(t.Context(), th.ID, manager.ForkOptions{LastTurnID: "turn-b"})
	if err != nil {
		t.Fatal(err)
	}
	rc, childSpan, err := tr.ReadTurnByID(t.Context(), child.ID, "turn-b")
	if got := ReadAll(t, rc, err); childSpan != span || !bytes.Equal(got, data[span.Offset:span.End]) {
		t.Fatalf("the fork's turn-b: span %+v, %q; want the parent's", childSpan, got)
	}
	for _, tc := range []struct {
		name, id, turn string
		want           error
	}{
		{"past the fork's cut", child.ID, "turn-c", manager.ErrNotFound},
		{"unknown turn", th.ID, "turn-z", manager.ErrNotFound},
		{"empty turn id", th.ID, "", manager.ErrInvalidArgument},
		{"unknown thread", "0195e7a0-0000-7000-8000-000000000000", "turn-a", manager.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := tr.ReadTurnByID(t.Context(), tc.id, tc.turn); !errors.Is(err, tc.want) {
				t.Fatalf("ReadTurnByID(%s, %q) = %v, want %v", tc.id, tc.turn, err, tc.want)
			}
		})
	}
}

// testLongTurnID: a turn id far longer than Codex's (a UUID), such as a
// client may send, is kept, read and forked by like any other.
func testLongTurnID(t *testing.T, b manager.Backend) {
	tw := implements[manager.TurnWriter](t, b)
	tr := implements[manager.TurnReader](t, b)
	var long strings.Builder // 10,240 bytes that do not compress much
	for sum := sha256.Sum256(nil); long.Len() < 10240; sum = sha256.Sum256(sum[:]) {
		long.WriteString(hex.EncodeToString(sum[:]))
	}
	th := start(t, b)
	for _, id := range []string{long.String(), "turn-after"} {
		if _, err := tw.AppendTurn(t.Context(), th.ID, manager.TurnOptions{TurnID: id, Prompt: "prompt", Answer: "answer"}); err != nil {
			t.Fatalf("append turn of a %d-byte id: %v", len(id), err)
		}
	}
	rc, span, err := tr.ReadTurnByID(t.Context(), th.ID, long.String())
	if got := ReadAll(t, rc, err); span.UserMessage != 0 || !bytes.Contains(got, []byte(long.String())) {
		t.Fatalf("turn by its long id: span %+v, %d bytes; want the first turn", span, len(got))
	}
	child, err := b.Fork(t.Context(), th.ID, manager.ForkOptions{LastTurnID: long.String()})
	if err != nil || child.UserMessageCount != 1 {
		t.Fatalf("fork through the long-id turn: %d user messages, %v; want 1", child.UserMessageCount, err)
	}
}

// testForkByTurnID forks through the end of a turn named by its id, as
// Codex's thread/fork lastTurnId does (the child holds the turns up to and
// including it, all completed, cut right after its task_complete), and
// before a turn (cut at its first start line), by reference and by copy.
func testForkByTurnID(t *testing.T, b manager.Backend) {
	th := threeTurns(t, b)
	parent, data := historyTurns(t, b, th.ID)
	cases := []struct {
		name      string
		o         manager.ForkOptions
		offset    int64
		forkMsg   int
		turns     []string
		copyBytes bool
	}{
		{"last turn-b", manager.ForkOptions{LastTurnID: "turn-b"}, parent.Turns[1].End, 2, []string{"turn-a", "turn-b"}, false},
		{"last turn-c", manager.ForkOptions{LastTurnID: "turn-c"}, parent.Turns[2].End, -1, []string{"turn-a", "turn-b", "turn-c"}, false},
		{"before turn-b", manager.ForkOptions{BeforeTurnID: "turn-b"}, parent.Turns[1].Offset, 1, []string{"turn-a"}, false},
		{"last turn-a, copy", manager.ForkOptions{LastTurnID: "turn-a", Mode: manager.ForkCopy}, parent.Turns[0].End, 1, []string{"turn-a"}, true},
		{"before turn-c, copy", manager.ForkOptions{BeforeTurnID: "turn-c", Mode: manager.ForkCopy}, parent.Turns[2].Offset, 2, []string{"turn-a", "turn-b"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			child, err := b.Fork(t.Context(), th.ID, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if child.ForkOffset != tc.offset || child.ForkUserMessage != tc.forkMsg || child.UserMessageCount != len(tc.turns) {
				t.Fatalf("fork at %d before message %d with %d messages, want at %d before %d with %d",
					child.ForkOffset, child.ForkUserMessage, child.UserMessageCount, tc.offset, tc.forkMsg, len(tc.turns))
			}
			h, got := historyTurns(t, b, child.ID)
			var ids []string
			for _, turn := range h.Turns {
				ids = append(ids, turn.ID)
				if turn.Status != rollout.TurnCompleted {
					t.Fatalf("the child's turn %s is %v, want completed", turn.ID, turn.Status)
				}
			}
			if !slices.Equal(ids, tc.turns) {
				t.Fatalf("the child's turns = %v, want %v", ids, tc.turns)
			}
			// The child says what the parent said before the cut.
			if want := items(t, data[:tc.offset]); len(items(t, got)) < len(want) || !slices.Equal(items(t, got)[:len(want)], want) {
				t.Fatalf("the child does not say what the parent said before %d", tc.offset)
			}
			if tc.copyBytes && child.BaseID != "" {
				t.Fatalf("a copy fork has base %s", child.BaseID)
			}
		})
	}
}

// testForkByTurnIDRefuses: an unknown turn, a turn in progress (Codex
// refuses to fork through one: 409 turn_in_progress) and two fork points
// at once are refused, and nothing is created.
func testForkByTurnIDRefuses(t *testing.T, b manager.Backend) {
	th := threeTurns(t, b)
	open, _ := json.Marshal(map[string]any{"type": "task_started", "turn_id": "turn-open"})
	if _, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{{Type: rollout.TypeEventMsg, Payload: open}, userItem("still thinking")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	one := 1
	tests := []struct {
		name string
		o    manager.ForkOptions
		want error
	}{
		{"unknown turn", manager.ForkOptions{LastTurnID: "no-such-turn"}, manager.ErrNotFound},
		{"unknown turn before", manager.ForkOptions{BeforeTurnID: "no-such-turn"}, manager.ErrNotFound},
		{"turn in progress", manager.ForkOptions{LastTurnID: "turn-open"}, manager.ErrTurnInProgress},
		{"two points", manager.ForkOptions{LastTurnID: "turn-a", BeforeTurnID: "turn-b"}, manager.ErrInvalidArgument},
		{"message and turn", manager.ForkOptions{LastTurnID: "turn-a", BeforeUserMessage: &one}, manager.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := b.Fork(t.Context(), th.ID, tc.o); !errors.Is(err, tc.want) {
				t.Fatalf("Fork(%+v) = %v, want %v", tc.o, err, tc.want)
			}
		})
	}
	page, err := b.List(t.Context(), manager.ListOptions{})
	if err != nil || len(page.Threads) != 1 {
		t.Fatalf("threads after refused forks: %d (%v), want the parent alone", len(page.Threads), err)
	}
	// Before the open turn is a cut at its task_started.
	h, _ := historyTurns(t, b, th.ID)
	child, err := b.Fork(t.Context(), th.ID, manager.ForkOptions{BeforeTurnID: "turn-open"})
	if err != nil || child.ForkOffset != h.Turns[3].Offset || child.UserMessageCount != 3 {
		t.Fatalf("fork before the open turn: %+v, %v; want 3 messages, cut at %d", child, err, h.Turns[3].Offset)
	}
}

// testTurnWithoutAUserMessage: a Codex turn that holds no counted user
// message (a shell command's: its <user_shell_command> message is context)
// is read by its id, forked through and before, and reverted before, as
// Codex does, though the index knows turns by their messages.
func testTurnWithoutAUserMessage(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	tr := b.(manager.TurnReader)
	th := withShellTurn(t, b)
	h, data := historyTurns(t, b, th.ID)
	if len(h.Turns) != 3 || h.Turns[1].ID != "turn-s" {
		t.Fatalf("turns %+v, want turn-a, turn-s, turn-b", h.Turns)
	}
	want := h.Turns[1]
	rc, span, err := tr.ReadTurnByID(ctx, th.ID, "turn-s")
	got := ReadAll(t, rc, err)
	if span.Offset != want.Offset || span.End != want.End || span.Status != "completed" || span.UserMessage != 1 || span.UserMessages != 0 {
		t.Fatalf("span = %+v, want turn-s at [%d, %d), completed, after user message 0, holding none", span, want.Offset, want.End)
	}
	if !bytes.Equal(got, data[want.Offset:want.End]) {
		t.Fatalf("turn-s read %q, want %q", got, data[want.Offset:want.End])
	}
	child, err := b.Fork(ctx, th.ID, manager.ForkOptions{LastTurnID: "turn-s"})
	if err != nil {
		t.Fatalf("fork through turn-s: %v", err)
	}
	if child.UserMessageCount != 1 || !bytes.HasPrefix(history(t, b, child.ID), data[:want.End]) {
		t.Fatalf("fork through turn-s: %d user messages, want 1, and the history through the turn", child.UserMessageCount)
	}
	before, err := b.Fork(ctx, th.ID, manager.ForkOptions{BeforeTurnID: "turn-s"})
	if err != nil {
		t.Fatalf("fork before turn-s: %v", err)
	}
	if h := history(t, b, before.ID); before.UserMessageCount != 1 || !bytes.HasPrefix(h, data[:want.Offset]) || bytes.Contains(h, []byte("user_shell_command")) {
		t.Fatalf("fork before turn-s: %d user messages, want 1, and the history up to the turn's start", before.UserMessageCount)
	}
	if _, _, err := tr.ReadTurnByID(ctx, th.ID, "turn-z"); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("an unknown turn: %v, want ErrNotFound", err)
	}

	// A revert before it (on a thread no fork continues) cuts at its start.
	other := withShellTurn(t, b)
	reverted, err := reverter(t, b).Revert(ctx, other.ID, manager.RevertOptions{BeforeTurnID: "turn-s"})
	if err != nil {
		t.Fatalf("revert before turn-s: %v", err)
	}
	h2, data2 := historyTurns(t, b, other.ID)
	if reverted.UserMessageCount != 1 || len(h2.Turns) != 1 || h2.Turns[0].ID != "turn-a" || bytes.Contains(data2, []byte("user_shell_command")) {
		t.Fatalf("after the revert before turn-s: %d user messages, turns %+v; want turn-a alone", reverted.UserMessageCount, h2.Turns)
	}
	if _, _, err := tr.ReadTurnByID(ctx, other.ID, "turn-s"); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("turn-s after the revert: %v, want ErrNotFound", err)
	}
}

// withShellTurn starts a thread of three turns: turn-a and turn-b with a
// prompt each, and between them turn-s, a shell command's, whose only user
// message (<user_shell_command>) is context, as Codex writes it.
func withShellTurn(t *testing.T, b manager.Backend) manager.Thread {
	t.Helper()
	ctx := t.Context()
	tw := b.(manager.TurnWriter)
	th := start(t, b)
	if _, err := tw.AppendTurn(ctx, th.ID, manager.TurnOptions{TurnID: "turn-a", Prompt: "prompt a", Answer: "answer a"}); err != nil {
		t.Fatal(err)
	}
	event := func(payload map[string]any) rollout.Item {
		data, _ := json.Marshal(payload)
		return rollout.Item{Type: rollout.TypeEventMsg, Payload: data}
	}
	context, _ := json.Marshal(map[string]any{"turn_id": "turn-s", "cwd": "/work"})
	if _, err := b.AppendWith(ctx, th.ID, []rollout.Item{
		{Type: rollout.TypeTurnContext, Payload: context},
		event(map[string]any{"type": "task_started", "turn_id": "turn-s"}),
		userItem("<user_shell_command>\nls\n</user_shell_command>"),
		event(map[string]any{"type": "task_complete", "turn_id": "turn-s"}),
	}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := tw.AppendTurn(ctx, th.ID, manager.TurnOptions{TurnID: "turn-b", Prompt: "prompt b", Answer: "answer b"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Thread.UserMessageCount != 2 {
		t.Fatalf("%d user messages, want 2 (the shell command's is context)", res.Thread.UserMessageCount)
	}
	return res.Thread
}

// testLinesNestedTooDeep: Codex skips a line nested deeper than
// rollout.CodexMaxDepth (compat: TestCodexSkipsLinesNestedTooDeep), so a
// user message nested so deep is not counted, and a task_started so deep
// starts no turn: the message after it is outside any turn, cut at its
// own line, and the turn cannot be read or forked through.
func testLinesNestedTooDeep(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	th := threeTurns(t, b)
	deep := func(payload map[string]any) json.RawMessage {
		arrays := rollout.CodexMaxDepth + 1 - 2 // the line and its payload are two levels
		data, _ := json.Marshal(payload)
		return append(data[:len(data)-1], `,"x":`+strings.Repeat("[", arrays)+strings.Repeat("]", arrays)+"}"...)
	}
	deepUser := userItem("deep prompt")
	deepUser.Payload = append(deepUser.Payload[:len(deepUser.Payload)-1], `,"x":`+strings.Repeat("[", rollout.CodexMaxDepth-1)+strings.Repeat("]", rollout.CodexMaxDepth-1)+"}"...)
	res, err := b.AppendWith(ctx, th.ID, []rollout.Item{
		{Type: rollout.TypeEventMsg, Payload: deep(map[string]any{"type": "task_started", "turn_id": "turn-deep"})},
		userItem("after the deep start"),
		deepUser,
	}, manager.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Thread.UserMessageCount; got != 4 {
		t.Fatalf("user messages = %d, want 4: the deep one is not counted", got)
	}
	msgs, _, err := b.UserMessagesBetween(ctx, th.ID, 3, 4)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("message 3: %+v, %v", msgs, err)
	}
	if m := msgs[0]; m.Offset != res.Offsets[1] || m.Cut() != m.Offset || m.TurnID != "" {
		t.Fatalf("message 3 at %d cut at %d in turn %q; want at %d, cut there, in no turn", m.Offset, m.Cut(), m.TurnID, res.Offsets[1])
	}
	if _, err := b.Fork(ctx, th.ID, manager.ForkOptions{LastTurnID: "turn-deep"}); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("fork through the turn of the deep start: %v, want ErrNotFound", err)
	}
}
