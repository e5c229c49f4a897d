package indexer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

func ms(t *testing.T, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMilli()
}

func TestPreview(t *testing.T) {
	long := strings.Repeat("é", PreviewRunes+10)
	tests := []struct {
		name, text, want string
	}{
		{"short", "hello", "hello"},
		{"trimmed", "  hello\n", "hello"},
		{"empty", "", ""},
		{"cut at runes", long, strings.Repeat("é", PreviewRunes)},
		{"exact", strings.Repeat("x", PreviewRunes), strings.Repeat("x", PreviewRunes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Preview(tt.text); got != tt.want {
				t.Fatalf("Preview = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPreviewHoldsNoMoreThanItself: a preview is a copy, not a slice of
// the text it was cut from, which it would keep in memory as long as the
// thread's row lives: a 60 MB first prompt kept 60 MB with every live
// thread's row, cut to 200 runes or trimmed of space.
func TestPreviewHoldsNoMoreThanItself(t *testing.T) {
	for name, text := range map[string]string{
		"cut":     strings.Repeat("long prompt ", 4<<20),
		"trimmed": "hi" + strings.Repeat(" ", 48<<20),
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			big := strings.Clone(text)
			preview := Preview(big)
			big = ""
			runtime.GC()
			runtime.ReadMemStats(&after)
			if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > 1<<20 {
				t.Errorf("a %d-rune preview of a %d-byte text holds %d bytes", utf8.RuneCountInString(preview), len(text), held)
			}
			runtime.KeepAlive(preview)
		})
	}
}

type wantMsg struct {
	offset, line int64
	text         string
	// inherited marks a message a spool fork copied from its parent: it
	// counts in Thread.InheritedMessages (the store drops its search text
	// while the parent is indexed).
	inherited bool
}

func TestScanFile(t *testing.T) {
	root := testHome(t)
	tests := []struct {
		name       string
		rel        string
		id, parent string
		threadName string
		ancestors  []string
		created    string
		updated    string
		forkMsg    int
		forkOffset int64
		size, line int64
		msgs       []wantMsg
	}{
		{
			name: "root thread", rel: relA, id: idA, threadName: "alpha",
			created: "2026-05-01T09:00:00.000Z", updated: "2026-05-01T09:05:00.000Z",
			forkMsg: -1, forkOffset: -1, size: 1643, line: 8,
			msgs: []wantMsg{{634, 2, "First question", false}, {1142, 5, "Second question", false}, {1478, 7, "Third question", false}},
		},
		{
			name: "fork", rel: relB, id: idB, parent: idA, ancestors: []string{idA},
			created: "2026-05-01T10:00:00.000Z", updated: "2026-05-01T10:01:00.000Z",
			forkMsg: 1, forkOffset: 1142, size: 1837, line: 7,
			msgs: []wantMsg{{1164, 3, "First question", true}, {1672, 6, "Bravo question", false}},
		},
		{
			name: "fork of a fork", rel: relC, id: idC, parent: idB, ancestors: []string{idB, idA},
			created: "2026-05-01T11:00:00.000Z", updated: "2026-05-01T11:01:00.000Z",
			forkMsg: 1, forkOffset: 1672, size: 2369, line: 8,
			msgs: []wantMsg{{1694, 4, "First question", true}, {2202, 7, "Charlie question", false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, problems, err := ScanFile(context.Background(), rolloutfs.Local{Root: root}, tt.rel)
			if err != nil {
				t.Fatalf("ScanFile: %v", err)
			}
			if len(problems) != 0 {
				t.Fatalf("problems = %v, want none", problems)
			}
			th := rec.Thread
			fi, err := os.Stat(filepath.Join(root, tt.rel))
			if err != nil {
				t.Fatal(err)
			}
			checks := []struct {
				field     string
				got, want any
			}{
				{"ID", th.ID, tt.id},
				{"RolloutPath", th.RolloutPath, tt.rel},
				{"ParentID", th.ParentID, tt.parent},
				{"CreatedAt", th.CreatedAt, ms(t, tt.created)},
				{"UpdatedAt", th.UpdatedAt, ms(t, tt.updated)},
				{"Cwd", th.Cwd, "/src/alpha"},
				{"Source", th.Source, "cli"},
				{"Originator", th.Originator, "codex_cli_rs"},
				{"CLIVersion", th.CLIVersion, "0.125.0"},
				{"ModelProvider", th.ModelProvider, "openai"},
				{"GitCommit", th.GitCommit, "abc123"},
				{"GitBranch", th.GitBranch, "main"},
				{"GitOrigin", th.GitOrigin, "git@example.com:alpha.git"},
				{"Name", th.Name, tt.threadName}, // a fork's copied rename events name its parent
				{"Preview", th.Preview, ""},      // no prompt has its user_message echo: Codex shows none
				{"Archived", th.Archived, false},
				{"ForkUserMessage", th.ForkUserMessage, tt.forkMsg},
				{"ForkOffset", th.ForkOffset, tt.forkOffset},
				{"IndexedSize", th.IndexedSize, tt.size},
				{"FileSize", th.FileSize, tt.size},
				{"FileMtime", th.FileMtime, fi.ModTime().UnixNano()},
				{"LineCount", th.LineCount, tt.line},
				{"UserMessageCount", th.UserMessageCount, len(tt.msgs)},
				{"InheritedMessages", th.InheritedMessages, inheritedOf(tt.msgs)},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
				}
			}
			if !slices.Equal(rec.Ancestors, tt.ancestors) {
				t.Errorf("Ancestors = %v, want %v", rec.Ancestors, tt.ancestors)
			}
			checkMessages(t, rec.Messages, tt.id, tt.msgs)
		})
	}
}

func inheritedOf(msgs []wantMsg) int {
	n := 0
	for _, m := range msgs {
		if m.inherited {
			n++
		}
	}
	return n
}

func checkMessages(t *testing.T, got []store.UserMessage, id string, want []wantMsg) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		wantText := w.text
		if g.ThreadID != id || g.Ordinal != i || g.Offset != w.offset || g.Line != w.line || g.Text != wantText || g.Preview != w.text {
			t.Errorf("message %d = %+v, want ordinal %d offset %d line %d text %q preview %q", i, g, i, w.offset, w.line, wantText, w.text)
		}
	}
}

const (
	idX = "aaaaaaaa-aaaa-7aaa-8aaa-aaaaaaaaaaaa"
	idY = "bbbbbbbb-bbbb-7bbb-8bbb-bbbbbbbbbbbb"
	idZ = "cccccccc-cccc-7ccc-8ccc-cccccccccccc"
)

func relFor(id string) string {
	return "sessions/2026/06/01/rollout-2026-06-01T08-00-00-" + id + ".jsonl"
}

func TestScanFileAncestryChain(t *testing.T) {
	const ts = "2026-06-01T08:00:00.000Z"
	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"no parent", []string{metaLine(ts, idX, ""), userLine(ts, "hi")}, nil},
		{"parent only", []string{metaLine(ts, idX, idY), userLine(ts, "hi")}, []string{idY}},
		{"chain of three", []string{metaLine(ts, idX, idY), metaLine(ts, idY, idZ), metaLine(ts, idZ, ""), userLine(ts, "hi")}, []string{idY, idZ}},
		{"second meta names another thread", []string{metaLine(ts, idX, idY), metaLine(ts, idZ, idA), userLine(ts, "hi")}, []string{idY}},
		{"chain broken by another line", []string{metaLine(ts, idX, idY), userLine(ts, "hi"), metaLine(ts, idY, idZ)}, []string{idY}},
		{"cycle stops before the thread itself", []string{metaLine(ts, idX, idY), metaLine(ts, idY, idX), metaLine(ts, idX, idY)}, []string{idY}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeRollout(t, root, relFor(idX), tt.lines...)
			rec, _, err := ScanFile(context.Background(), rolloutfs.Local{Root: root}, relFor(idX))
			if err != nil {
				t.Fatalf("ScanFile: %v", err)
			}
			if !slices.Equal(rec.Ancestors, tt.want) {
				t.Fatalf("Ancestors = %v, want %v", rec.Ancestors, tt.want)
			}
			wantParent := ""
			if len(tt.want) > 0 {
				wantParent = tt.want[0]
			}
			if rec.Thread.ParentID != wantParent {
				t.Fatalf("ParentID = %q, want %q", rec.Thread.ParentID, wantParent)
			}
		})
	}
}

