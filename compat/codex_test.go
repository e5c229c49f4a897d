//go:build compat

package compat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// TestCodexWritesWhatSpoolReads: a thread Codex 0.169 starts is paginated;
// spool's rollout package parses its meta, every line's ordinal (0, 1, 2,
// ... with no gap or repeat), counts the user message injected through
// thread/inject_items (and not Codex's environment_context), and finds the
// name (session_index.jsonl only) and the archived file where Codex put
// them.
func TestCodexWritesWhatSpoolReads(t *testing.T) {
	home := newHome(t)
	s := startCodex(t, home)
	var started threadAnswer
	call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &started)
	th := started.Thread
	if th.HistoryMode != "paginated" {
		t.Fatalf("thread/start historyMode = %q, want paginated", th.HistoryMode)
	}
	items := []map[string]any{
		{"type": "message", "role": "user", "content": []map[string]string{{"type": "input_text", "text": "injected prompt"}}},
		{"type": "message", "role": "assistant", "content": []map[string]string{{"type": "output_text", "text": "injected answer"}}},
	}
	call(t, s, "thread/inject_items", map[string]any{"threadId": th.ID, "items": items}, nil)
	call(t, s, "thread/name/set", map[string]any{"threadId": th.ID, "name": "compat name"}, nil)

	meta := firstMeta(t, th.Path)
	if meta.ID != th.ID || meta.Mode() != rollout.HistoryPaginated || meta.HistoryBase != nil || meta.ForkedFromID != "" {
		t.Fatalf("meta = %+v, want id %s, paginated, no base, no parent", meta, th.ID)
	}
	data, err := os.ReadFile(th.Path)
	if err != nil {
		t.Fatal(err)
	}
	rd := rollout.NewReader(bytes.NewReader(data), 0, 0)
	want := int64(0)
	for rd.Next() {
		n, ok, err := rollout.LineOrdinal(rd.Line().Raw)
		if err != nil || !ok || n != want {
			t.Fatalf("line %d: ordinal %d ok=%v err=%v, want %d", rd.Line().Number, n, ok, err, want)
		}
		want++
	}
	if want < 5 {
		t.Fatalf("only %d lines in a started thread", want)
	}
	msgs, err := rollout.CountUserMessages(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Text != "injected prompt" {
		t.Fatalf("counted user messages = %+v, want only the injected prompt", msgs)
	}

	// Codex 0.169 records a rename in session_index.jsonl only, not as a
	// thread_name_updated event in the rollout.
	rd = rollout.NewReader(bytes.NewReader(data), 0, 0)
	for rd.Next() {
		if rollout.Classify(rd.Line()).Kind == rollout.KindNameUpdate {
			t.Fatalf("line %d is a thread_name_updated event", rd.Line().Number)
		}
	}
	index, err := os.ReadFile(filepath.Join(home, rollout.SessionIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	names, err := rollout.ReadNames(t.Context(), bytes.NewReader(index))
	if err != nil {
		t.Fatal(err)
	}
	if got := names[th.ID].ThreadName; got != "compat name" {
		t.Fatalf("session_index name = %q, want %q", got, "compat name")
	}

	call(t, s, "thread/archive", map[string]any{"threadId": th.ID}, nil)
	archived := filepath.Join(home, rollout.ArchivedSessionsDir, filepath.Base(th.Path))
	if _, err := os.Stat(archived); err != nil {
		t.Fatalf("archive: %v", err)
	}
	if id, _, err := rollout.ParseFileName(filepath.Base(archived)); err != nil || id != th.ID {
		t.Fatalf("archived name %s: id %q, %v", archived, id, err)
	}
}

// TestCodexShowsSpoolTurns: a thread written by rollout.RenderTurn is
// listed by Codex with its first prompt as preview and shown turn by turn
// with spool's turn ids, prompts and answers, all completed, in both
// history modes; spool's TurnTracker finds the same turns. A paginated
// thread's turns appear once Codex has loaded it (thread/resume): Codex
// serves thread/turns/list from a projection in thread_history_1.sqlite
// that it fills when it loads a thread.
func TestCodexShowsSpoolTurns(t *testing.T) {
	for _, mode := range []rollout.HistoryMode{rollout.HistoryLegacy, rollout.HistoryPaginated} {
		t.Run(string(mode), func(t *testing.T) {
			home := newHome(t)
			st := newSpoolThread(t, mode, 3, 1)
			st.write(t, home)
			s := startCodex(t, home)

			var list listAnswer
			call(t, s, "thread/list", map[string]any{"limit": 10}, &list)
			if len(list.Data) != 1 || list.Data[0].ID != st.ID || list.Data[0].Preview != "prompt 0" || list.Data[0].HistoryMode != string(mode) {
				t.Fatalf("thread/list = %s, want %s with preview %q, mode %s", mustJSON(list.Data), st.ID, "prompt 0", mode)
			}
			if mode == rollout.HistoryPaginated {
				call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
			}
			var want []string
			for i, spec := range st.Turns {
				want = append(want, fmt.Sprintf("%s:completed[user=prompt %d,agent=answer %d]", spec.TurnID, i, i))
			}
			if got := describe(turnsOf(t, s, st.ID)); got != strings.Join(want, " ") {
				t.Fatalf("Codex turns:\n%s\nwant\n%s", got, strings.Join(want, " "))
			}
			h := history(t, st.Path)
			if len(h.Turns) != 3 || len(h.Messages) != 3 {
				t.Fatalf("spool sees %d turns, %d messages, want 3 and 3", len(h.Turns), len(h.Messages))
			}
			for i, tn := range h.Turns {
				if tn.ID != st.Turns[i].TurnID || tn.Status != rollout.TurnCompleted || tn.UserMessages != 1 {
					t.Fatalf("spool turn %d = %+v, want %s completed with 1 message", i, tn, st.Turns[i].TurnID)
				}
				if h.Messages[i].CutOffset != tn.Offset {
					t.Fatalf("message %d cut offset %d, want its turn's start %d", i, h.Messages[i].CutOffset, tn.Offset)
				}
			}
		})
	}
}

// TestCodexIgnoresRollbackInPaginated: Codex 0.169 rejects a rollback in
// a paginated thread, and a thread_rolled_back marker someone else wrote
// into one removes nothing from its view: every turn stays. spool reads
// such a file the same way (rollout.Classify), and refuses to append one
// (manager.ErrPaginatedRollback).
func TestCodexIgnoresRollbackInPaginated(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 1)
	st.write(t, home)
	marker, err := rollout.WithOrdinal([]byte(`{"timestamp":"2026-11-20T10:00:00.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":2}}`),
		int64(bytes.Count(st.Data, []byte("\n"))))
	if err != nil {
		t.Fatal(err)
	}
	st.Data = append(append(st.Data, marker...), '\n')
	writeFile(t, st.Path, st.Data)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	if got := turnsOf(t, s, st.ID); len(got) != 3 {
		t.Fatalf("Codex shows %d turns past a marker of 2 in a paginated thread (%s), want all 3", len(got), describe(got))
	}
	if h := history(t, st.Path); len(h.Turns) != 3 || len(h.Messages) != 3 {
		t.Fatalf("spool sees %d turns, %d messages, want 3 and 3 as Codex", len(h.Turns), len(h.Messages))
	}
}

// TestCodexArchivesAReferencedBase: Codex's thread/archive of a thread a
// reference fork points into is not refused (spool does not refuse it
// either), and the fork keeps its turns in a Codex that loads it later,
// from the home's projection of the base, made while the base was live
// (thread_history_1.sqlite). Without that projection the fork shows none,
// as any reference fork does before Codex has loaded its base
// (TestSpoolReferenceForkReadByCodex), and here Codex cannot load the base
// to make one: it refuses an archived thread.
func TestCodexArchivesAReferencedBase(t *testing.T) {
	home, st, s, fork := codexFork(t, 78)
	call(t, s, "thread/archive", map[string]any{"threadId": st.ID}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, "archived_sessions", filepath.Base(st.Path))); err != nil {
		t.Fatalf("the base after Codex archived it: %v", err)
	}
	want := turnIDs([]turn{{ID: st.Turns[0].TurnID, Status: "completed"}, {ID: st.Turns[1].TurnID, Status: "completed"}})
	later := startCodex(t, home)
	if got := turnsOf(t, later, fork.Thread.ID); turnIDs(got) != want {
		t.Fatalf("the fork of an archived base in a later Codex: %s, want %s", describe(got), want)
	}
	if err := later.Close(); err != nil {
		t.Fatal(err)
	}
	projections, err := filepath.Glob(filepath.Join(home, "thread_history_*.sqlite*"))
	if err != nil || len(projections) == 0 {
		t.Fatalf("no projection database in the home (%v)", err)
	}
	for _, p := range projections {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	fresh := startCodex(t, home)
	call(t, fresh, "thread/resume", map[string]any{"threadId": fork.Thread.ID, "excludeTurns": true}, nil)
	if got := turnsOf(t, fresh, fork.Thread.ID); len(got) != 0 {
		t.Fatalf("the fork of an archived base without its projection: %s, want no turns", describe(got))
	}
	err = fresh.Call(t.Context(), "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	if err == nil || !strings.Contains(err.Error(), "is archived") {
		t.Fatalf("Codex's thread/resume of the archived base: %v, want its refusal", err)
	}
	if got := turnsOf(t, fresh, fork.Thread.ID); len(got) != 0 {
		t.Fatalf("the fork after Codex refused its archived base: %s, want no turns", describe(got))
	}
}

// TestCodexReferenceFork: Codex forks a paginated thread by reference, and
// the fork's history_base is exactly spool's end of the last kept turn:
// end_byte_offset = Turn.End of turn 1 and end_ordinal_exclusive = the
// ordinal of the next line. Codex shows the fork with turns 0 and 1.
func TestCodexReferenceFork(t *testing.T) {
	_, st, s, fork := codexFork(t, 2)

	h := history(t, st.Path)
	meta := firstMeta(t, fork.Thread.Path)
	wantBase := rollout.HistoryBase{ThreadID: st.ID, EndByteOffset: h.Turns[1].End, EndOrdinalExclusive: ordinalAt(t, st.Data, h.Turns[1].End)}
	if meta.ForkedFromID != st.ID || meta.Mode() != rollout.HistoryPaginated || meta.HistoryBase == nil || *meta.HistoryBase != wantBase {
		t.Fatalf("fork meta: forked_from %q mode %s base %+v, want %s paginated %+v", meta.ForkedFromID, meta.Mode(), meta.HistoryBase, st.ID, wantBase)
	}
	if meta.ForkedFromOrdinalExclusive == nil || *meta.ForkedFromOrdinalExclusive != wantBase.EndOrdinalExclusive {
		t.Fatalf("forked_from_ordinal_exclusive = %v, want %d", meta.ForkedFromOrdinalExclusive, wantBase.EndOrdinalExclusive)
	}
	got := turnsOf(t, s, fork.Thread.ID)
	if len(got) != 2 || got[0].ID != st.Turns[0].TurnID || got[1].ID != st.Turns[1].TurnID {
		t.Fatalf("fork turns = %s, want turns 0 and 1", describe(got))
	}
	// The fork's own file holds no user message: its history is the base's.
	if msgs := history(t, fork.Thread.Path).Messages; len(msgs) != 0 {
		t.Fatalf("fork file holds %d counted user messages, want 0", len(msgs))
	}
}

// TestCodexRevertWritesSegment: thread/revert before turn 1 writes a new
// segment file rollout-<ts>-<thread>_<segment>.jsonl whose history_base
// points into the thread's own first file, cut before turn 1's
// task_started (spool's Turn.Offset, since RenderTurn writes task_started
// first); Codex then shows only turn 0.
func TestCodexRevertWritesSegment(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 3)
	st.write(t, home)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	call(t, s, "thread/revert", map[string]any{"threadId": st.ID, "beforeTurnId": st.Turns[1].TurnID}, nil)

	var segments []string
	for _, f := range findFiles(t, home, st.ID) {
		if f != st.Path {
			segments = append(segments, f)
		}
	}
	if len(segments) != 1 {
		t.Fatalf("files of %s after revert: %v, want the original and one segment", st.ID, findFiles(t, home, st.ID))
	}
	threadID, segmentID, _, err := rollout.ParseSegmentFileName(filepath.Base(segments[0]))
	if err != nil || threadID != st.ID {
		t.Fatalf("segment %s: thread %q, %v", segments[0], threadID, err)
	}
	if _, _, err := rollout.ParseFileName(filepath.Base(segments[0])); err == nil {
		t.Fatalf("ParseFileName accepts the segment name %s", filepath.Base(segments[0]))
	}
	name, err := rollout.SegmentFileName(mustCreated(t, filepath.Base(segments[0])), threadID, segmentID)
	if err != nil || name != filepath.Base(segments[0]) {
		t.Fatalf("SegmentFileName = %q, %v, want %q", name, err, filepath.Base(segments[0]))
	}
	h := history(t, st.Path)
	meta := firstMeta(t, segments[0])
	want := rollout.HistoryBase{ThreadID: st.ID, EndByteOffset: h.Turns[1].Offset, EndOrdinalExclusive: ordinalAt(t, st.Data, h.Turns[1].Offset)}
	if meta.ID != st.ID || meta.HistoryBase == nil || *meta.HistoryBase != want {
		t.Fatalf("segment meta id %s base %+v, want %s %+v", meta.ID, meta.HistoryBase, st.ID, want)
	}
	if got := turnsOf(t, s, st.ID); len(got) != 1 || got[0].ID != st.Turns[0].TurnID {
		t.Fatalf("turns after revert = %s, want turn 0 only", describe(got))
	}
}

