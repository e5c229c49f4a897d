package rollout

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// benchFile is the generated rollout shared by the reader benchmarks.
var benchFile struct {
	once sync.Once
	dir  string
	path string
	size int64
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchFile.dir != "" {
		os.RemoveAll(benchFile.dir)
	}
	os.Exit(code)
}

// benchSize is 64 MiB, or 6.4 MiB times BENCH_SCALE when that is set.
func benchSize() int64 {
	if s, err := strconv.Atoi(os.Getenv("BENCH_SCALE")); err == nil && s > 0 {
		return int64(s) * (64 << 20) / 10
	}
	return 64 << 20
}

// generatedRollout returns the path and size of a rollout of realistic lines
// (turns of messages, tool calls, token counts, and now and then a 1 MiB
// base64 image), written once into a temporary directory.
func generatedRollout(b *testing.B) (string, int64) {
	b.Helper()
	benchFile.once.Do(func() {
		benchFile.dir, benchFile.err = os.MkdirTemp("", "rollout-bench-")
		if benchFile.err != nil {
			return
		}
		benchFile.path = filepath.Join(benchFile.dir, "bench.jsonl")
		benchFile.size, benchFile.err = writeBenchRollout(benchFile.path, benchSize())
	})
	if benchFile.err != nil {
		b.Fatal(benchFile.err)
	}
	return benchFile.path, benchFile.size
}

func writeBenchRollout(path string, target int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	image := make([]byte, 768<<10)
	for i := range image {
		image[i] = byte(rng.Uint32())
	}
	imageB64 := base64.StdEncoding.EncodeToString(image) // ~1 MiB
	var size int64
	emit := func(typ string, payload any) error {
		p, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		line, err := EncodeItem(Item{Timestamp: "2026-04-20T10:15:36.414Z", Type: typ, Payload: p}, fixedNow)
		if err != nil {
			return err
		}
		size += int64(len(line))
		_, err = w.Write(line)
		return err
	}
	words := []string{"the", "flag", "parser", "returns", "an", "error", "when", "config", "\"quoted\"", "path\\to", "\tindent", "naïve", "→", "😀"}
	text := func(n int) string {
		var sb bytes.Buffer
		for range n {
			sb.WriteString(words[rng.IntN(len(words))])
			sb.WriteByte(' ')
		}
		return sb.String()
	}
	type part struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	for turn := 0; size < target; turn++ {
		steps := []struct {
			typ     string
			payload any
		}{
			{TypeEventMsg, map[string]any{"type": "task_started", "turn_id": fmt.Sprintf("turn-%d", turn), "model_context_window": 258400}},
			{TypeResponseItem, map[string]any{"type": "message", "role": "user", "content": []part{{"input_text", text(30)}}}},
			{TypeEventMsg, map[string]any{"type": "user_message", "message": text(30), "images": []string{}}},
			{TypeTurnContext, map[string]any{"turn_id": fmt.Sprintf("turn-%d", turn), "cwd": "/home/dev/project", "model": "gpt-5.3-codex",
				"sandbox_policy": map[string]any{"type": "workspace-write", "network_access": false}, "developer_instructions": text(80)}},
			{TypeResponseItem, map[string]any{"type": "reasoning", "summary": []part{{"summary_text", text(20)}}, "encrypted_content": imageB64[:2048]}},
			{TypeResponseItem, map[string]any{"type": "function_call", "name": "exec_command", "arguments": `{"cmd":"rg -n \"flag\" cmd"}`, "call_id": "call_1"}},
			{TypeResponseItem, map[string]any{"type": "function_call_output", "call_id": "call_1", "output": text(400)}},
			{TypeEventMsg, map[string]any{"type": "token_count", "info": map[string]any{"total_token_usage": map[string]int{"input_tokens": 17203, "cached_input_tokens": 3456, "output_tokens": 358}}}},
			{TypeEventMsg, map[string]any{"type": "agent_message", "message": text(60)}},
			{TypeResponseItem, map[string]any{"type": "message", "role": "assistant", "content": []part{{"output_text", text(60)}}}},
		}
		for _, s := range steps {
			if err := emit(s.typ, s.payload); err != nil {
				return 0, err
			}
		}
		if turn%200 == 199 {
			if err := emit(TypeResponseItem, map[string]any{"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": imageB64}); err != nil {
				return 0, err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return size, f.Close()
}

// BenchmarkReader reads the generated rollout with the streaming Reader
// (validating every line with the scanner), alone and with the Counter.
func BenchmarkReader(b *testing.B) {
	path, size := generatedRollout(b)
	for _, count := range []bool{false, true} {
		b.Run(fmt.Sprintf("count=%v", count), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				r := NewReader(f, 0, 0)
				var c Counter
				lines := 0
				for r.Next() {
					if count {
						c.Observe(r.Line())
					} else if r.Line().Err != nil {
						b.Fatal(r.Line().Err)
					}
					lines++
				}
				if err := r.Err(); err != nil {
					b.Fatal(err)
				}
				f.Close()
				if lines == 0 || (count && len(c.Messages()) == 0) {
					b.Fatal("nothing read")
				}
			}
		})
	}
}

// BenchmarkReaderUnmarshalBaseline reads the same file the naive way: split
// lines with bufio and json.Unmarshal each one to learn its types.
func BenchmarkReaderUnmarshalBaseline(b *testing.B) {
	path, size := generatedRollout(b)
	b.SetBytes(size)
	b.ReportAllocs()
	type envelope struct {
		Type    string `json:"type"`
		Payload struct {
			Type string `json:"type"`
			Role string `json:"role"`
		} `json:"payload"`
	}
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReaderSize(f, readerBufferSize)
		lines := 0
		for {
			line, err := br.ReadBytes('\n')
			if len(line) == 0 && err != nil {
				break
			}
			var env envelope
			if err := json.Unmarshal(line, &env); err != nil {
				b.Fatal(err)
			}
			lines++
		}
		f.Close()
		if lines == 0 {
			b.Fatal("nothing read")
		}
	}
}
