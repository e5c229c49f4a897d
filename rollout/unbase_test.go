package rollout_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

func TestWithoutHistoryBase(t *testing.T) {
	const base = `{"thread_id":"x","end_ordinal_exclusive":3,"end_byte_offset":10}`
	tests := []struct {
		name, line, want string
		err              error
	}{
		{"middle", `{"timestamp":"t","ordinal":0,"type":"session_meta","payload":{"id":"a","history_base":` + base + `,"cwd":"/"}}`,
			`{"timestamp":"t","ordinal":0,"type":"session_meta","payload":{"id":"a","cwd":"/"}}`, nil},
		{"first", `{"type":"session_meta","payload":{"history_base":` + base + `, "id":"a"}}`,
			`{"type":"session_meta","payload":{ "id":"a"}}`, nil},
		{"last", `{"type":"session_meta","payload":{"id":"a" , "history_base":` + base + `}}`,
			`{"type":"session_meta","payload":{"id":"a" }}`, nil},
		{"alone", `{"type":"session_meta","payload":{"history_base":` + base + `}}`,
			`{"type":"session_meta","payload":{}}`, nil},
		{"duplicates", `{"type":"session_meta","payload":{"history_base":1,"id":"a","history_base":` + base + `}}`,
			`{"type":"session_meta","payload":{"id":"a"}}`, nil},
		{"nested one kept", `{"type":"session_meta","payload":{"id":"a","x":{"history_base":1}}}`,
			`{"type":"session_meta","payload":{"id":"a","x":{"history_base":1}}}`, nil},
		{"none", `{"type":"session_meta","payload":{"id":"a"}}`, `{"type":"session_meta","payload":{"id":"a"}}`, nil},
		{"not an object", `[1]`, "", rollout.ErrNotObject},
		{"torn", `{"type":"session_meta","payload":{"history_base":`, "", rollout.ErrInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMetaEdit(t, rollout.WithoutHistoryBase, tt.line+"\n", tt.want, tt.err)
		})
	}
}

// checkMetaEdit fails t unless edit turns line into want and one newline,
// or fails with wantErr when that is set; it returns what edit made.
func checkMetaEdit(t *testing.T, edit func([]byte) ([]byte, error), line, want string, wantErr error) []byte {
	t.Helper()
	got, err := edit([]byte(line))
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("err = %v, want %v", err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want+"\n" {
		t.Fatalf("got %q, want %q", got, want+"\n")
	}
	return got
}

func TestWithForkPoint(t *testing.T) {
	fp := rollout.ForkPoint{UserMessage: 2, ParentOffset: 900, CopiedLines: 41}
	const want = `{"user_message":2,"parent_offset":900,"copied_lines":41}`
	const id = "0199a213-81c0-7800-8aa1-bbab2a035a53"
	tests := []struct {
		name, line, want string
		err              error
	}{
		{"replaced", `{"type":"session_meta","payload":{"id":"` + id + `","spool_fork_point":{"user_message":2,"parent_offset":900},"cwd":"/"}}`,
			`{"type":"session_meta","payload":{"id":"` + id + `","spool_fork_point":` + want + `,"cwd":"/"}}`, nil},
		{"spaced", `{"type":"session_meta","payload":{"id":"` + id + `","spool_fork_point" : {"user_message":2} }}`,
			`{"type":"session_meta","payload":{"id":"` + id + `","spool_fork_point" : ` + want + ` }}`, nil},
		{"nested one kept", `{"type":"session_meta","payload":{"id":"` + id + `","x":{"spool_fork_point":1},"spool_fork_point":null}}`,
			`{"type":"session_meta","payload":{"id":"` + id + `","x":{"spool_fork_point":1},"spool_fork_point":` + want + `}}`, nil},
		{"added", `{"type":"session_meta","payload":{"id":"` + id + `","x":{"spool_fork_point":1}}}`,
			`{"type":"session_meta","payload":{"id":"` + id + `","x":{"spool_fork_point":1},"spool_fork_point":` + want + `}}`, nil},
		{"added before spaces", `{"type":"session_meta","payload":{ "id":"` + id + `" } ,"ordinal":4}`,
			`{"type":"session_meta","payload":{ "id":"` + id + `" ,"spool_fork_point":` + want + `} ,"ordinal":4}`, nil},
		{"no payload object", `{"type":"session_meta","payload":"x"}`, "", rollout.ErrNotObject},
		{"not an object", `"a"`, "", rollout.ErrNotObject},
		{"torn", `{"type":"session_meta","payload":{"spool_fork_point":{`, "", rollout.ErrInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkMetaEdit(t, func(line []byte) ([]byte, error) { return rollout.WithForkPoint(line, fp) }, tt.line, tt.want, tt.err)
			if got == nil {
				return
			}
			meta, err := rollout.ParseSessionMeta(got)
			if err != nil || meta.ForkPoint == nil || !reflect.DeepEqual(*meta.ForkPoint, fp) {
				t.Fatalf("the result parses to %+v, %v; want fork point %+v", meta.ForkPoint, err, fp)
			}
		})
	}
}