func mustCreated(t *testing.T, name string) time.Time {
	t.Helper()
	_, _, created, err := rollout.ParseSegmentFileName(name)
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// TestCutBeforeTurnStart: a copy fork cut at spool's CutOffset of user
// message 1 (its turn's start) is shown by Codex with exactly the turns of
// Codex's own fork through turn 0; a cut at the message line itself (the
// seed rule) leaves Codex an extra, interrupted turn.
func TestCutBeforeTurnStart(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryLegacy, 3, 4)
	st.write(t, home)
	h := history(t, st.Path)
	msg := h.Messages[1]
	if msg.CutOffset != h.Turns[1].Offset || msg.CutOffset >= msg.Offset {
		t.Fatalf("message 1: cut %d, line %d, turn start %d", msg.CutOffset, msg.Offset, h.Turns[1].Offset)
	}
	cuts := map[string]int64{"turn start": msg.CutOffset, "message line": msg.Offset}
	ids := map[string]string{"turn start": "019dab90-0000-7000-8000-000000000041", "message line": "019dab90-0000-7000-8000-000000000042"}
	for name, cut := range cuts {
		child := &spoolThread{ID: ids[name], Mode: rollout.HistoryLegacy, Created: st.Created.Add(time.Hour)}
		meta := rollout.SessionMeta{ID: child.ID, ForkedFromID: st.ID, Timestamp: rollout.FormatTimestamp(child.Created), Cwd: "/tmp", Originator: "spool", CLIVersion: "0.169.0", Source: "cli"}
		line, err := rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta})
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := rollout.SessionPath(rollout.FileName(child.Created, child.ID))
		writeFile(t, filepath.Join(home, filepath.FromSlash(rel)), append(line, st.Data[:cut]...))
	}
	s := startCodex(t, home)
	var own threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": st.ID, "lastTurnId": st.Turns[0].TurnID, "excludeTurns": true}, &own)
	// Codex forks a legacy thread by copying: a legacy file of its own,
	// without history_base, that spool counts one user message in.
	ownMeta := firstMeta(t, own.Thread.Path)
	if ownMeta.Mode() != rollout.HistoryLegacy || ownMeta.HistoryBase != nil || ownMeta.ForkedFromID != st.ID {
		t.Fatalf("Codex's fork of a legacy thread: meta %+v, want a legacy copy forked from %s", ownMeta, st.ID)
	}
	if msgs := history(t, own.Thread.Path).Messages; len(msgs) != 1 || msgs[0].Text != "prompt 0" {
		t.Fatalf("Codex's copy fork holds counted messages %+v, want prompt 0 only", msgs)
	}
	want := describe(turnsOf(t, s, own.Thread.ID))
	if got := describe(turnsOf(t, s, ids["turn start"])); got != want {
		t.Fatalf("cut at the turn start: Codex shows %s, its own fork %s", got, want)
	}
	got := turnsOf(t, s, ids["message line"])
	if len(got) != 2 || got[1].Status != "interrupted" {
		t.Fatalf("cut at the message line: Codex shows %s, want turn 0 and an interrupted turn", describe(got))
	}
}