func TestScanFileErrorsAndProblems(t *testing.T) {
	const ts = "2026-06-01T08:00:00.000Z"
	meta := metaLine(ts, idX, "")
	user := userLine(ts, "hi")
	tests := []struct {
		name      string
		content   string
		wantErr   error
		problems  []Problem
		whole     bool // the torn tail is a whole record lacking only its newline
		wantSize  int64
		wantLines int64
	}{
		{name: "no meta", content: user, wantErr: ErrNoMeta},
		{name: "empty", content: "", wantErr: ErrNoMeta},
		{name: "id mismatch", content: metaLine(ts, idY, "") + user, wantErr: ErrIDMismatch},
		{
			name:    "torn tail",
			content: meta + user + `{"timestamp":"` + ts + `","type":"resp`,
			problems: []Problem{{
				Path: relFor(idX), Offset: int64(len(meta + user)), Line: 2, Kind: ProblemTorn,
			}},
			wantSize: int64(len(meta + user)), wantLines: 2,
		},
		{
			name:    "whole record lacking its newline",
			content: meta + user + strings.TrimSuffix(assistantLine(ts, "a1"), "\n"),
			problems: []Problem{{
				Path: relFor(idX), Offset: int64(len(meta + user)), Line: 2, Kind: ProblemTorn,
			}},
			whole:    true,
			wantSize: int64(len(meta + user)), wantLines: 2,
		},
		{
			name:    "malformed line kept",
			content: meta + "not json\n" + user,
			problems: []Problem{{
				Path: relFor(idX), Offset: int64(len(meta)), Line: 1, Kind: ProblemMalformed,
			}},
			wantSize: int64(len(meta + "not json\n" + user)), wantLines: 3,
		},
		{
			name:     "blank lines count",
			content:  meta + "\n" + user + "\n",
			wantSize: int64(len(meta + "\n" + user + "\n")), wantLines: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeRollout(t, root, relFor(idX), tt.content)
			rec, problems, err := ScanFile(context.Background(), rolloutfs.Local{Root: root}, relFor(idX))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ScanFile: %v", err)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems = %+v, want %+v", problems, tt.problems)
			}
			for i, p := range problems {
				w := tt.problems[i]
				if p.Path != w.Path || p.Offset != w.Offset || p.Line != w.Line || p.Kind != w.Kind || p.Detail == "" {
					t.Errorf("problem %d = %+v, want %+v with a detail", i, p, w)
				}
				// People read the line as an editor numbers it, from 1.
				if want := fmt.Sprintf("(line %d)", strings.Count(tt.content[:p.Offset], "\n")+1); !strings.Contains(p.String(), want) {
					t.Errorf("problem %d reads %q, want %s", i, p.String(), want)
				}
				if got := strings.Contains(p.Detail, "whole record"); p.Kind == ProblemTorn && got != tt.whole {
					t.Errorf("problem %d detail %q says a whole record: %v, want %v", i, p.Detail, got, tt.whole)
				}
			}
			if rec.Thread.IndexedSize != tt.wantSize || rec.Thread.LineCount != tt.wantLines {
				t.Errorf("IndexedSize, LineCount = %d, %d, want %d, %d", rec.Thread.IndexedSize, rec.Thread.LineCount, tt.wantSize, tt.wantLines)
			}
			if rec.Thread.FileSize != int64(len(tt.content)) {
				t.Errorf("FileSize = %d, want %d", rec.Thread.FileSize, len(tt.content))
			}
			if rec.Thread.UserMessageCount != 1 {
				t.Errorf("UserMessageCount = %d, want 1", rec.Thread.UserMessageCount)
			}
		})
	}
}

