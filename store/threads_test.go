package store

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
)

func TestInsertGet(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	want := newThread("a", 100)
	want.Name = "named"
	want.Preview = "first"
	want.GitCommit, want.GitBranch, want.GitOrigin = "abc", "main", "https://example.com/r.git"
	want.UserMessageCount = 2
	want.LineCount, want.IndexedSize, want.FileSize, want.FileMtime = 12, 3456, 3456, 1_700_000_000_000_000_000
	mustInsert(t, s, Record{Thread: want, Messages: messages(0, 2, "m")})
	want.NewestAt = want.UpdatedAt // the index keeps it: within its bound, the same

	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Get = %+v\nwant %+v", got, want)
	}
	byPath, err := s.GetByPath(ctx, want.RolloutPath)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(byPath, want) {
		t.Fatalf("GetByPath = %+v\nwant %+v", byPath, want)
	}
	msgs, err := s.UserMessages(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	wantMsgs := messages(0, 2, "m")
	for i := range wantMsgs {
		wantMsgs[i].ThreadID = "a"
		wantMsgs[i].Text = "" // not read back
	}
	if !reflect.DeepEqual(msgs, wantMsgs) {
		t.Fatalf("UserMessages = %+v\nwant %+v", msgs, wantMsgs)
	}
	m, err := s.UserMessage(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if m != wantMsgs[1] {
		t.Fatalf("UserMessage(a, 1) = %+v, want %+v", m, wantMsgs[1])
	}
}

func TestInsertConflicts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	mustInsert(t, s, Record{Thread: newThread("a", 1)})
	samePath := newThread("b", 1)
	samePath.RolloutPath = newThread("a", 1).RolloutPath
	for _, tc := range []struct {
		name string
		r    Record
		want error
	}{
		{"same id", Record{Thread: newThread("a", 2)}, ErrExists},
		{"same path", Record{Thread: samePath}, ErrExists},
		{"bad ordinals", Record{Thread: newThread("c", 1), Messages: messages(1, 1, "x")}, nil},
		{"no id", Record{Thread: Thread{RolloutPath: "x.jsonl"}}, nil},
		{"self ancestor", Record{Thread: newThread("d", 1), Ancestors: []string{"d"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Insert(ctx, tc.r)
			if err == nil {
				t.Fatal("Insert succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Insert: err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && errors.Is(err, ErrExists) {
				t.Fatalf("Insert: err = %v, want a validation error", err)
			}
		})
	}
	// Failed inserts leave nothing behind.
	ids, err := s.IDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"a"}) {
		t.Fatalf("IDs = %v, want [a]", ids)
	}
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	mustInsert(t, s, Record{Thread: newThread("a", 1), Messages: messages(0, 1, "m")})
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "x"); return err }},
		{"GetByPath", func() error { _, err := s.GetByPath(ctx, "x.jsonl"); return err }},
		{"Advance", func() error { return s.Advance(ctx, Progress{ID: "x"}) }},
		{"SetName", func() error { return s.SetName(ctx, "x", "n", 1) }},
		{"SetArchived", func() error { return s.SetArchived(ctx, "x", true, "p", 1) }},
		{"SetFileState", func() error { return s.SetFileState(ctx, "x", 1, 1) }},
		{"Delete", func() error { return s.Delete(ctx, "x") }},
		{"UserMessages", func() error { _, err := s.UserMessages(ctx, "x"); return err }},
		{"UserMessage unknown thread", func() error { _, err := s.UserMessage(ctx, "x", 0); return err }},
		{"UserMessage unknown ordinal", func() error { _, err := s.UserMessage(ctx, "a", 1); return err }},
		{"Root", func() error { _, err := s.Root(ctx, "x"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestAdvance(t *testing.T) {
	ctx := context.Background()
	name, preview := "renamed", "new preview"
	for _, tc := range []struct {
		name      string
		existing  int
		p         Progress
		wantTexts []string // full text of the remaining messages, by ordinal
		wantName  string
		wantPrev  string
		wantErr   bool
	}{
		{
			name: "append", existing: 2,
			p:         Progress{KeepUserMessages: 2, NewMessages: messages(2, 2, "new")},
			wantTexts: []string{"old 0 full", "old 1 full", "new 2 full", "new 3 full"},
			wantName:  "", wantPrev: "old 0",
		},
		{
			name: "rollback only", existing: 3,
			p:         Progress{KeepUserMessages: 1},
			wantTexts: []string{"old 0 full"},
			wantPrev:  "old 0",
		},
		{
			name: "rollback then new", existing: 3,
			p:         Progress{KeepUserMessages: 1, NewMessages: messages(1, 1, "redo"), Name: &name},
			wantTexts: []string{"old 0 full", "redo 1 full"},
			wantName:  name, wantPrev: "old 0",
		},
		{
			name: "rollback everything", existing: 2,
			p:         Progress{KeepUserMessages: 0, NewMessages: messages(0, 1, "fresh"), Preview: &preview},
			wantTexts: []string{"fresh 0 full"},
			wantPrev:  preview,
		},
		{name: "keep more than indexed", existing: 1, p: Progress{KeepUserMessages: 2}, wantErr: true},
		{name: "gap in ordinals", existing: 1, p: Progress{KeepUserMessages: 1, NewMessages: messages(2, 1, "x")}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			th := newThread("a", 10)
			th.Preview = "old 0"
			th.UserMessageCount = tc.existing
			mustInsert(t, s, Record{Thread: th, Messages: messages(0, tc.existing, "old")})

			p := tc.p
			p.ID = "a"
			p.LineCount, p.IndexedSize, p.FileSize, p.FileMtime, p.UpdatedAt = 99, 9999, 10000, 77, 20
			err := s.Advance(ctx, p)
			if tc.wantErr {
				if err == nil {
					t.Fatal("Advance succeeded")
				}
				got, gerr := s.Get(ctx, "a")
				if gerr != nil {
					t.Fatal(gerr)
				}
				if got.UserMessageCount != tc.existing || got.UpdatedAt != 10 {
					t.Fatalf("failed Advance changed the row: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Advance: %v", err)
			}
			got, err := s.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if got.UserMessageCount != len(tc.wantTexts) {
				t.Errorf("user_message_count = %d, want %d", got.UserMessageCount, len(tc.wantTexts))
			}
			if got.LineCount != 99 || got.IndexedSize != 9999 || got.FileSize != 10000 || got.FileMtime != 77 || got.UpdatedAt != 20 {
				t.Errorf("sizes/times not applied: %+v", got)
			}
			if got.Name != tc.wantName || got.Preview != tc.wantPrev {
				t.Errorf("name, preview = %q, %q, want %q, %q", got.Name, got.Preview, tc.wantName, tc.wantPrev)
			}
			msgs, err := s.UserMessages(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(tc.wantTexts) {
				t.Fatalf("%d user messages, want %d", len(msgs), len(tc.wantTexts))
			}
			// The search index follows: every remaining text is found at
			// its ordinal, and nothing rolled back is.
			for ord, text := range tc.wantTexts {
				hits, err := s.Search(ctx, SearchOptions{Query: text})
				if err != nil {
					t.Fatal(err)
				}
				if len(hits) != 1 || hits[0].Ordinal != ord {
					t.Errorf("search %q = %+v, want one hit at ordinal %d", text, hits, ord)
				}
			}
			var ftsRows int
			if err := s.reader.GetContext(ctx, &ftsRows, `SELECT COUNT(*) FROM user_message_fts WHERE user_message_fts MATCH '"full"'`); err != nil {
				t.Fatal(err)
			}
			if ftsRows != len(tc.wantTexts) {
				t.Errorf("%d search rows, want %d", ftsRows, len(tc.wantTexts))
			}
		})
	}
}

func TestReplace(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	mustInsert(t, s, Record{Thread: newThread("root", 1), Messages: messages(0, 3, "old")})
	child := newThread("child", 2)
	child.ParentID = "root"
	mustInsert(t, s, Record{Thread: child})

	// A stale row holding the path of a replaced record goes away.
	stale := newThread("stale", 1)
	stale.RolloutPath = "moved.jsonl"
	mustInsert(t, s, Record{Thread: stale})

	r := newThread("root", 1)
	r.Name = "replaced"
	r.UserMessageCount = 1
	r.RolloutPath = "moved.jsonl"
	fresh := newThread("new", 3)
	if err := s.Replace(ctx, []Record{
		{Thread: r, Messages: messages(0, 1, "replacement")},
		{Thread: fresh, Messages: messages(0, 2, "fresh")},
	}); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	got, err := s.Get(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "replaced" || got.RolloutPath != "moved.jsonl" {
		t.Fatalf("replaced row = %+v", got)
	}
	if _, err := s.Get(ctx, "stale"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stale row: err = %v, want ErrNotFound", err)
	}
	msgs, err := s.UserMessages(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Preview != "replacement 0" {
		t.Fatalf("messages after Replace = %+v", msgs)
	}
	if hits, err := s.Search(ctx, SearchOptions{Query: "old"}); err != nil || len(hits) != 0 {
		t.Fatalf("search old after Replace = %+v, %v; want none", hits, err)
	}
	// The child's ancestry survives its parent's replacement.
	if root, err := s.Root(ctx, "child"); err != nil || root != "root" {
		t.Fatalf("Root(child) = %q, %v, want root", root, err)
	}
	// Replace of the same records again is idempotent.
	if err := s.Replace(ctx, []Record{{Thread: fresh, Messages: messages(0, 2, "fresh")}}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Threads: 3, UserMessages: 3}); st.Threads != want.Threads || st.UserMessages != want.UserMessages || st.IndexBytes <= 0 {
		t.Fatalf("Stats = %+v, want threads 3, user messages 3", st)
	}
}

func TestSetters(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	mustInsert(t, s, Record{Thread: newThread("a", 1)})
	mustInsert(t, s, Record{Thread: newThread("b", 1)})

	if err := s.SetName(ctx, "a", "hello", 5); err != nil {
		t.Fatal(err)
	}
	if err := s.SetArchived(ctx, "a", true, "archived_sessions/a.jsonl", 6); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFileState(ctx, "a", 123, 456); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "hello" || got.UpdatedAt != 5 || !got.Archived || got.ArchivedAt != 6 ||
		got.RolloutPath != "archived_sessions/a.jsonl" || got.FileSize != 123 || got.FileMtime != 456 {
		t.Fatalf("after setters: %+v", got)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Archived != 1 {
		t.Fatalf("Stats.Archived = %d, want 1", st.Archived)
	}
	if err := s.SetArchived(ctx, "a", false, "sessions/a.jsonl", 99); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.Get(ctx, "a"); got.Archived || got.ArchivedAt != 0 {
		t.Fatalf("after unarchive: archived=%t at %d", got.Archived, got.ArchivedAt)
	}
	// Moving onto another thread's path is a conflict.
	if err := s.SetArchived(ctx, "b", true, "sessions/a.jsonl", 1); !errors.Is(err, ErrExists) {
		t.Fatalf("SetArchived onto a taken path: err = %v, want ErrExists", err)
	}
	states, err := s.FileStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || states[0].RolloutPath > states[1].RolloutPath {
		t.Fatalf("FileStates = %+v, want 2 ordered by path", states)
	}
}

func TestDeleteCascades(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	mustInsert(t, s, Record{Thread: newThread("a", 1), Messages: messages(0, 3, "doomed")})
	mustInsert(t, s, Record{Thread: newThread("b", 1), Messages: messages(0, 1, "kept")})
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"threads", `SELECT COUNT(*) FROM threads`, 1},
		{"user messages", `SELECT COUNT(*) FROM user_messages`, 1},
		{"search rows", `SELECT COUNT(*) FROM user_message_fts WHERE user_message_fts MATCH 'doomed'`, 0},
		{"kept search rows", `SELECT COUNT(*) FROM user_message_fts WHERE user_message_fts MATCH 'kept'`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n int
			if err := s.reader.GetContext(ctx, &n, tc.query); err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Fatalf("%s = %d, want %d", tc.query, n, tc.want)
			}
		})
	}
	// The FTS index agrees with its content table.
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO user_message_fts (user_message_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Fatalf("fts integrity-check: %v", err)
	}
}

// TestAdvanceAll applies several threads' progress in one transaction, and
// applies none of it when one fails.
func TestAdvanceAll(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for _, id := range []string{"a", "b"} {
		th := newThread(id, 1)
		th.UserMessageCount = 1
		mustInsert(t, s, Record{Thread: th, Messages: messages(0, 1, id)})
	}
	ok := []Progress{
		{ID: "a", KeepUserMessages: 1, NewMessages: messages(1, 1, "a more"), LineCount: 3, IndexedSize: 300, UpdatedAt: 5},
		{ID: "b", KeepUserMessages: 0, LineCount: 2, IndexedSize: 200, UpdatedAt: 6},
	}
	if err := s.AdvanceAll(ctx, ok); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		id            string
		count         int
		size, updated int64
	}{{"a", 2, 300, 5}, {"b", 0, 200, 6}} {
		th, err := s.Get(ctx, want.id)
		if err != nil {
			t.Fatal(err)
		}
		if th.UserMessageCount != want.count || th.IndexedSize != want.size || th.UpdatedAt != want.updated {
			t.Fatalf("%s: %d messages, size %d, updated %d; want %d, %d, %d", want.id,
				th.UserMessageCount, th.IndexedSize, th.UpdatedAt, want.count, want.size, want.updated)
		}
	}
	bad := []Progress{
		{ID: "a", KeepUserMessages: 2, LineCount: 9, IndexedSize: 900},
		{ID: "missing", KeepUserMessages: 0, LineCount: 1, IndexedSize: 1},
	}
	if err := s.AdvanceAll(ctx, bad); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AdvanceAll with an unknown thread: %v, want ErrNotFound", err)
	}
	if th, _ := s.Get(ctx, "a"); th.IndexedSize != 300 {
		t.Fatalf("a failed batch changed thread a: size %d, want 300", th.IndexedSize)
	}
}