// TestCodexRefusesToDeleteABase: Codex 0.169 will not delete a thread that
// a reference fork uses as its base (JSON-RPC error -32600, nothing
// removed); once the fork is deleted, the base can be.
func TestCodexRefusesToDeleteABase(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 2, 5)
	st.write(t, home)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	var fork threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": st.ID, "lastTurnId": st.Turns[0].TurnID, "excludeTurns": true}, &fork)

	err := s.Call(t.Context(), "thread/delete", map[string]any{"threadId": st.ID}, nil)
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32600 || !strings.Contains(rpcErr.Message, "forked history still references it") {
		t.Fatalf("delete of a base: %v, want error -32600 naming the reference", err)
	}
	for _, p := range []string{st.Path, fork.Thread.Path} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("after the refused delete: %v", err)
		}
	}
	if got := turnsOf(t, s, fork.Thread.ID); len(got) != 1 {
		t.Fatalf("fork turns after the refused delete: %s", describe(got))
	}
	call(t, s, "thread/delete", map[string]any{"threadId": fork.Thread.ID}, nil)
	call(t, s, "thread/delete", map[string]any{"threadId": st.ID}, nil)
	if files := findFiles(t, home, st.ID); len(files) != 0 {
		t.Fatalf("base files after deleting fork then base: %v", files)
	}
}

