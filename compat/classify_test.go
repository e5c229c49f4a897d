//go:build compat

package compat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// classifierProbes are user messages whose counting spool and Codex must
// agree on: context markers and their near misses (case, attributes,
// mismatched ends), legacy warnings, and lines Codex cannot decode.
func classifierProbes() map[string]string {
	text := func(texts ...string) string {
		parts := make([]map[string]string, 0, len(texts))
		for _, t := range texts {
			parts = append(parts, map[string]string{"type": "input_text", "text": t})
		}
		b, _ := json.Marshal(map[string]any{"type": "message", "role": "user", "content": parts})
		return `{"timestamp":"2026-04-21T10:00:01.000Z","type":"response_item","payload":` + string(b) + `}`
	}
	nested := func(depth int) string {
		return `{"timestamp":"2026-04-21T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"typed"}],"x":` +
			strings.Repeat("[", depth-2) + strings.Repeat("]", depth-2) + `}}`
	}
	probes := map[string]string{
		"no timestamp":        `{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"typed"}]}}`,
		"unknown phase":       `{"timestamp":"2026-04-21T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","phase":"draft","content":[{"type":"input_text","text":"typed"}]}}`,
		"known phase":         `{"timestamp":"2026-04-21T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","phase":"commentary","content":[{"type":"input_text","text":"typed"}]}}`,
		"null image url":      `{"timestamp":"2026-04-21T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"typed"},{"type":"input_image","image_url":null}]}}`,
		"image with url":      `{"timestamp":"2026-04-21T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"typed"},{"type":"input_image","image_url":"data:image/png;base64,AA=="}]}}`,
		"input_file part":     `{"timestamp":"2026-04-21T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"typed"},{"type":"input_file","file_id":"f"}]}}`,
		"context second part": text("typed", "<environment_context>x</environment_context>"),
		// Codex's JSON reader refuses a line nested deeper than 127 levels
		// (rollout.CodexMaxDepth), the line's own object being the first.
		"nested 127 deep":         nested(127),
		"nested 128 deep":         nested(128),
		"content nested 127 deep": `{"timestamp":"2026-04-21T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"typed","x":` + strings.Repeat("[", 123) + strings.Repeat("]", 123) + `}]}}`,
		"content nested 128 deep": `{"timestamp":"2026-04-21T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"typed","x":` + strings.Repeat("[", 124) + strings.Repeat("]", 124) + `}]}}`,
		"duplicate type":          `{"timestamp":"2026-04-21T10:00:01.000Z","type":"event_msg","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"typed"}]}}`,
		"duplicate role":          `{"timestamp":"2026-04-21T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"assistant","role":"user","content":[{"type":"input_text","text":"typed"}]}}`,
	}
	for _, t := range []string{
		"typed",
		"<user_instructions>x</user_instructions>",
		"# AGENTS.md instructions for /x\n\n<INSTRUCTIONS>\nx\n</INSTRUCTIONS>",
		"# AGENTS.md instructions\n<INSTRUCTIONS>x</INSTRUCTIONS>",
		"# agents.md INSTRUCTIONS for /x <instructions>x</instructions>",
		"<environment_context>x</environment_context>",
		"  <environment_context>x</environment_context>\n",
		"<ENVIRONMENT_CONTEXT>x</ENVIRONMENT_CONTEXT>",
		"<environment_context> but this is just text the user typed",
		"<skill>x</skill>", "<SKILL>x</SKILL>", "  \n<SKILL>\n<name>pdf</name>\n</Skill>\n ",
		"<user_shell_command>x</user_shell_command>", "<USER_SHELL_COMMAND>x</USER_SHELL_COMMAND>",
		"<turn_aborted>x</turn_aborted>", "<TURN_ABORTED>x</TURN_ABORTED>",
		"<subagent_notification>x</subagent_notification>", "<SUBAGENT_NOTIFICATION>x</subagent_notification>",
		"<recommended_plugins>x</recommended_plugins>", "<RECOMMENDED_PLUGINS>x</recommended_plugins>",
		"<goal_context>x</goal_context>", "<GOAL_CONTEXT>x</GOAL_CONTEXT>",
		`<codex_internal_context source="memory_1">x</codex_internal_context>`,
		`<codex_internal_context source="Memory">x</codex_internal_context>`,
		`<codex_internal_context>x</codex_internal_context>`,
		`<CODEX_INTERNAL_CONTEXT source="goal">x</CODEX_INTERNAL_CONTEXT>`,
		"<external_jira>x</external_jira>", "<external_>x</external_>", "<external_a b>x</external_a b>",
		"<external_a>x</external_b>", "<EXTERNAL_jira>x</EXTERNAL_jira>",
		"Warning: The maximum number of unified exec processes you can keep open is 5",
		"Warning: apply_patch was requested via exec_command. Use the apply_patch tool instead of exec_command.",
		"Warning: Your account was flagged for potentially high-risk cyber activity x",
		`<hook_prompt hook_run_id="1">x</hook_prompt>`, `<hook_prompt>x</hook_prompt>`,
		`<hook_prompt hook_run_id="">x</hook_prompt>`, `<hook_prompt hook_run_id="1">a < b</hook_prompt>`,
		`<HOOK_PROMPT hook_run_id="1">x</HOOK_PROMPT>`,
		`<hook_prompt hook_run_id=" ">x</hook_prompt>`, `<hook_prompt HOOK_RUN_ID="1">x</hook_prompt>`,
		`<hook_prompt hook_run_id="1"><b>x</b></hook_prompt>`, `<hook_prompt hook_run_id="1" extra="y">x</hook_prompt>`,
		`<hook_prompt hook_run_id="1">x</hook_prompt><hook_prompt hook_run_id="2">y</hook_prompt>`,
		`<hook_prompt hook_run_id="1">x</hook_prompt>tail</hook_prompt>`,
		`<hook_prompt hook_run_id="1">x</hook_prompt> and <b>y</b></hook_prompt>`,
		`<hook_prompt hook_run_id="1">x <!-- note --> y</hook_prompt>`,
		`<hook_prompt hook_run_id="1"><![CDATA[a < b]]></hook_prompt>`,
		`<hook_prompt hook_run_id="1">a &amp; b</hook_prompt>`,
		"say <skill>x</skill>", "<skill>x</skill> thanks", "<skill></skill>", "<external_a>x",
		"<model_switch>x</model_switch>", "<permissions instructions>x</permissions instructions>",
	} {
		probes[fmt.Sprintf("%q", t)] = text(t)
	}
	return probes
}

