package rollout

import (
	"bytes"
	"testing"
)

// SpawnParent of a stored source is what ParseSessionMeta reads back from
// the meta NewSessionMetaLine writes with it.
func TestSpawnParentRoundTrip(t *testing.T) {
	const parent = "dddddddd-dddd-7ddd-8ddd-dddddddddddd"
	for _, source := range []string{
		`{"subagent":{"thread_spawn":{"parent_thread_id":"` + parent + `","depth":1}}}`,
		`{"subagent":{"thread_spawn":{"parent_thread_id":"DDDDDDDD-DDDD-7DDD-8DDD-DDDDDDDDDDDD"}}}`,
		`{"subagent":{"thread_spawn":{"parent_thread_id":"x"}}}`,
		`{"subagent":"review"}`,
		"cli",
		"",
	} {
		line, err := NewSessionMetaLine("2026-06-01T08:00:00.000Z", MetaPayload{SessionMeta: SessionMeta{
			ID: "aaaaaaaa-aaaa-7aaa-8aaa-aaaaaaaaaaaa", Timestamp: "2026-06-01T08:00:00.000Z", Source: source,
		}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseSessionMeta(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := SpawnParent(source), m.SpawnParentID; got != want {
			t.Errorf("SpawnParent(%q) = %q, ParseSessionMeta reads %q", source, got, want)
		}
	}
}
