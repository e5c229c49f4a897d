package manager

import (
	"strings"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// withoutMetaTexts drops the "meta" entries of payloadTexts: forks differ
// in how many metas they hold, not in their items.
func withoutMetaTexts(texts []string) []string {
	var out []string
	for _, s := range texts {
		if s != "meta" {
			out = append(out, s)
		}
	}
	return out
}

// TestSeedCasesOnReferenceForks runs the seed's cases (Codex's
// drops_from_last_user_only and
// ignores_session_prefix_messages_when_truncating) on paginated threads
// forked by reference, on a reference fork of a whole reference fork (a
// chain), and in copy mode of that chain: each keeps exactly the items
// before the cut.
func TestSeedCasesOnReferenceForks(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	drops := []rollout.Item{user("u1"), assistant("a1"), assistant("a2"), user("u2"), assistant("a3"), reasoning("r"), functionCall("call"), assistant("a4")}
	prefix := []rollout.Item{
		user("# AGENTS.md instructions for /work\n\n<INSTRUCTIONS>\nbe nice\n</INSTRUCTIONS>"),
		user("<environment_context>\n  <cwd>/work</cwd>\n</environment_context>"),
		user("first prompt"), assistant("a1"), user("second prompt"), assistant("a2"),
	}
	cases := []struct {
		name   string
		items  []rollout.Item
		before int
		want   []string
	}{
		{"drops_from_last_user_only", drops, 1, []string{"user:u1", "message", "message"}},
		{"ignores_session_prefix_messages_when_truncating", prefix, 1, []string{"message", "message", "user:first prompt", "message"}},
		{"ignores_session_prefix_messages_when_truncating before 0", prefix, 0, []string{"message", "message"}},
	}
	for _, c := range cases {
		parent := startPaginated(t, m, c.items...)
		whole, err := m.Fork(ctx, parent.ID, ForkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before := c.before
		shapes := []struct {
			name string
			fork func() (Thread, error)
			read func(Thread) []byte
		}{
			{"reference fork", func() (Thread, error) {
				return m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: &before})
			}, func(th Thread) []byte { return historyOf(t, m, th.ID) }},
			{"reference fork of a reference fork", func() (Thread, error) {
				return m.Fork(ctx, whole.ID, ForkOptions{BeforeUserMessage: &before})
			}, func(th Thread) []byte { return historyOf(t, m, th.ID) }},
			{"copy of a reference fork", func() (Thread, error) {
				return m.Fork(ctx, whole.ID, ForkOptions{BeforeUserMessage: &before, Mode: ForkCopy})
			}, func(th Thread) []byte { return ownFile(t, m, th.ID) }},
		}
		for _, s := range shapes {
			t.Run(c.name+"/"+s.name, func(t *testing.T) {
				th, err := s.fork()
				if err != nil {
					t.Fatal(err)
				}
				if s.name == "copy of a reference fork" && th.BaseID != "" {
					t.Fatalf("copy has base %s, want none", th.BaseID)
				}
				if s.name != "copy of a reference fork" && th.BaseID != parent.ID {
					t.Fatalf("fork base = %q, want %s", th.BaseID, parent.ID)
				}
				got := withoutMetaTexts(payloadTexts(t, s.read(th)))
				if strings.Join(got, ",") != strings.Join(c.want, ",") {
					t.Fatalf("fork holds %v, want %v", got, c.want)
				}
				if th.UserMessageCount != c.before {
					t.Fatalf("fork counts %d user messages, want %d", th.UserMessageCount, c.before)
				}
			})
		}
	}
}
