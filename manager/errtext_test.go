package manager

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// TestErrorsNameAThreadOnce: each failed call's error names the thread it
// was about once, and still wraps the sentinel callers test.
func TestErrorsNameAThreadOnce(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := startPaginated(t, m, user("u0"), assistant("a0"), user("u1"))
	if _, err := m.Fork(ctx, base.ID, ForkOptions{}); err != nil {
		t.Fatal(err)
	}
	const unknown = "019dab90-0000-7000-8000-00000000a001"
	tests := []struct {
		name string
		id   string
		call func() error
		want error
	}{
		{"delete of a base", base.ID, func() error { return m.Delete(ctx, base.ID) }, ErrReferenced},
		{"delete of a bad id", "nope", func() error { return m.Delete(ctx, "nope") }, ErrInvalidID},
		{"get of an unknown id", unknown, func() error { _, err := m.Get(ctx, unknown); return err }, ErrNotFound},
		{"fork out of range", base.ID, func() error {
			_, err := m.Fork(ctx, base.ID, ForkOptions{BeforeUserMessage: intp(7)})
			return err
		}, ErrOutOfRange},
		{"unknown turn", base.ID, func() error { _, err := m.Turn(ctx, base.ID, "zz"); return err }, ErrNotFound},
		{"turn of an unknown thread", unknown, func() error { _, err := m.Turn(ctx, unknown, "zz"); return err }, ErrNotFound},
		{"messages of an unknown thread", unknown, func() error { _, err := m.UserMessages(ctx, unknown); return err }, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if n := strings.Count(err.Error(), tt.id); n != 1 {
				t.Fatalf("%q names %s %d times, want once", err, tt.id, n)
			}
		})
	}
}

// TestErrorsNameATurnOnce: a call about a Codex turn that is not there
// names the turn once, as it names the thread once.
func TestErrorsNameATurnOnce(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := startPaginated(t, m, user("u0"))
	const turn = "no-such-turn"
	tests := []struct {
		name string
		call func() error
	}{
		{"turn", func() error { _, err := m.Turn(ctx, th.ID, turn); return err }},
		{"read turn by id", func() error { _, _, err := m.ReadTurnByID(ctx, th.ID, turn); return err }},
		{"fork through it", func() error { _, err := m.Fork(ctx, th.ID, ForkOptions{LastTurnID: turn}); return err }},
		{"revert before it", func() error {
			_, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: turn})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			for _, name := range []string{th.ID, turn} {
				if n := strings.Count(err.Error(), name); n != 1 {
					t.Fatalf("%q names %s %d times, want once", err, name, n)
				}
			}
		})
	}
}

// TestRefusalsNameTheCallOnce: a fork or revert refused for where its cut
// lies says the call and the thread once, "fork <id>: the cut is in ...",
// where clients saw "fork: fork <id>: ..." (a reference fork of an
// archived or compressed thread, a revert of a compressed one).
func TestRefusalsNameTheCallOnce(t *testing.T) {
	m, compressed, _ := compressedThreadOf(t, func(t testing.TB, m *Manager, items ...rollout.Item) Thread {
		return startPaginated(t.(*testing.T), m, items...)
	})
	ctx := t.Context()
	archived := startPaginated(t, m, user("one"), assistant("1"))
	if _, err := m.Archive(ctx, archived.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{name: "reference fork of a compressed thread", want: "fork " + compressed.ID + ": ", call: func() error {
			_, err := m.Fork(ctx, compressed.ID, ForkOptions{Mode: ForkReference})
			return err
		}},
		{name: "revert of a compressed thread", want: "revert " + compressed.ID + ": ", call: func() error {
			_, err := m.Revert(ctx, compressed.ID, RevertOptions{BeforeUserMessage: intp(1)})
			return err
		}},
		{name: "reference fork of an archived thread", want: "fork " + archived.ID + ": ", call: func() error {
			_, err := m.Fork(ctx, archived.ID, ForkOptions{Mode: ForkReference})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("refused nothing")
			}
			if got := err.Error(); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("error %q, want it to start %q", got, tt.want)
			}
		})
	}
}