func TestScanFileArchived(t *testing.T) {
	root := t.TempDir()
	rel := rollout.ArchivedSessionsDir + "/rollout-2026-06-01T08-00-00-" + idX + ".jsonl"
	abs := writeRollout(t, root, rel, metaLine("2026-06-01T08:00:00.000Z", idX, ""))
	mtime := time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(abs, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	rec, _, err := ScanFile(context.Background(), rolloutfs.Local{Root: root}, rel)
	if err != nil {
		t.Fatalf("ScanFile: %v", err)
	}
	if !rec.Thread.Archived || rec.Thread.ArchivedAt != mtime.UnixMilli() {
		t.Fatalf("Archived, ArchivedAt = %v, %d, want true, %d", rec.Thread.Archived, rec.Thread.ArchivedAt, mtime.UnixMilli())
	}
	if rec.Thread.UpdatedAt != rec.Thread.CreatedAt || rec.Thread.Preview != "" {
		t.Fatalf("UpdatedAt %d, Preview %q: want CreatedAt %d and no preview", rec.Thread.UpdatedAt, rec.Thread.Preview, rec.Thread.CreatedAt)
	}
}

// observeAll feeds the lines of text (starting at offset and line number
// start) into tr.
func observeAll(t *testing.T, tr *Tracker, text string, offset, start int64) {
	t.Helper()
	r := rollout.NewReader(strings.NewReader(text), offset, start)
	for r.Next() {
		tr.Observe(r.Line())
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestTracker(t *testing.T) {
	const ts = "2026-06-01T09:00:00.000Z"
	base := store.Thread{ID: idX, UserMessageCount: 2, LineCount: 10, IndexedSize: 1000, UpdatedAt: 5, Preview: "first", PreviewOffset: 100}
	tests := []struct {
		name        string
		lines       []string
		keep        int
		newTexts    []string
		wantPreview *string
		wantName    *string
	}{
		{name: "new message continues ordinals", lines: []string{userLine(ts, "third")}, keep: 2, newTexts: []string{"third"}},
		{name: "rollback lowers kept", lines: []string{rollbackLine(ts, 1), userLine(ts, "again")}, keep: 1, newTexts: []string{"again"}},
		{name: "rollback pops pending first", lines: []string{userLine(ts, "x"), userLine(ts, "y"), rollbackLine(ts, 1)}, keep: 2, newTexts: []string{"x"}},
		{name: "rollback of everything keeps the preview", lines: []string{userLine(ts, "x"), echoLine(ts, "x"), rollbackLine(ts, 5)}, keep: 0},
		{name: "a new first message gives none", lines: []string{rollbackLine(ts, 2), userLine(ts, "fresh start"), echoLine(ts, "fresh start")}, keep: 0, newTexts: []string{"fresh start"}},
		{name: "name update", lines: []string{nameLine(ts, idX, "one"), nameLine(ts, idX, "two")}, keep: 2, wantName: ptr("two")},
		{name: "rename of another thread is ignored", lines: []string{nameLine(ts, idY, "parent's")}, keep: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(base)
			text := strings.Join(tt.lines, "")
			observeAll(t, tr, text, base.IndexedSize, base.LineCount)
			p := tr.Progress()
			if p.ID != idX || p.KeepUserMessages != tt.keep {
				t.Fatalf("ID, KeepUserMessages = %s, %d, want %s, %d", p.ID, p.KeepUserMessages, idX, tt.keep)
			}
			var texts []string
			for i, m := range p.NewMessages {
				texts = append(texts, m.Text)
				if m.Ordinal != tt.keep+i {
					t.Errorf("message %d ordinal = %d, want %d", i, m.Ordinal, tt.keep+i)
				}
			}
			if !slices.Equal(texts, tt.newTexts) {
				t.Errorf("new messages = %q, want %q", texts, tt.newTexts)
			}
			if !equalPtr(p.Preview, tt.wantPreview) {
				t.Errorf("Preview = %v, want %v", deref(p.Preview), deref(tt.wantPreview))
			}
			if !equalPtr(p.Name, tt.wantName) {
				t.Errorf("Name = %v, want %v", deref(p.Name), deref(tt.wantName))
			}
			if p.IndexedSize != base.IndexedSize+int64(len(text)) || p.LineCount != base.LineCount+int64(len(tt.lines)) {
				t.Errorf("IndexedSize, LineCount = %d, %d, want %d, %d", p.IndexedSize, p.LineCount, base.IndexedSize+int64(len(text)), base.LineCount+int64(len(tt.lines)))
			}
			if p.UpdatedAt != ms(t, ts) {
				t.Errorf("UpdatedAt = %d, want %d", p.UpdatedAt, ms(t, ts))
			}
		})
	}
}

func ptr(s string) *string { return &s }

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// TestCatchUpMatchesScan appends lines to an indexed file and checks that
// the index caught up from its offset equals a fresh scan of the file.
func TestCatchUpMatchesScan(t *testing.T) {
	ctx := context.Background()
	const ts = "2026-06-01T08:00:00.000Z"
	root := t.TempDir()
	rel := relFor(idX)
	writeRollout(t, root, rel, metaLine(ts, idX, ""), userLine(ts, "one"), assistantLine(ts, "a1"), userLine(ts, "two"))
	st := openStore(t)
	rec, _, err := ScanFile(ctx, rolloutfs.Local{Root: root}, rel)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Replace(ctx, []store.Record{rec}); err != nil {
		t.Fatal(err)
	}
	indexed := rec.Thread
	appendTo(t, root, rel, rollbackLine("2026-06-01T08:01:00.000Z", 1)+"\n"+userLine("2026-06-01T08:02:00.000Z", "two again")+
		nameLine("2026-06-01T08:03:00.000Z", idX, "caught")+`{"timestamp":"2026-06-01T08:04:00.000Z","type":"torn`)

	p, problems, err := CatchUp(ctx, rolloutfs.Local{Root: root}, indexed)
	if err != nil {
		t.Fatalf("CatchUp: %v", err)
	}
	if len(problems) != 1 || problems[0].Kind != ProblemTorn {
		t.Fatalf("problems = %+v, want one torn tail", problems)
	}
	if p.FileSize != fileSize(t, root, rel) {
		t.Fatalf("FileSize = %d, want %d", p.FileSize, fileSize(t, root, rel))
	}
	if err := st.Advance(ctx, p); err != nil {
		t.Fatalf("Advance: %v", err)
	}
	want, _, err := ScanFile(ctx, rolloutfs.Local{Root: root}, rel)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, idX)
	if err != nil {
		t.Fatal(err)
	}
	want.Thread.FileMtime = got.FileMtime
	if diffs := threadDiffs(want.Thread, got); len(diffs) > 0 {
		t.Fatalf("caught-up row differs from a scan: %v", diffs)
	}
	msgs, err := st.UserMessages(ctx, idX)
	if err != nil {
		t.Fatal(err)
	}
	if d := messageDiff(want.Messages, msgs); d != "" {
		t.Fatalf("caught-up messages differ from a scan: %s", d)
	}
	if got.Name != "caught" || got.UserMessageCount != 2 {
		t.Fatalf("name %q, %d messages, want caught, 2", got.Name, got.UserMessageCount)
	}
}

func TestCatchUpRewritten(t *testing.T) {
	const ts = "2026-06-01T08:00:00.000Z"
	tests := []struct {
		name    string
		rewrite string
		want    error
	}{
		{"shrunk", metaLine(ts, idX, ""), ErrShrunk},
		{"changed before the indexed size", metaLine(ts, idX, "") + strings.Repeat("x", 200) + "\n", ErrChanged},
		// Longer, with a line's end where the indexed part ended: only the
		// bytes before it tell (the tail sum).
		{"rewritten longer, a line's end at the indexed size", metaLine(ts, idX, "") + userLine(ts, "uno") + userLine(ts, "two"), ErrChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			rel := relFor(idX)
			writeRollout(t, root, rel, metaLine(ts, idX, ""), userLine(ts, "one"))
			rec, _, err := ScanFile(context.Background(), rolloutfs.Local{Root: root}, rel)
			if err != nil {
				t.Fatal(err)
			}
			writeRollout(t, root, rel, tt.rewrite)
			if _, _, err := CatchUp(context.Background(), rolloutfs.Local{Root: root}, rec.Thread); !errors.Is(err, tt.want) {
				t.Fatalf("CatchUp err = %v, want %v", err, tt.want)
			}
		})
	}
}