// TestSpoolReferenceForkReadByCodex: a reference fork that spool writes
// with the rollout package alone (a paginated meta whose history_base ends
// at a turn boundary found by TurnTracker, with the ordinal there) is read
// by Codex with exactly the turns before that boundary: through turn 0
// (Turn.End, Codex's lastTurnId) and before user message 2 (CutOffset),
// once Codex has loaded the base thread.
func TestSpoolReferenceForkReadByCodex(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 6)
	st.write(t, home)
	h := history(t, st.Path)
	cuts := []struct {
		id    string
		end   int64
		turns int
	}{
		{"019dab90-0000-7000-8000-000000000061", h.Turns[0].End, 1},
		{"019dab90-0000-7000-8000-000000000062", h.Messages[2].CutOffset, 2},
	}
	for _, c := range cuts {
		created := st.Created.Add(time.Hour)
		ord := ordinalAt(t, st.Data, c.end)
		meta := rollout.SessionMeta{
			ID: c.id, ForkedFromID: st.ID, Timestamp: rollout.FormatTimestamp(created), Cwd: "/tmp",
			Originator: "spool", CLIVersion: "0.169.0", Source: "cli", ModelProvider: "openai",
			HistoryMode: rollout.HistoryPaginated, ForkedFromOrdinalExclusive: &ord,
			HistoryBase: &rollout.HistoryBase{ThreadID: st.ID, EndOrdinalExclusive: ord, EndByteOffset: c.end},
		}
		line, err := rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta})
		if err != nil {
			t.Fatal(err)
		}
		if line, err = rollout.WithOrdinal(line, meta.FirstOrdinal()); err != nil {
			t.Fatal(err)
		}
		rel, _ := rollout.SessionPath(rollout.FileName(created, c.id))
		writeFile(t, filepath.Join(home, filepath.FromSlash(rel)), line)
	}
	s := startCodex(t, home)
	// Codex shows a reference fork's turns from its projection of the base
	// (thread_history_1.sqlite), which exists once Codex has loaded the
	// base; before that the fork shows no turns, resumed or not.
	if got := turnsOf(t, s, cuts[0].id); len(got) != 0 {
		t.Fatalf("fork before the base was loaded: %s, want no turns", describe(got))
	}
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	for _, c := range cuts {
		got := turnsOf(t, s, c.id)
		var want []string
		for i := range c.turns {
			want = append(want, fmt.Sprintf("%s:completed[user=prompt %d,agent=answer %d]", st.Turns[i].TurnID, i, i))
		}
		if describe(got) != strings.Join(want, " ") {
			t.Fatalf("fork %s: Codex shows %s, want %s", c.id, describe(got), strings.Join(want, " "))
		}
	}
}

