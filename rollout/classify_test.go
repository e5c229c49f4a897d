package rollout

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/fixtures"
)

// userLine returns a response_item message line with the given role and
// input_text parts.
func userLine(role string, texts ...string) string {
	type part struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	parts := make([]part, 0, len(texts))
	for _, t := range texts {
		parts = append(parts, part{"input_text", t})
	}
	payload, _ := json.Marshal(map[string]any{"type": "message", "role": role, "content": parts})
	return `{"timestamp":"2026-05-01T09:00:00.000Z","type":"response_item","payload":` + string(payload) + `}`
}

// nestedLine returns line, a JSON object whose payload is an object, with
// a member added to its payload that takes the line to depth levels of
// nesting (the line's own object is level 1).
func nestedLine(line string, depth int) string {
	arrays := depth - 2
	return strings.TrimSuffix(line, "}}") + `,"x":` + strings.Repeat("[", arrays) + strings.Repeat("]", arrays) + "}}"
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Classified
	}{
		{"plain user", userLine("user", "hi"), Classified{Kind: KindUserMessage, Text: "hi"}},
		{"joined parts", userLine("user", "a", "b"), Classified{Kind: KindUserMessage, Text: "a\nb"}},
		{"assistant", userLine("assistant", "hi"), Classified{}},
		{"developer", userLine("developer", "hi"), Classified{}},
		{"agents md", userLine("user", "# AGENTS.md instructions for /x\n<INSTRUCTIONS>\nx\n</INSTRUCTIONS>"), Classified{}},
		// Codex 0.169 compares the markers case-sensitively (compat: TestClassifierAgreesWithCodex).
		{"agents md lower case counted", userLine("user", "# agents.md INSTRUCTIONS for /x <instructions>x</instructions>"), Classified{Kind: KindUserMessage, Text: "# agents.md INSTRUCTIONS for /x <instructions>x</instructions>"}},
		{"skill upper case counted", userLine("user", "<SKILL>x</SKILL>"), Classified{Kind: KindUserMessage, Text: "<SKILL>x</SKILL>"}},
		{"environment context padded", userLine("user", "\n  <environment_context>x</environment_context>\t\n"), Classified{}},
		{"skill", userLine("user", "<skill>x</skill>"), Classified{}},
		{"user shell command", userLine("user", "<user_shell_command>ls</user_shell_command>"), Classified{}},
		{"turn aborted", userLine("user", "<turn_aborted>x</turn_aborted>"), Classified{}},
		{"subagent notification", userLine("user", "<subagent_notification>x</subagent_notification>"), Classified{}},
		// openai/codex#12417 (2026-02-26): no longer context, counted again.
		{"user instructions counted", userLine("user", "<user_instructions>x</user_instructions>"), Classified{Kind: KindUserMessage, Text: "<user_instructions>x</user_instructions>"}},
		{"agents md standalone", userLine("user", "# AGENTS.md instructions\n<INSTRUCTIONS>removed</INSTRUCTIONS>"), Classified{}},
		{"recommended plugins", userLine("user", "<recommended_plugins>\n- x\n</recommended_plugins>"), Classified{}},
		{"hook prompt upper case", userLine("user", `<HOOK_PROMPT hook_run_id="1">x</HOOK_PROMPT>`), Classified{}},
		{"goal context", userLine("user", "<goal_context>\ngo on\n</goal_context>"), Classified{}},
		{"goal context other case counted", userLine("user", "<GOAL_CONTEXT>x</GOAL_CONTEXT>"), Classified{Kind: KindUserMessage, Text: "<GOAL_CONTEXT>x</GOAL_CONTEXT>"}},
		{"internal context", userLine("user", `<codex_internal_context source="memory_1">x</codex_internal_context>`), Classified{}},
		{"internal context any source", userLine("user", `<codex_internal_context source="Memory">x</codex_internal_context>`), Classified{}},
		{"internal context no source", userLine("user", `<codex_internal_context>x</codex_internal_context>`), Classified{}},
		{"internal context upper case counted", userLine("user", `<CODEX_INTERNAL_CONTEXT source="goal">x</CODEX_INTERNAL_CONTEXT>`), Classified{Kind: KindUserMessage, Text: `<CODEX_INTERNAL_CONTEXT source="goal">x</CODEX_INTERNAL_CONTEXT>`}},
		{"external context", userLine("user", "<external_jira>ticket</external_jira>"), Classified{}},
		{"external context empty key", userLine("user", "<external_>x</external_>"), Classified{}},
		{"external context other key counted", userLine("user", "<external_jira>ticket</external_linear>"), Classified{Kind: KindUserMessage, Text: "<external_jira>ticket</external_linear>"}},
		{"legacy exec warning", userLine("user", "Warning: The maximum number of unified exec processes you can keep open is 60."), Classified{}},
		{"legacy apply patch warning", userLine("user", "Warning: apply_patch was requested via exec_command. Use the apply_patch tool instead of exec_command."), Classified{}},
		{"legacy cyber warning", userLine("user", "Warning: Your account was flagged for potentially high-risk cyber activity and ..."), Classified{}},
		{"hook prompt", userLine("user", `<hook_prompt hook_run_id="1">x</hook_prompt>`), Classified{}},
		{"hook prompt without run id counted", userLine("user", `<hook_prompt>x</hook_prompt>`), Classified{Kind: KindUserMessage, Text: `<hook_prompt>x</hook_prompt>`}},
		{"hook prompt empty run id counted", userLine("user", `<hook_prompt hook_run_id="">x</hook_prompt>`), Classified{Kind: KindUserMessage, Text: `<hook_prompt hook_run_id="">x</hook_prompt>`}},
		{"hook prompt with an element inside counted", userLine("user", `<hook_prompt hook_run_id="1"><b>x</b></hook_prompt>`), Classified{Kind: KindUserMessage, Text: `<hook_prompt hook_run_id="1"><b>x</b></hook_prompt>`}},
		{"two hook prompts", userLine("user", `<hook_prompt hook_run_id="1">x</hook_prompt><hook_prompt hook_run_id="2">y</hook_prompt>`), Classified{}},
		{"hook prompt with cdata", userLine("user", `<hook_prompt hook_run_id="1"><![CDATA[a < b]]></hook_prompt>`), Classified{}},
		{"hook prompt not xml counted", userLine("user", `<hook_prompt hook_run_id="1">a < b</hook_prompt>`), Classified{Kind: KindUserMessage, Text: `<hook_prompt hook_run_id="1">a < b</hook_prompt>`}},
		{"no timestamp not counted", `{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}`, Classified{}},
		{"number timestamp not counted", `{"timestamp":5,"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}`, Classified{}},
		{"unknown part type not counted", `{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_file","file_id":"f"}]}}`, Classified{}},
		{"null image url not counted", `{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":null}]}}`, Classified{}},
		{"unknown phase not counted", `{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","phase":"draft","content":[{"type":"input_text","text":"hi"}]}}`, Classified{}},
		{"known phase counted", `{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","phase":"commentary","content":[{"type":"input_text","text":"hi"}]}}`, Classified{Kind: KindUserMessage, Text: "hi"}},
		{"audio part counted", `{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_audio","data":"x"},{"type":"input_text","text":"hi"}]}}`, Classified{Kind: KindUserMessage, Text: "hi"}},
		{"setup in second part", userLine("user", "hello", "<skill>x</skill>"), Classified{}},
		{"marker without end", userLine("user", "<skill> is a tag"), Classified{Kind: KindUserMessage, Text: "<skill> is a tag"}},
		{"end without marker", userLine("user", "see </skill>"), Classified{Kind: KindUserMessage, Text: "see </skill>"}},
		{"event user_message", `{"type":"event_msg","payload":{"type":"user_message","message":"hi"}}`, Classified{}},
		{"content not a list", `{"type":"response_item","payload":{"type":"message","role":"user","content":"hi"}}`, Classified{}},
		{"image only", `{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_image","image_url":"x"}]}}`, Classified{Kind: KindUserMessage}},
		{"meta", `{"type":"session_meta","payload":{"id":"x"}}`, Classified{Kind: KindSessionMeta}},
		{"rollback", `{"type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":3}}`, Classified{Kind: KindRollback, RollbackTurns: 3}},
		{"rollback negative", `{"type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":-1}}`, Classified{}},
		{"rollback missing turns", `{"type":"event_msg","payload":{"type":"thread_rolled_back"}}`, Classified{}},
		{"rename", `{"type":"event_msg","payload":{"type":"thread_name_updated","thread_name":"new name"}}`, Classified{Kind: KindNameUpdate, Name: "new name"}},
		{"rename with thread id", `{"type":"event_msg","payload":{"type":"thread_name_updated","thread_id":"019dab80-5e6f-7a8b-9c0d-1e2f3a4b5c6d","thread_name":"x"}}`, Classified{Kind: KindNameUpdate, Name: "x", ThreadID: "019dab80-5e6f-7a8b-9c0d-1e2f3a4b5c6d"}},
		{"rename null", `{"type":"event_msg","payload":{"type":"thread_name_updated","thread_name":null}}`, Classified{Kind: KindNameUpdate}},
		{"compacted history", `{"type":"compacted","payload":{"message":"m","replacement_history":[{"type":"message","role":"user","content":[{"type":"input_text","text":"x"}]}]}}`, Classified{}},
		{"malformed", `{"type":"response_item"`, Classified{}},
		// Codex's JSON reader refuses a line nested 128 deep, and skips it
		// (compat: TestClassifierAgreesWithCodex, probes "nested N deep").
		{"user nested as deep as Codex reads", nestedLine(userLine("user", "hi"), CodexMaxDepth), Classified{Kind: KindUserMessage, Text: "hi"}},
		{"user nested deeper than Codex reads", nestedLine(userLine("user", "hi"), CodexMaxDepth+1), Classified{}},
		{"rollback nested deeper than Codex reads", nestedLine(`{"type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":3}}`, CodexMaxDepth+1), Classified{}},
		{"rename nested deeper than Codex reads", nestedLine(`{"type":"event_msg","payload":{"type":"thread_name_updated","thread_name":"x"}}`, CodexMaxDepth+1), Classified{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A hand-built Line is scanned on demand.
			got := Classify(&Line{Raw: []byte(tt.line)})
			if got != tt.want {
				t.Fatalf("Classify = %+v, want %+v", got, tt.want)
			}
			if got := Classify(NewLine([]byte(tt.line), 0, 0)); got != tt.want {
				t.Fatalf("Classify(NewLine) = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// seedItem builds the lines of Codex's own truncation tests.
func seedItem(t *testing.T, name string) string {
	t.Helper()
	switch {
	case name == "meta":
		return `{"timestamp":"2026-05-01T09:00:00.000Z","type":"session_meta","payload":{"id":"0196a000-0000-7000-8000-0000000000aa","timestamp":"2026-05-01T09:00:00.000Z","cwd":"/","originator":"test","cli_version":"0","source":"cli","model_provider":null,"base_instructions":null}}`
	case name == "agents":
		return userLine("user", "# AGENTS.md instructions for /w\n\n<INSTRUCTIONS>\nx\n</INSTRUCTIONS>")
	case name == "env":
		return userLine("user", "<environment_context>\n  <cwd>/w</cwd>\n</environment_context>")
	case strings.HasPrefix(name, "u"):
		return userLine("user", name)
	case strings.HasPrefix(name, "a"):
		return `{"timestamp":"2026-05-01T09:00:00.000Z","type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"` + name + `"}]}}`
	case name == "reasoning":
		return `{"timestamp":"2026-05-01T09:00:00.000Z","type":"response_item","payload":{"type":"reasoning","summary":[],"content":null,"encrypted_content":"x"}}`
	case name == "call":
		return `{"timestamp":"2026-05-01T09:00:00.000Z","type":"response_item","payload":{"type":"function_call","name":"shell","arguments":"{}","call_id":"c1"}}`
	case strings.HasPrefix(name, "rollback"):
		return `{"timestamp":"2026-05-01T09:00:00.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":` + strings.TrimPrefix(name, "rollback") + `}}`
	}
	t.Fatalf("unknown seed item %q", name)
	return ""
}

func TestForkCutSeeds(t *testing.T) {
	tests := []struct {
		name      string
		items     []string
		before    int
		wantTexts []string // counted user messages of the whole file
		wantKept  []string // items of the prefix [0, offset of message before)
	}{
		{
			name:      "cut before 1",
			items:     []string{"meta", "u1", "a1", "a2", "u2", "a3", "reasoning", "call", "a4"},
			before:    1,
			wantTexts: []string{"u1", "u2"},
			wantKept:  []string{"meta", "u1", "a1", "a2"},
		},
		{
			name:      "setup not counted",
			items:     []string{"meta", "agents", "env", "u1", "a1", "a2", "u2", "a3"},
			before:    1,
			wantTexts: []string{"u1", "u2"},
			wantKept:  []string{"meta", "agents", "env", "u1", "a1", "a2"},
		},
		{
			name:      "cut before 0 keeps setup",
			items:     []string{"meta", "agents", "env", "u1", "a1"},
			before:    0,
			wantTexts: []string{"u1"},
			wantKept:  []string{"meta", "agents", "env"},
		},
		{
			name:      "rollback",
			items:     []string{"meta", "u1", "a1", "u2", "a2", "rollback1", "u3", "a3", "u4", "a4"},
			before:    2,
			wantTexts: []string{"u1", "u3", "u4"},
			wantKept:  []string{"meta", "u1", "a1", "u2", "a2", "rollback1", "u3", "a3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var file bytes.Buffer
			for _, it := range tt.items {
				file.WriteString(seedItem(t, it) + "\n")
			}
			msgs, err := CountUserMessages(bytes.NewReader(file.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			for _, m := range msgs {
				texts = append(texts, m.Text)
			}
			if !slices.Equal(texts, tt.wantTexts) {
				t.Fatalf("counted %q, want %q", texts, tt.wantTexts)
			}
			prefix := file.Bytes()[:msgs[tt.before].Offset]
			var want bytes.Buffer
			for _, it := range tt.wantKept {
				want.WriteString(seedItem(t, it) + "\n")
			}
			if !bytes.Equal(prefix, want.Bytes()) {
				t.Fatalf("prefix before message %d:\n%s\nwant:\n%s", tt.before, prefix, want.Bytes())
			}
		})
	}
}

func TestCounterRollbackClamps(t *testing.T) {
	var c Counter
	c.Observe(NewLine([]byte(userLine("user", "u1")), 0, 0))
	c.Observe(NewLine([]byte(`{"type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":4294967295}}`), 100, 1))
	if got := c.Messages(); len(got) != 0 {
		t.Fatalf("after rollback of all: %d messages, want 0", len(got))
	}
	c.Observe(NewLine([]byte(userLine("user", "u2")), 200, 2))
	got := c.Messages()
	if len(got) != 1 || got[0].Ordinal != 0 || got[0].Offset != 200 || got[0].Line != 2 || got[0].Text != "u2" {
		t.Fatalf("messages = %+v, want u2 as ordinal 0 at offset 200 line 2", got)
	}
}

func TestCodexFixtures(t *testing.T) {
	dir := fixtures.CodexHome(t)
	type msg struct {
		offset, line int64
		text         string
	}
	tests := []struct {
		path     string
		size     int64
		id       string
		forkedOf string
		messages []msg
	}{
		{
			path: "sessions/2026/04/20/rollout-2026-04-20T10-15-30-019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c.jsonl",
			size: 10198, id: "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c",
			messages: []msg{{1600, 5, "Add a --verbose flag to the CLI"}, {7158, 20, "Also document it in README.md"}},
		},
		{
			path: "sessions/2026/04/20/rollout-2026-04-20T10-34-12-019dab60-0a1b-72c3-8d4e-5f6a7b8c9d0e.jsonl",
			size: 7703, id: "019dab60-0a1b-72c3-8d4e-5f6a7b8c9d0e", forkedOf: "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c",
			messages: []msg{{2145, 6, "Add a --verbose flag to the CLI"}},
		},
		{
			path: "sessions/2026/04/20/rollout-2026-04-20T11-00-00-019dab70-1c2d-7e3f-8a4b-9c0d1e2f3a4b.jsonl",
			size: 6481, id: "019dab70-1c2d-7e3f-8a4b-9c0d1e2f3a4b",
			messages: []msg{{913, 3, "What does main.go do?"}, {4801, 18, "Instead, list the vendor dir"}},
		},
		{
			path: "sessions/2026/04/20/rollout-2026-04-20T12-00-00-019dab80-5e6f-7a8b-9c0d-1e2f3a4b5c6d.jsonl",
			size: 5606, id: "019dab80-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
			messages: []msg{{587, 2, "Summarize the repo layout"}, {3959, 13, "Now refactor internal/ into pkg/"}},
		},
		{
			path: "archived_sessions/rollout-2025-01-05T12-00-00-67e55044-10b1-426f-9247-bb680e5fe0c8.jsonl",
			size: 577, id: "67e55044-10b1-426f-9247-bb680e5fe0c8",
			messages: []msg{{276, 1, "Saved user message"}},
		},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			path := filepath.Join(dir, filepath.FromSlash(tt.path))
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() != tt.size {
				t.Errorf("size = %d, want %d", st.Size(), tt.size)
			}
			id, _, err := ParseFileName(filepath.Base(path))
			if err != nil || id != tt.id {
				t.Errorf("ParseFileName id = %q, %v; want %q", id, err, tt.id)
			}

			r := NewReader(f, 0, 0)
			var c Counter
			var first *SessionMeta
			for r.Next() {
				l := r.Line()
				if l.Err != nil {
					t.Errorf("line %d malformed: %v", l.Number, l.Err)
				}
				if c.Observe(l).Kind == KindSessionMeta && first == nil {
					m, err := ParseSessionMeta(l.Raw)
					if err != nil {
						t.Fatalf("first meta: %v", err)
					}
					first = &m
				}
			}
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			if end, _ := r.End(); end != tt.size {
				t.Errorf("End = %d, want %d", end, tt.size)
			}
			if first == nil {
				t.Fatal("no session_meta line")
			}
			if first.ID != tt.id || first.ForkedFromID != tt.forkedOf {
				t.Errorf("meta id = %q forked from %q; want %q, %q", first.ID, first.ForkedFromID, tt.id, tt.forkedOf)
			}
			got := c.Messages()
			if len(got) != len(tt.messages) {
				t.Fatalf("counted %d user messages (%+v), want %d", len(got), got, len(tt.messages))
			}
			for i, want := range tt.messages {
				m := got[i]
				if m.Ordinal != i || m.Offset != want.offset || m.Line != want.line || m.Text != want.text {
					t.Errorf("message %d = (%d, line %d, %q), want (%d, line %d, %q)", i, m.Offset, m.Line, m.Text, want.offset, want.line, want.text)
				}
			}
		})
	}

	t.Run("session_index", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(dir, SessionIndexFile))
		if err != nil {
			t.Fatal(err)
		}
		names, err := ReadNames(t.Context(), bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		e, ok := names["019dab80-5e6f-7a8b-9c0d-1e2f3a4b5c6d"]
		if len(names) != 1 || !ok || e.ThreadName != "repo layout" || e.UpdatedAt != "2026-04-20T12:06:00Z" {
			t.Fatalf("names = %+v, want only 019dab80 named \"repo layout\"", names)
		}
	})

	t.Run("fork prefix", func(t *testing.T) {
		// The fork's lines after its own meta are the parent's lines before
		// the parent's user message 1, apart from the rewritten timestamps.
		parent, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(tests[0].path)))
		if err != nil {
			t.Fatal(err)
		}
		fork, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(tests[1].path)))
		if err != nil {
			t.Fatal(err)
		}
		parentLines := strings.Count(string(parent[:tests[0].messages[1].offset]), "\n")
		forkLines := strings.Count(string(fork), "\n") - 1
		if parentLines != forkLines {
			t.Fatalf("fork holds %d parent lines, want %d", forkLines, parentLines)
		}
	})
}

