// Command mockresponses is a stand-in for the OpenAI Responses API, for the
// compat tests: it listens on a loopback port, writes a config.toml into
// -home that points a "mock" model provider at that port, runs the command
// after "--" (codex app-server) with the standard streams inherited, and
// answers every POST /v1/responses with one streamed assistant message
// (-answer). It exits with the command's exit code when the command ends.
// Run it inside `unshare -n` with the loopback interface up: Codex then
// reaches nothing but this server.
//
// A request that asks for a spawn is answered otherwise: when the newest
// user message of its input contains the marker "SPAWN:" and no
// function_call_output follows it, the answer is a call of Codex's
// sub-agent tool (spawn_agent in the multi_agent_v1 namespace) whose
// message is the text after the marker. The sub-agent's own request and
// the parent's request after the call's output get the assistant message.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	home := flag.String("home", "", "the CODEX_HOME to write config.toml into")
	answer := flag.String("answer", "mock answer", "the assistant message of every response")
	flag.Parse()
	if *home == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mockresponses -home DIR [-answer TEXT] -- command args...")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	config := fmt.Sprintf(`model = "gpt-5"
model_provider = "mock"

[model_providers.mock]
name = "mock"
base_url = "http://%s/v1"
wire_api = "responses"
env_key = "OPENAI_API_KEY"
request_max_retries = 0
stream_max_retries = 0
supports_websockets = false
`, ln.Addr())
	if err := os.WriteFile(filepath.Join(*home, "config.toml"), []byte(config), 0o644); err != nil {
		fatal(err)
	}
	go func() {
		err := http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { respond(w, r, *answer) }))
		if err != nil && !errors.Is(err, net.ErrClosed) {
			fmt.Fprintln(os.Stderr, "mockresponses:", err)
		}
	}()
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	_ = ln.Close()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	case err != nil:
		fatal(err)
	}
}

// spawnMarker in the newest user message asks for a spawn_agent call; the
// text after it is the sub-agent's task.
const spawnMarker = "SPAWN:"

// request is the part of a Responses API request body respond reads.
type request struct {
	Input []struct {
		Type    string `json:"type"`
		Role    string `json:"role"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"input"`
}

// spawnTask returns the task after spawnMarker in the newest user message
// of req's input, "" when that message has no marker or a
// function_call_output follows it (the call was made already).
func spawnTask(req request) string {
	task := ""
	for _, in := range req.Input {
		switch {
		case in.Type == "message" && in.Role == "user":
			task = ""
			for _, c := range in.Content {
				if _, after, ok := strings.Cut(c.Text, spawnMarker); ok && c.Type == "input_text" {
					task = strings.TrimSpace(after)
				}
			}
		case in.Type == "function_call_output":
			task = ""
		}
	}
	return task
}

// respond streams one completed response holding one assistant message,
// or the spawn_agent call that spawnTask asks for.
func respond(w http.ResponseWriter, r *http.Request, answer string) {
	if r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	var req request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	item := map[string]any{
		"type": "message", "role": "assistant", "id": "msg_mock", "status": "completed",
		"content": []any{map[string]any{"type": "output_text", "text": answer, "annotations": []any{}}},
	}
	if task := spawnTask(req); task != "" {
		// Codex 0.169 offers spawn_agent inside the namespace tool
		// multi_agent_v1 and answers "unsupported call" to a call that
		// does not name the namespace.
		args, _ := json.Marshal(map[string]string{"message": task})
		item = map[string]any{
			"type": "function_call", "id": "fc_mock", "status": "completed", "call_id": "call_spawn",
			"namespace": "multi_agent_v1", "name": "spawn_agent", "arguments": string(args),
		}
	}
	usage := map[string]any{
		"input_tokens": 10, "output_tokens": 2, "total_tokens": 12,
		"input_tokens_details": map[string]any{"cached_tokens": 0}, "output_tokens_details": map[string]any{"reasoning_tokens": 0},
	}
	events := []map[string]any{
		{"type": "response.created", "response": map[string]any{"id": "resp_mock"}},
		{"type": "response.output_item.done", "output_index": 0, "item": item},
		{"type": "response.completed", "response": map[string]any{"id": "resp_mock", "usage": usage}},
	}
	for _, ev := range events {
		data, _ := json.Marshal(ev)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev["type"], data)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mockresponses:", err)
	os.Exit(1)
}