// TestCodexTurnEdges: a rollback marker removes the last turn in Codex's
// view as in spool's TurnTracker; a last turn without task_complete is
// open to spool and "interrupted" to Codex, which refuses to fork through
// it ("identifies an in-progress turn") or through a turn it does not know.
func TestCodexTurnEdges(t *testing.T) {
	home := newHome(t)
	rolled := newSpoolThread(t, rollout.HistoryLegacy, 3, 7)
	rolled.write(t, home)
	writeFile(t, rolled.Path, append(rolled.Data, `{"timestamp":"2026-11-20T10:00:00.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":1}}`+"\n"...))
	open := newSpoolThread(t, rollout.HistoryLegacy, 2, 8)
	open.write(t, home)
	cut := lastLineOffset(open.Data) // drop the last task_complete
	writeFile(t, open.Path, open.Data[:cut])

	s := startCodex(t, home)
	spoolTurns := history(t, rolled.Path).Turns
	codexTurns := turnsOf(t, s, rolled.ID)
	if len(spoolTurns) != 2 || len(codexTurns) != 2 || spoolTurns[1].ID != codexTurns[1].ID || codexTurns[1].ID != rolled.Turns[1].TurnID {
		t.Fatalf("after a rollback of 1: spool %+v, Codex %s, want turns 0 and 1", spoolTurns, describe(codexTurns))
	}
	spoolTurns = history(t, open.Path).Turns
	codexTurns = turnsOf(t, s, open.ID)
	if len(spoolTurns) != 2 || spoolTurns[1].Status != rollout.TurnOpen || len(codexTurns) != 2 || codexTurns[1].Status != "interrupted" {
		t.Fatalf("open last turn: spool %+v, Codex %s", spoolTurns, describe(codexTurns))
	}
	for _, tc := range []struct{ turn, want string }{
		{open.Turns[1].TurnID, "identifies an in-progress turn"},
		{"no-such-turn", "was not found in the source thread"},
	} {
		err := s.Call(t.Context(), "thread/fork", map[string]any{"threadId": open.ID, "lastTurnId": tc.turn, "excludeTurns": true}, nil)
		var rpcErr *RPCError
		if !errors.As(err, &rpcErr) || rpcErr.Code != -32600 || !strings.Contains(rpcErr.Message, tc.want) {
			t.Fatalf("fork through %s: %v, want -32600 %q", tc.turn, err, tc.want)
		}
	}
}