// TestClassifierAgreesWithCodex uses Codex's own rollback as the oracle of
// what a user message is. Each probe thread holds one complete turn
// ("first"), then the probe message, then thread_rolled_back{num_turns:1};
// `codex migrate-rollouts --apply` applies the rollback physically. If
// Codex counts the probe as a user message, the rollback removes the probe
// and "first" stays; if not, it removes the turn of "first". spool's
// Classify must count exactly the probes Codex counts.
func TestClassifierAgreesWithCodex(t *testing.T) {
	home := newHome(t)
	probes := classifierProbes()
	paths := make(map[string]string, len(probes))
	i := 0
	for name, probe := range probes {
		i++
		id := fmt.Sprintf("019dab99-0000-7000-8000-%012d", i)
		created := time.Date(2026, 4, 21, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
		ts := rollout.FormatTimestamp(created)
		meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
			ID: id, Timestamp: ts, Cwd: "/tmp", Originator: "spool", CLIVersion: "0.125.0", Source: "cli",
		}})
		if err != nil {
			t.Fatal(err)
		}
		turn, _, err := rollout.RenderTurn(rollout.HistoryLegacy, 0, rollout.TurnSpec{
			ThreadID: id, TurnID: "turn-1", UserText: "first", AgentText: "answer",
			Started: created, Completed: created.Add(time.Second),
		})
		if err != nil {
			t.Fatal(err)
		}
		data := append(meta, turn...)
		data = append(data, probe+"\n"...)
		data = append(data, `{"timestamp":"2026-04-21T10:00:02.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":1}}`+"\n"...)
		rel, _ := rollout.SessionPath(rollout.FileName(created, id))
		paths[name] = filepath.Join(home, filepath.FromSlash(rel))
		writeFile(t, paths[name], data)
	}

	cmd := exec.CommandContext(t.Context(), "unshare", "-n", codexBinary(t), "migrate-rollouts", "--apply", "--json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "CODEX_HOME=" + home, "OPENAI_API_KEY=sk-dummy"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("migrate-rollouts: %v\n%s", err, stderr.String())
	}
	var report struct {
		Outcomes []struct {
			Status string `json:"status"`
		} `json:"outcomes"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("migrate-rollouts report: %v\n%s", err, out)
	}
	t.Logf("%d probes migrated", len(report.Outcomes))
	if len(report.Outcomes) != len(probes) {
		t.Fatalf("migrate-rollouts reported %d threads, want %d", len(report.Outcomes), len(probes))
	}
	for name, probe := range probes {
		data, err := os.ReadFile(paths[name])
		if err != nil {
			t.Fatal(err)
		}
		codexCounts := bytes.Contains(data, []byte(`"first"`))
		spoolCounts := rollout.Classify(rollout.NewLine([]byte(probe), 0, 0)).Kind == rollout.KindUserMessage
		if codexCounts != spoolCounts {
			t.Errorf("probe %s: Codex counts it as a user message: %v, spool: %v", name, codexCounts, spoolCounts)
		}
	}
}