// TestReplaceBatchPathTakeover replaces, in one batch, a thread and then
// another thread at the same path: the first's messages, queued for the
// batch insert, must not outlive its row.
func TestReplaceBatchPathTakeover(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	first := newThread("a", 1)
	first.UserMessageCount = 2
	second := newThread("b", 2)
	second.RolloutPath = first.RolloutPath
	second.UserMessageCount = 1
	err := s.Replace(ctx, []Record{
		{Thread: first, Messages: messages(0, 2, "first")},
		{Thread: second, Messages: messages(0, 1, "second")},
		{Thread: newThread("c", 3), Messages: messages(0, 1, "third")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("thread a, whose path b took: %v, want not found", err)
	}
	for id, want := range map[string]int{"b": 1, "c": 1} {
		msgs, err := s.UserMessages(ctx, id)
		if err != nil || len(msgs) != want {
			t.Fatalf("%s: %d messages (%v), want %d", id, len(msgs), err, want)
		}
	}
	hits, err := s.Search(ctx, SearchOptions{Query: "first"})
	if err != nil || len(hits) != 0 {
		t.Fatalf("search for a's text: %+v, %v; want none", hits, err)
	}
}

// TestReplaceRoundTripsEveryColumn guards the positional binding of
// Replace's upsert and the hand-written scans of Get, GetByPath and List:
// every field holds a value of its own, so two columns swapped show.
func TestReplaceRoundTripsEveryColumn(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	base := newThread("base", 5)
	mustInsert(t, s, Record{Thread: base})
	want := Thread{
		ID: "full", RolloutPath: "sessions/2026/04/20/full.jsonl", CreatedAt: 101, UpdatedAt: 102,
		Cwd: "/cwd", Source: "exec", Originator: "orig", CLIVersion: "0.169.0", ModelProvider: "prov",
		GitCommit: "c0ffee", GitBranch: "branch", GitOrigin: "origin", Name: "name", Preview: "preview",
		Archived: true, ArchivedAt: 103, ParentID: "base", ForkUserMessage: 7, ForkOffset: 104,
		LineCount: 105, UserMessageCount: 1, IndexedSize: 106, FileSize: 107, FileMtime: 108,
		HistoryMode: "paginated", BaseID: "base", BaseSize: 109, NextOrdinal: 110, TurnOffset: 111,
		TurnID: "turn",
	}
	if err := s.Replace(ctx, []Record{{Thread: want, Messages: messages(0, 1, "m")}}); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	want.NewestAt = want.UpdatedAt // derived by the index: within its bound, the same
	got, err := s.Get(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Get after Replace = %+v\nwant %+v", got, want)
	}
	if got, err := s.GetByPath(ctx, want.RolloutPath); err != nil || got != want {
		t.Fatalf("GetByPath after Replace = %+v, %v\nwant %+v", got, err, want)
	}
	yes := true
	page, err := s.List(ctx, ListOptions{Archived: &yes})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Threads) != 1 || page.Threads[0] != want {
		t.Fatalf("List(archived) = %+v\nwant [%+v]", page.Threads, want)
	}
}

// TestIndexedFilesByID reads the same rows whether asked one id at a time
// (the statement-cache path) or several at once.
func TestIndexedFilesByID(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	a := newThread("a", 1)
	a.Name, a.FileSize, a.FileMtime, a.IndexedSize, a.LineCount = "named", 10, 11, 9, 3
	mustInsert(t, s, Record{Thread: a})
	mustInsert(t, s, Record{Thread: newThread("b", 2)})
	all, err := s.IndexedFilesByID(ctx, []string{"a", "b", "missing"})
	if err != nil || len(all) != 2 {
		t.Fatalf("IndexedFilesByID(a, b, missing) = %+v, %v; want two rows", all, err)
	}
	for _, want := range all {
		one, err := s.IndexedFilesByID(ctx, []string{want.ID})
		if err != nil || len(one) != 1 || one[0] != want {
			t.Fatalf("IndexedFilesByID(%s) = %+v, %v; want [%+v]", want.ID, one, err, want)
		}
	}
	if one, err := s.IndexedFilesByID(ctx, []string{"missing"}); err != nil || len(one) != 0 {
		t.Fatalf("IndexedFilesByID(missing) = %+v, %v; want none", one, err)
	}
	for _, f := range all {
		if f.ID == "a" && (f.Name != "named" || f.FileMtime != 11 || f.IndexedSize != 9 || f.LineCount != 3) {
			t.Fatalf("row of a = %+v", f)
		}
	}
}

// TestReplaceUnlessIndexed: a record the caller found new is left out,
// and its id returned, when its thread has a row by the time the batch is
// written; the rest of the batch is written as Replace writes it.
func TestReplaceUnlessIndexed(t *testing.T) {
	tests := []struct {
		name      string
		indexed   []string // threads with a row before the batch
		fresh     []string
		wantTaken []string
		wantName  map[string]string // thread -> name after
	}{
		{"nothing indexed", nil, []string{"a", "b"}, nil, map[string]string{"a": "batch", "b": "batch"}},
		{"a fresh one indexed meanwhile", []string{"a"}, []string{"a", "b"}, []string{"a"}, map[string]string{"a": "before", "b": "batch"}},
		{"an indexed one not fresh is replaced", []string{"a"}, []string{"b"}, nil, map[string]string{"a": "batch", "b": "batch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			s := openTest(t)
			for _, id := range tt.indexed {
				th := newThread(id, 1)
				th.Name = "before"
				mustInsert(t, s, Record{Thread: th})
			}
			fresh := map[string]bool{}
			for _, id := range tt.fresh {
				fresh[id] = true
			}
			var batch []Record
			for _, id := range []string{"a", "b"} {
				th := newThread(id, 2)
				th.Name = "batch"
				batch = append(batch, Record{Thread: th})
			}
			taken, err := s.ReplaceUnlessIndexed(ctx, batch, fresh)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(taken, tt.wantTaken) {
				t.Errorf("taken = %v, want %v", taken, tt.wantTaken)
			}
			for id, want := range tt.wantName {
				th, err := s.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if th.Name != want {
					t.Errorf("thread %s name = %q, want %q", id, th.Name, want)
				}
			}
		})
	}
}