// TestCodexEndsAWholeLastRecord: a paginated rollout whose last line is a
// whole record lacking only its newline (here the last turn's
// task_complete) is complete to Codex 0.169: it shows every turn
// completed, and its next write (an injected item) first ends the record
// with its newline and numbers on after it. spool ends such a record the
// same way (rolloutfs.Local.CutTornTail) instead of cutting it as torn.
func TestCodexEndsAWholeLastRecord(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 1)
	st.write(t, home)
	whole := st.Data
	st.Data = whole[:len(whole)-1]
	writeFile(t, st.Path, st.Data)

	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	var want []string
	for i, spec := range st.Turns {
		want = append(want, fmt.Sprintf("%s:completed[user=prompt %d,agent=answer %d]", spec.TurnID, i, i))
	}
	if got := describe(turnsOf(t, s, st.ID)); got != strings.Join(want, " ") {
		t.Fatalf("Codex turns of a file lacking its last newline:\n%s\nwant\n%s", got, strings.Join(want, " "))
	}
	user := map[string]any{"type": "message", "role": "user", "content": []map[string]string{{"type": "input_text", "text": "after the record"}}}
	call(t, s, "thread/inject_items", map[string]any{"threadId": st.ID, "items": []any{user}}, nil)
	data, err := os.ReadFile(st.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, whole) {
		t.Fatalf("after Codex's write the file does not start with the record ended by its newline")
	}
	var prev int64 = -1
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		n, ok, err := rollout.LineOrdinal(bytes.TrimSuffix(l, []byte("\n")))
		if err != nil || !ok || n != prev+1 {
			t.Fatalf("line %q: ordinal %d (%v, %v), want %d", l, n, ok, err, prev+1)
		}
		prev = n
	}
	if h := history(t, st.Path); len(h.Turns) != 3 || len(h.Messages) != 4 {
		t.Fatalf("spool sees %d turns, %d messages after Codex's write, want 3 and 4", len(h.Turns), len(h.Messages))
	}
}