// TestBadCursorsAndQueriesAreInvalidArguments: a bad cursor or search
// query is ErrInvalidArgument, as a bad option is, as well as the index's
// own sentinel, and its text is the index's; a turn without a prompt is
// refused as the HTTP API refuses it.
func TestBadCursorsAndQueriesAreInvalidArguments(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := startPaginated(t, m, user("u0"))
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"list cursor", func() error { _, err := m.List(ctx, ListOptions{Cursor: "zz"}); return err }, store.ErrBadCursor},
		{"empty search", func() error { _, err := m.Search(ctx, SearchOptions{}); return err }, store.ErrEmptyQuery},
		{"search that does not parse", func() error { _, err := m.Search(ctx, SearchOptions{Query: `"abc`}); return err }, store.ErrBadQuery},
		{"search page cursor", func() error {
			_, err := m.SearchPage(ctx, SearchOptions{Query: "u0", Cursor: "zz"})
			return err
		}, store.ErrBadCursor},
		{"turn without a prompt", func() error { _, err := m.AppendTurn(ctx, th.ID, TurnOptions{Answer: "a"}); return err }, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("err = %v, want %v and ErrInvalidArgument", err, tt.want)
			}
			if tt.want != ErrInvalidArgument && strings.Contains(err.Error(), ErrInvalidArgument.Error()) {
				t.Fatalf("%q repeats %q", err, ErrInvalidArgument)
			}
		})
	}
}

// TestAppendLinesErrorsNameTheLine: a line that cannot be appended is
// named by its 1-based position among the lines given, as the server names
// a line of an NDJSON body, and the error still wraps its sentinels.
func TestAppendLinesErrorsNameTheLine(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := startPaginated(t, m, user("u0"))
	const good = `{"type":"event_msg","payload":{"type":"x"}}`
	tests := []struct {
		name  string
		lines []string
		want  []error
	}{
		{"second line without type", []string{good, `{"payload":{}}`}, []error{ErrInvalidItem, rollout.ErrMissingType}},
		{"third line not JSON", []string{good, good, `{nope`}, []error{ErrInvalidItem, rollout.ErrInvalidJSON}},
		{"second line with an ordinal", []string{good, `{"ordinal":7,"type":"event_msg","payload":{}}`}, []error{ErrInvalidItem, rollout.ErrInvalidOrdinal}},
		{"second line a rollback marker", []string{good, `{"type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":1}}`}, []error{ErrPaginatedRollback}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := make([][]byte, len(tt.lines))
			for i, l := range tt.lines {
				lines[i] = []byte(l)
			}
			_, err := m.AppendLines(ctx, th.ID, lines)
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
			}
			var lineErr *LineError
			if !errors.As(err, &lineErr) {
				t.Fatalf("err = %v, want a *LineError", err)
			}
			if got, want := lineErr.Line, len(tt.lines); got != want {
				t.Fatalf("LineError.Line = %d, want %d (%v)", got, want, err)
			}
			if want := fmt.Sprintf(": line %d: ", len(tt.lines)); !strings.Contains(err.Error(), want) {
				t.Fatalf("%q does not name the line as %q", err, want)
			}
		})
	}
}

// TestAppendOfAnOrdinalSaysSoOnce: a line that brings its own ordinal to a
// paginated thread is refused with a message that says so once; it read
// "invalid item: with ordinal: line already has an ordinal: rollout:
// invalid ordinal". Both sentinels stay testable.
func TestAppendOfAnOrdinalSaysSoOnce(t *testing.T) {
	m := openTest(t)
	th := startPaginated(t, m, user("u0"))
	_, err := m.AppendLines(t.Context(), th.ID, [][]byte{[]byte(`{"ordinal":7,"type":"event_msg","payload":{}}`)})
	for _, want := range []error{ErrInvalidItem, rollout.ErrInvalidOrdinal} {
		if !errors.Is(err, want) {
			t.Fatalf("err = %v, want %v", err, want)
		}
	}
	for _, word := range []string{"invalid", "ordinal"} {
		if n := strings.Count(err.Error(), word); n != 1 {
			t.Errorf("%q says %q %d times, want once", err, word, n)
		}
	}
}
