package rollout

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestParseSessionMeta(t *testing.T) {
	const id = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
	tests := []struct {
		name    string
		line    string
		want    SessionMeta
		wantErr error
	}{
		{
			name: "full",
			line: `{"timestamp":"t0","type":"session_meta","payload":{"id":"019DAB4F-6B3E-7C21-9A40-5D3E2F1A0B9C","forked_from_id":"67e55044-10b1-426f-9247-bb680e5fe0c8","timestamp":"t1","cwd":"/w","originator":"codex_cli_rs","cli_version":"0.125.0","source":"exec","model_provider":"openai","base_instructions":{"text":"x"},"git":{"commit_hash":"abc","branch":"main","repository_url":"git@x:y.git"},"spool_fork_point":{"user_message":2,"parent_offset":1234},"memory_mode":"disabled"}}` + "\n",
			want: SessionMeta{ID: id, ForkedFromID: "67e55044-10b1-426f-9247-bb680e5fe0c8", Timestamp: "t1", Cwd: "/w",
				Originator: "codex_cli_rs", CLIVersion: "0.125.0", Source: "exec", ModelProvider: "openai",
				Git: &GitInfo{CommitHash: "abc", Branch: "main", RepositoryURL: "git@x:y.git"}, ForkPoint: &ForkPoint{UserMessage: 2, ParentOffset: 1234}},
		},
		{
			name: "missing source and null provider",
			line: `{"type":"session_meta","payload":{"id":"` + id + `","timestamp":"t","cwd":"/","originator":"o","cli_version":"1","model_provider":null,"base_instructions":null}}`,
			want: SessionMeta{ID: id, Timestamp: "t", Cwd: "/", Originator: "o", CLIVersion: "1", Source: "vscode"},
		},
		{
			name: "object source compacted",
			line: `{"type":"session_meta","payload":{"id":"` + id + `","source":{ "subagent" : {"thread_spawn":{"parent_thread_id":"p","depth":1}}}}}`,
			want: SessionMeta{ID: id, Source: `{"subagent":{"thread_spawn":{"parent_thread_id":"p","depth":1}}}`},
		},
		{
			name: "custom source",
			line: `{"type":"session_meta","payload":{"id":"` + id + `","source":{"custom":"atlas"}}}`,
			want: SessionMeta{ID: id, Source: `{"custom":"atlas"}`},
		},
		{name: "not meta", line: `{"type":"event_msg","payload":{"id":"` + id + `"}}`, wantErr: ErrNotSessionMeta},
		{name: "bad id", line: `{"type":"session_meta","payload":{"id":"../../etc/passwd"}}`, wantErr: ErrInvalidID},
		{name: "missing id", line: `{"type":"session_meta","payload":{}}`, wantErr: ErrInvalidID},
		{name: "bad parent id", line: `{"type":"session_meta","payload":{"id":"` + id + `","forked_from_id":"x"}}`, wantErr: ErrInvalidID},
		{name: "malformed", line: `{"type":"session_meta"`, wantErr: ErrInvalidJSON},
		{name: "wrong field type", line: `{"type":"session_meta","payload":{"id":"` + id + `","cwd":5}}`, wantErr: ErrInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSessionMeta([]byte(tt.line))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ParseSessionMeta error = %v, want %v", err, tt.wantErr)
			}
			if !sameMeta(got, tt.want) {
				t.Fatalf("ParseSessionMeta = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseSessionMetaNamesWrongTypes: a meta member of the wrong JSON
// type is refused with ErrInvalidJSON, as before, but the message names
// the member and both types instead of calling valid JSON invalid and
// naming Go's types ("cannot unmarshal number into Go struct field
// .payload.id of type string").
func TestParseSessionMetaNamesWrongTypes(t *testing.T) {
	const id = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
	tests := []struct {
		name, payload, want string
	}{
		{"id a number", `{"id":5}`, `parse session meta: member "id" is a number, want a string`},
		{"cwd a number", `{"id":"` + id + `","cwd":5}`, `parse session meta: member "cwd" is a number, want a string`},
		{"git a number", `{"id":"` + id + `","git":7}`, `parse session meta: member "git" is a number, want an object`},
		{"nested", `{"id":"` + id + `","git":{"branch":true}}`, `parse session meta: member "git.branch" is a bool, want a string`},
		{"offset a string", `{"id":"` + id + `","history_base":{"thread_id":"` + id + `","end_byte_offset":"x"}}`, `parse session meta: member "history_base.end_byte_offset" is a string, want an integer`},
		{"offset a fraction", `{"id":"` + id + `","history_base":{"thread_id":"` + id + `","end_byte_offset":1.5}}`, `parse session meta: member "history_base.end_byte_offset" is a number (1.5), want an integer`},
		{"payload an array", `[1]`, `parse session meta: member "payload" is an array, want an object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSessionMeta([]byte(`{"type":"session_meta","payload":` + tt.payload + `}`))
			if !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("ParseSessionMeta error = %v, want ErrInvalidJSON", err)
			}
			if got := err.Error(); got != tt.want {
				t.Fatalf("ParseSessionMeta error = %q, want %q", got, tt.want)
			}
		})
	}
}

func sameMeta(a, b SessionMeta) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestNewSessionMetaLine(t *testing.T) {
	base := SessionMeta{
		ID: "019DAB60-0A1B-72C3-8D4E-5F6A7B8C9D0E", Timestamp: "2026-04-20T10:34:12.377Z", Cwd: "/home/dev/project",
		Originator: "spool", CLIVersion: "0.1.0", Source: "cli", ModelProvider: "openai",
	}
	fork := base
	fork.ForkedFromID = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
	fork.Git = &GitInfo{CommitHash: "abc", Branch: "main"}
	fork.ForkPoint = &ForkPoint{UserMessage: 1, ParentOffset: 7158}
	fork.Source = `{"custom":"atlas"}`
	bare := SessionMeta{ID: base.ID}
	const ts = "2026-04-20T10:34:12.501Z"
	tests := []struct {
		name    string
		meta    MetaPayload
		want    string
		wantErr error
	}{
		{
			name: "plain",
			meta: MetaPayload{SessionMeta: base, BaseInstructions: "You are \"Codex\"."},
			want: `{"timestamp":"` + ts + `","type":"session_meta","payload":{"id":"019dab60-0a1b-72c3-8d4e-5f6a7b8c9d0e","timestamp":"2026-04-20T10:34:12.377Z","cwd":"/home/dev/project","originator":"spool","cli_version":"0.1.0","source":"cli","model_provider":"openai","base_instructions":{"text":"You are \"Codex\"."}}}` + "\n",
		},
		{
			name: "fork with extras",
			meta: MetaPayload{SessionMeta: fork, Extra: map[string]json.RawMessage{
				"memory_mode": json.RawMessage(`"disabled"`), "agent_role": json.RawMessage(`"worker"`),
				"base_instructions": json.RawMessage(`{"text":"copied"}`)}},
			want: `{"timestamp":"` + ts + `","type":"session_meta","payload":{"id":"019dab60-0a1b-72c3-8d4e-5f6a7b8c9d0e","forked_from_id":"019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c","timestamp":"2026-04-20T10:34:12.377Z","cwd":"/home/dev/project","originator":"spool","cli_version":"0.1.0","source":{"custom":"atlas"},"model_provider":"openai","base_instructions":{"text":"copied"},"git":{"commit_hash":"abc","branch":"main"},"spool_fork_point":{"user_message":1,"parent_offset":7158},"agent_role":"worker","memory_mode":"disabled"}}` + "\n",
		},
		{
			name: "bare",
			meta: MetaPayload{SessionMeta: bare},
			want: `{"timestamp":"` + ts + `","type":"session_meta","payload":{"id":"019dab60-0a1b-72c3-8d4e-5f6a7b8c9d0e","timestamp":"","cwd":"","originator":"","cli_version":"","source":"vscode","model_provider":null,"base_instructions":null}}` + "\n",
		},
		{name: "bad id", meta: MetaPayload{SessionMeta: SessionMeta{ID: "nope"}}, wantErr: ErrInvalidID},
		{name: "bad source object", meta: MetaPayload{SessionMeta: SessionMeta{ID: base.ID, Source: "{oops"}}, wantErr: ErrInvalidJSON},
		{name: "bad extra", meta: MetaPayload{SessionMeta: bare, Extra: map[string]json.RawMessage{"x": json.RawMessage(`{`)}}, wantErr: ErrInvalidJSON},
		{name: "newline in extra", meta: MetaPayload{SessionMeta: bare, Extra: map[string]json.RawMessage{"x": json.RawMessage("[1,\n2]")}}, wantErr: ErrRawNewline},
		{name: "invalid utf8 cwd", meta: MetaPayload{SessionMeta: SessionMeta{ID: base.ID, Cwd: "/\xff"}}, wantErr: ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewSessionMetaLine(ts, tt.meta)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("NewSessionMetaLine error = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Fatalf("NewSessionMetaLine =\n%s\nwant\n%s", got, tt.want)
			}
			if err != nil {
				return
			}
			back, err := ParseSessionMeta(got)
			if err != nil {
				t.Fatalf("written meta does not parse: %v", err)
			}
			want := tt.meta.SessionMeta
			want.ID, _ = ParseID(want.ID)
			if want.Source == "" {
				want.Source = "vscode"
			}
			if !sameMeta(back, want) {
				t.Fatalf("round trip = %+v, want %+v", back, want)
			}
		})
	}
}

func TestBaseInstructions(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"text", `{"type":"session_meta","payload":{"id":"x","base_instructions":{"text":"You are \"Codex\"."}}}` + "\n", `You are "Codex".`},
		{"null", `{"type":"session_meta","payload":{"base_instructions":null}}`, ""},
		{"missing", `{"type":"session_meta","payload":{}}`, ""},
		{"malformed", `{"type":"session_meta"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BaseInstructions([]byte(tt.line)); got != tt.want {
				t.Fatalf("BaseInstructions = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseCreationKey: a meta's spool_creation_key is read only when it
// can be the thread's own; any other value reads as none and leaves the
// meta readable. What is read is written back as it was.
func TestParseCreationKey(t *testing.T) {
	const (
		self   = "019b0000-0000-7000-8000-000000000001"
		parent = "019b0000-0000-7000-8000-00000000000a"
		other  = "019b0000-0000-7000-8000-00000000000b"
		hash   = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
		// metaTime is the meta's timestamp, 2026-11-27T10:00:00.000Z.
		metaTime = int64(1795773600000)
	)
	member := func(scope, key, hash string, created, expires int64) string {
		k, _ := json.Marshal(CreationKey{Scope: scope, Key: key, RequestSHA256: hash, CreatedAt: created, ExpiresAt: expires})
		return string(k)
	}
	tests := []struct {
		name   string
		parent string // the meta's forked_from_id
		member string
		want   *CreationKey
	}{
		{"a start's", "", member("", "k", hash, 1, 2), &CreationKey{Key: "k", RequestSHA256: hash, CreatedAt: 1, ExpiresAt: 2}},
		{"a fork's, scope in upper case", parent, member(strings.ToUpper(parent), "k", hash, 1, 2),
			&CreationKey{Scope: parent, Key: "k", RequestSHA256: hash, CreatedAt: 1, ExpiresAt: 2}},
		{"a fork's scope in a start", "", member(parent, "k", hash, 1, 2), nil},
		{"a start's scope in a fork", parent, member("", "k", hash, 1, 2), nil},
		{"another parent's", parent, member(other, "k", hash, 1, 2), nil},
		{"a scope that is no id", parent, member("nope", "k", hash, 1, 2), nil},
		{"no key", "", member("", "", hash, 1, 2), nil},
		{"an overlong key", "", member("", strings.Repeat("k", maxCreationKeyLen+1), hash, 1, 2), nil},
		{"a short hash", "", member("", "k", hash[2:], 1, 2), nil},
		{"a hash in upper case", "", member("", "k", strings.ToUpper(hash), 1, 2), nil},
		{"no creation time", "", member("", "k", hash, 0, 2), nil},
		{"expired at creation", "", member("", "k", hash, 2, 2), nil},
		{"kept longer than a key is", "", member("", "k", hash, 1, 1+maxCreationKeyTTL.Milliseconds()+1), nil},
		{"never expiring", "", member("", "k", hash, 1, math.MaxInt64), nil},
		{"kept as long as a key is", "", member("", "k", hash, 1, 1+maxCreationKeyTTL.Milliseconds()),
			&CreationKey{Key: "k", RequestSHA256: hash, CreatedAt: 1, ExpiresAt: 1 + maxCreationKeyTTL.Milliseconds()}},
		{"created after its thread", "", member("", "k", hash, metaTime+creationKeySkew.Milliseconds()+1, metaTime+2*creationKeySkew.Milliseconds()), nil},
		{"created in the year 3000", "", member("", "k", hash, 32503680000000, 32503680000001), nil},
		{"created with its thread", "", member("", "k", hash, metaTime, metaTime+1), &CreationKey{Key: "k", RequestSHA256: hash, CreatedAt: metaTime, ExpiresAt: metaTime + 1}},
		{"not an object", "", `"k"`, nil},
		{"a member of the wrong type", "", `{"key":1}`, nil},
		{"null", "", `null`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forked := ""
			if tc.parent != "" {
				forked = `"forked_from_id":"` + tc.parent + `",`
			}
			line := `{"timestamp":"t","type":"session_meta","payload":{"id":"` + self + `",` + forked +
				`"timestamp":"2026-11-27T10:00:00.000Z","cwd":"/","originator":"o","cli_version":"v","source":"cli","spool_creation_key":` + tc.member + `}}`
			m, err := ParseSessionMeta([]byte(line))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.CreationKey, tc.want) {
				t.Fatalf("creation key %+v, want %+v", m.CreationKey, tc.want)
			}
			out, err := NewSessionMetaLine("t", MetaPayload{SessionMeta: m})
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseSessionMeta(out)
			if err != nil || !reflect.DeepEqual(again.CreationKey, tc.want) {
				t.Fatalf("written and read again: %+v, %v; want %+v", again.CreationKey, err, tc.want)
			}
		})
	}
	t.Run("a meta without a valid timestamp", func(t *testing.T) {
		line := `{"timestamp":"t","type":"session_meta","payload":{"id":"` + self + `","timestamp":"t","cwd":"/","originator":"o",` +
			`"cli_version":"v","source":"cli","spool_creation_key":` + member("", "k", hash, 1, 2) + `}}`
		m, err := ParseSessionMeta([]byte(line))
		if err != nil || m.CreationKey != nil {
			t.Fatalf("creation key %+v, %v; want none", m.CreationKey, err)
		}
	})
}