func TestForkPointCopied(t *testing.T) {
	const metaEnd = 100
	tests := []struct {
		name         string
		fp           rollout.ForkPoint
		line, offset int64
		want         bool
	}{
		{"by offset: before the cut", rollout.ForkPoint{ParentOffset: 50}, 3, 149, true},
		{"by offset: at the cut", rollout.ForkPoint{ParentOffset: 50}, 3, 150, false},
		{"by line: last copied", rollout.ForkPoint{ParentOffset: 50, CopiedLines: 7}, 7, 900, true},
		{"by line: the fork's own", rollout.ForkPoint{ParentOffset: 50, CopiedLines: 7}, 8, 120, false},
	}
	for _, tt := range tests {
		if got := tt.fp.Copied(tt.line, tt.offset, metaEnd); got != tt.want {
			t.Errorf("%s: Copied(%d, %d) = %t, want %t", tt.name, tt.line, tt.offset, got, tt.want)
		}
	}
}

func TestForkPointAncestryOf(t *testing.T) {
	const p, g, gg, x = "p", "g", "gg", "x"
	stated := &rollout.ForkPoint{Ancestors: []string{p, g, gg}}
	cases := []struct {
		name  string
		fp    *rollout.ForkPoint
		found []string
		want  []string
	}{
		{"no fork point", nil, []string{p}, []string{p}},
		{"nothing stated", &rollout.ForkPoint{}, []string{p, g}, []string{p, g}},
		{"the files name it all", stated, []string{p, g, gg}, []string{p, g, gg}},
		{"a prefix: a copied meta is missing", stated, []string{p}, []string{p, g, gg}},
		{"parent and base: the middle is deleted", stated, []string{p, gg}, []string{p, g, gg}},
		{"another parent: a meta that is not the thread's", stated, []string{x}, []string{x}},
		{"an ancestor it does not state", stated, []string{p, x}, []string{p, x}},
		{"out of order", stated, []string{p, gg, g}, []string{p, gg, g}},
		{"no parent found: not a fork", stated, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fp.AncestryOf(tc.found); !slices.Equal(got, tc.want) {
				t.Fatalf("AncestryOf(%v) = %v, want %v", tc.found, got, tc.want)
			}
		})
	}
}

func TestParseForkPointAncestors(t *testing.T) {
	const a, b = "019B0000-0000-7000-8000-00000000000A", "019b0000-0000-7000-8000-00000000000b"
	const self = "019B0000-0000-7000-8000-000000000001" // the meta's own id, in upper case
	cases := []struct {
		name      string
		ancestors string
		want      []string
	}{
		{"in lower case", `["` + a + `","` + b + `"]`, []string{strings.ToLower(a), b}},
		{"not a UUID", `["` + a + `","nope"]`, nil},
		{"named twice", `["` + b + `","` + b + `"]`, nil},
		{"naming the thread itself", `["` + a + `","` + self + `"]`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			line := `{"timestamp":"2026-01-02T03:04:05.000Z","type":"session_meta","payload":{"id":"019b0000-0000-7000-8000-000000000001",` +
				`"forked_from_id":"` + a + `","timestamp":"t","cwd":"/","originator":"o","cli_version":"v","source":"cli",` +
				`"spool_fork_point":{"user_message":1,"parent_offset":10,"ancestors":` + tc.ancestors + `}}}`
			m, err := rollout.ParseSessionMeta([]byte(line))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.ForkPoint.Ancestors; !slices.Equal(got, tc.want) {
				t.Fatalf("ancestors %v, want %v", got, tc.want)
			}
			out, err := rollout.NewSessionMetaLine("2026-01-02T03:04:05.000Z", rollout.MetaPayload{SessionMeta: m})
			if err != nil {
				t.Fatal(err)
			}
			again, err := rollout.ParseSessionMeta(out)
			if err != nil || !slices.Equal(again.ForkPoint.Ancestors, tc.want) {
				t.Fatalf("written and read again: %v, %v; want %v", again.ForkPoint.Ancestors, err, tc.want)
			}
		})
	}
}