func TestIsRollbackLine(t *testing.T) {
	tests := []struct {
		name, line string
		want       bool
	}{
		{"marker", `{"timestamp":"2026-01-01T00:00:00.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":1}}`, true},
		{"marker with an ordinal", `{"timestamp":"2026-01-01T00:00:00.000Z","ordinal":4,"type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":1}}`, true},
		{"a prompt naming it", `{"timestamp":"2026-01-01T00:00:00.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"thread_rolled_back"}]}}`, false},
		{"another event", `{"timestamp":"2026-01-01T00:00:00.000Z","type":"event_msg","payload":{"type":"task_started","turn_id":"thread_rolled_back"}}`, false},
		{"malformed", `{"type":"event_msg","payload":{"type":"thread_rolled_back"`, false},
	}
	for _, tt := range tests {
		if got := IsRollbackLine([]byte(tt.line)); got != tt.want {
			t.Errorf("%s: IsRollbackLine = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDecodePartAsEncodingJSON checks decodePart against json.Unmarshal
// into the struct it stands for, on the odd elements a client may send.
func TestDecodePartAsEncodingJSON(t *testing.T) {
	type reference struct {
		Type     string          `json:"type"`
		Text     string          `json:"text"`
		ImageURL json.RawMessage `json:"image_url"`
	}
	tests := []struct{ name, elem string }{
		{"plain", `{"type":"input_text","text":"hi"}`},
		{"null element", `null`},
		{"number element", `5`},
		{"string element", `"input_text"`},
		{"array element", `[]`},
		{"empty object", `{}`},
		{"folded names", `{"TYPE":"input_text","Text":"hi"}`},
		{"escaped names", `{"\u0074ype":"input_text","te\u0078t":"hi"}`},
		{"last one wins", `{"type":"input_image","type":"input_text","text":"a","text":"b"}`},
		{"null keeps the earlier", `{"type":"input_text","text":"a","text":null}`},
		{"number text", `{"type":"input_text","text":5}`},
		{"object type", `{"type":{},"text":"a"}`},
		{"escaped text", `{"type":"input_text","text":"a\nb\u00e9\ud83d\ude00"}`},
		{"invalid UTF-8 text", "{\"type\":\"input_text\",\"text\":\"a\xffb\"}"},
		{"lone surrogate", `{"type":"input_text","text":"\ud800"}`},
		{"image url", `{"type":"input_image","image_url":"data:x"}`},
		{"image url null", `{"type":"input_image","image_url":null}`},
		{"image url object", `{"type":"input_image","image_url":{"u":[1,2]}}`},
		{"other members", `{"x":[{"type":1}],"type":"output_text","y":{"text":2},"text":"t"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want reference
			wantErr := json.Unmarshal([]byte(tt.elem), &want)
			got, ok := decodePart([]byte(tt.elem))
			if ok != (wantErr == nil) {
				t.Fatalf("decodePart ok = %v, json.Unmarshal error = %v", ok, wantErr)
			}
			if !ok {
				return
			}
			if got.Type != want.Type || got.Text() != want.Text || string(got.ImageURL) != string(want.ImageURL) {
				t.Errorf("decodePart = %q, %q, %q; json.Unmarshal = %q, %q, %q",
					got.Type, got.Text(), got.ImageURL, want.Type, want.Text, want.ImageURL)
			}
		})
	}
}

// TestClassifyContentShapes: the content of a user message is walked part
// by part with the outcome encoding/json's decoding of the whole gave.
func TestClassifyContentShapes(t *testing.T) {
	line := func(content string) string {
		return `{"timestamp":"2026-01-01T00:00:00.000Z","type":"response_item","payload":{"type":"message","role":"user","content":` + content + `}}`
	}
	tests := []struct {
		name, line string
		want       Classified
	}{
		{"two texts", line(`[{"type":"input_text","text":"a"}, {"type":"input_text","text":"b"}]`), Classified{Kind: KindUserMessage, Text: "a\nb"}},
		{"spaces", line(` [ {"type":"input_text","text":"a"} , null ] `), Classified{}},
		{"empty", line(`[]`), Classified{Kind: KindUserMessage}},
		{"null", line(`null`), Classified{Kind: KindUserMessage}},
		{"a string", line(`"a"`), Classified{}},
		{"an object", line(`{}`), Classified{}},
		{"an image between", line(`[{"type":"input_text","text":"a"},{"type":"input_image","image_url":"u"},{"type":"input_text","text":"b"}]`), Classified{Kind: KindUserMessage, Text: "a\nb"}},
		{"an image without url", line(`[{"type":"input_text","text":"a"},{"type":"input_image"}]`), Classified{}},
		{"a number part", line(`[{"type":"input_text","text":"a"},1]`), Classified{}},
		{"context after text", line(`[{"type":"input_text","text":"a"},{"type":"input_text","text":"<environment_context>x</environment_context>"}]`), Classified{}},
		{"the last content wins", line(`[{"type":"input_text","text":"a"}],"content":[{"type":"input_text","text":"b"}]`), Classified{Kind: KindUserMessage, Text: "b"}},
		{"null replaces content", line(`[{"type":"input_text","text":"a"}],"content":null`), Classified{Kind: KindUserMessage}},
		{"a string content replaced", line(`"x","content":[{"type":"input_text","text":"a"}]`), Classified{}},
		{"a number part replaced", line(`[1],"content":[{"type":"input_text","text":"a"}]`), Classified{}},
		{"an image without url replaced", line(`[{"type":"input_image"}],"content":[{"type":"input_text","text":"a"}]`), Classified{Kind: KindUserMessage, Text: "a"}},
		{"content in two payloads", `{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"a"}]},"payload":{"type":"message","role":"user"}}`, Classified{Kind: KindUserMessage, Text: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Line{Raw: []byte(tt.line)}
			if got := Classify(&l); got != tt.want {
				t.Errorf("Classify = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestClassifyManyPartsMemory: a user message of a million one-letter
// parts is classified with memory in proportion to the line, where
// decoding its content as one slice took thirteen times the line.
func TestClassifyManyPartsMemory(t *testing.T) {
	const part = `{"type":"input_text","text":"a"}`
	raw := []byte(`{"timestamp":"2026-01-01T00:00:00.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[` + part)
	for range 1 << 20 {
		raw = append(raw, ","+part...)
	}
	raw = append(raw, "]}}"...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := Line{Raw: raw}
	c := Classify(&l)
	runtime.ReadMemStats(&after)
	if c.Kind != KindUserMessage || len(c.Text) != 2<<20+1 {
		t.Fatalf("Classify = %v with %d bytes of text, want a user message of %d", c.Kind, len(c.Text), 2<<20+1)
	}
	// The line's content copied once, and the text.
	allocated := after.TotalAlloc - before.TotalAlloc
	if limit := uint64(2 * len(raw)); allocated > limit {
		t.Errorf("Classify of a %d-byte line allocated %d bytes, want at most %d", len(raw), allocated, limit)
	}
}

// TestHasElementsAsEncodingJSON checks hasElements against the
// []json.RawMessage it stands for.
func TestHasElementsAsEncodingJSON(t *testing.T) {
	for _, value := range []string{`null`, `[]`, `[ ]`, "[\n]", `[null]`, `[1]`, `["a",{}]`, `"a"`, `{}`, `0`, `true`} {
		t.Run(value, func(t *testing.T) {
			var want struct {
				V []json.RawMessage `json:"v"`
			}
			var got struct {
				V hasElements `json:"v"`
			}
			line := `{"v":` + value + `}`
			wantErr := json.Unmarshal([]byte(line), &want)
			gotErr := json.Unmarshal([]byte(line), &got)
			if (gotErr == nil) != (wantErr == nil) || bool(got.V) != (len(want.V) > 0) {
				t.Errorf("hasElements = %v, %v; []json.RawMessage has %d, %v", got.V, gotErr, len(want.V), wantErr)
			}
		})
	}
}