// TestCodexSkipsLinesNestedTooDeep: Codex's JSON reader refuses a rollout
// line nested deeper than rollout.CodexMaxDepth and skips it, whatever
// the line is. A turn whose task_complete is nested one level deeper is
// not ended to Codex, and must not be to spool either; one as deep as
// Codex reads is.
func TestCodexSkipsLinesNestedTooDeep(t *testing.T) {
	home := newHome(t)
	s := startCodex(t, home)
	for i, tc := range []struct {
		depth  int
		ended  bool
		status string
	}{
		{rollout.CodexMaxDepth, true, "completed"},
		{rollout.CodexMaxDepth + 1, false, "interrupted"},
	} {
		th := newSpoolThread(t, rollout.HistoryLegacy, 2, 20+i)
		th.write(t, home)
		last := lastLineOffset(th.Data) // turn 1's task_complete
		line := bytes.TrimSuffix(th.Data[last:], []byte("}}\n"))
		arrays := tc.depth - 2
		deep := fmt.Sprintf(`%s,"x":%s%s}}`+"\n", line, strings.Repeat("[", arrays), strings.Repeat("]", arrays))
		writeFile(t, th.Path, append(th.Data[:last:last], deep...))

		spoolTurns := history(t, th.Path).Turns
		codexTurns := turnsOf(t, s, th.ID)
		if len(spoolTurns) != 2 || len(codexTurns) != 2 {
			t.Fatalf("depth %d: spool %+v, Codex %s, want 2 turns", tc.depth, spoolTurns, describe(codexTurns))
		}
		if got := spoolTurns[1].Status != rollout.TurnOpen; got != tc.ended || codexTurns[1].Status != tc.status {
			t.Errorf("task_complete nested %d deep: spool's turn 1 %v, Codex's %s; want ended %v, %s",
				tc.depth, spoolTurns[1].Status, codexTurns[1].Status, tc.ended, tc.status)
		}
	}
}
