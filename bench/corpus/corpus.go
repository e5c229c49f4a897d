// Package corpus generates Codex-format rollout files for benchmarks and
// tests, laid out as a Codex home
// (<root>/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl). Each turn is a
// complete Codex 0.169 turn as rollout.RenderTurn writes it (task_started,
// turn_context, the user message and its echo, the answer's echo, the
// answer, task_complete), with reasoning, a tool call and its output (a
// string), an optional large base64 image line and token_count inside it.
// Threads are legacy, or paginated (history_mode "paginated", every line
// numbered by a top-level ordinal, item_completed echoes) as Codex 0.169
// writes new threads. Codex 0.169 lists such threads and shows their turns.
//
// Output is deterministic: the same Options and thread index always give the
// same bytes, so a corpus can be cached by its parameters. Payload members
// are sorted and nothing is HTML-escaped.
package corpus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// DefaultStart is the creation time of thread 0 when Options.Start is zero.
var DefaultStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Options describe the threads of a corpus. The zero value gives small
// threads of one turn without images.
type Options struct {
	// Seed selects the content and the ids.
	Seed uint64
	// Start is the creation time of thread 0; thread i is created
	// i*Spacing later. Zero means DefaultStart.
	Start time.Time
	// Spacing is the time between thread creations; zero means 37 seconds.
	Spacing time.Duration
	// Turns is the minimum number of turns per thread (at least 1).
	Turns int
	// TargetBytes, when positive, adds turns until the file holds at least
	// this many bytes.
	TargetBytes int64
	// TextBytes is the approximate size of the free text of one turn
	// (prompt, reasoning, tool output, answer together); zero means 2048.
	TextBytes int
	// ImageEvery, when positive, puts a base64 image line into every
	// ImageEvery-th turn.
	ImageEvery int
	// ImageBytes is the size of each image before base64; zero means 256 KiB.
	ImageBytes int
	// Paginated writes threads in Codex's paginated history mode.
	Paginated bool
}

// Thread describes one generated rollout.
type Thread struct {
	ID           string
	Path         string // slash-separated, relative to the root
	Created      time.Time
	Size         int64
	Lines        int64
	UserMessages int
}

func (o Options) normalized() Options {
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	if o.Spacing <= 0 {
		o.Spacing = 37 * time.Second
	}
	o.Turns = max(o.Turns, 1)
	if o.TextBytes <= 0 {
		o.TextBytes = 2048
	}
	if o.ImageBytes <= 0 {
		o.ImageBytes = 256 << 10
	}
	return o
}

// rng returns the random source of thread i.
func (o Options) rng(i int) *rand.Rand {
	return rand.New(rand.NewPCG(o.Seed, uint64(i)*0x9e3779b97f4a7c15+1))
}

// ID returns the id of thread i: a UUID shaped like version 7 (its first 48
// bits are the creation time in Unix milliseconds), the rest drawn from the
// seed.
func (o Options) ID(i int) string {
	o = o.normalized()
	return newID(o.created(i), o.rng(i))
}

func (o Options) created(i int) time.Time { return o.Start.Add(time.Duration(i) * o.Spacing) }

func newID(t time.Time, r *rand.Rand) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(b[8:], r.Uint64())
	binary.BigEndian.PutUint16(b[6:], uint16(r.Uint32()))
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for j, c := range b {
		if j == 4 || j == 6 || j == 8 || j == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}

// Path returns the rollout path of thread i relative to a root.
func (o Options) Path(i int) string {
	o = o.normalized()
	p, err := rollout.SessionPath(rollout.FileName(o.created(i), o.ID(i)))
	if err != nil {
		panic(fmt.Sprintf("corpus: generated an invalid file name: %v", err)) // ids are canonical by construction
	}
	return p
}

// envelope is a rollout line with Codex's member order.
type envelope struct {
	Timestamp string `json:"timestamp"`
	Type      string `json:"type"`
	Payload   any    `json:"payload"`
}

// obj is a JSON object; encoding/json writes its members sorted by name.
type obj = map[string]any

// lineWriter writes lines, numbering them in a paginated thread, and counts
// bytes and lines.
type lineWriter struct {
	w         *bufio.Writer
	enc       *json.Encoder
	buf       bytes.Buffer // the line enc just encoded
	clock     time.Time
	r         *rand.Rand
	paginated bool
	size      int64
	lines     int64 // also the next ordinal
	err       error
}

// tick advances the clock by a fraction of a second to a few seconds and
// returns it.
func (lw *lineWriter) tick() time.Time {
	lw.clock = lw.clock.Add(time.Duration(200+lw.r.IntN(4000)) * time.Millisecond)
	return lw.clock
}

// line encodes one line at the next tick of the clock.
func (lw *lineWriter) line(typ string, payload any) {
	if lw.err != nil {
		return
	}
	lw.buf.Reset()
	if lw.err = lw.enc.Encode(envelope{Timestamp: rollout.FormatTimestamp(lw.tick()), Type: typ, Payload: payload}); lw.err == nil {
		lw.raw(lw.buf.Bytes())
	}
}

// raw writes one line (newline included, without an ordinal).
func (lw *lineWriter) raw(line []byte) {
	if lw.err != nil {
		return
	}
	if lw.paginated {
		if line, lw.err = rollout.WithOrdinal(line, lw.lines); lw.err != nil {
			return
		}
	}
	var n int
	n, lw.err = lw.w.Write(line)
	lw.size += int64(n)
	lw.lines++
}

// WriteThread writes thread i of o to w and describes it (Path is set as
// by Options.Path).
func WriteThread(w io.Writer, o Options, i int) (Thread, error) {
	o = o.normalized()
	r := o.rng(i)
	created := o.created(i)
	id := newID(created, r)
	lw := &lineWriter{w: bufio.NewWriterSize(w, 256<<10), clock: created, r: r, paginated: o.Paginated}
	enc := json.NewEncoder(&lw.buf)
	enc.SetEscapeHTML(false)
	lw.enc = enc
	cwd := fmt.Sprintf("/home/dev/src/project%02d", r.IntN(64))

	meta := obj{
		"id":                id,
		"timestamp":         rollout.FormatTimestamp(created),
		"cwd":               cwd,
		"originator":        "codex_cli_rs",
		"cli_version":       "0.120.0",
		"source":            "cli",
		"model_provider":    "openai",
		"base_instructions": obj{"text": "You are a coding agent. " + words(r, 600)},
		"git":               obj{"commit_hash": fmt.Sprintf("%040x", r.Uint64()), "branch": "main", "repository_url": "https://example.com/dev/project.git"},
	}
	if o.Paginated {
		meta["history_mode"] = string(rollout.HistoryPaginated)
	}
	lw.line(rollout.TypeSessionMeta, meta)
	lw.line(rollout.TypeResponseItem, obj{
		"type": "message", "role": "user",
		"content": []any{obj{"type": "input_text", "text": "<environment_context>\n  <cwd>" + cwd + "</cwd>\n  <shell>bash</shell>\n</environment_context>"}},
	})

	users := writeTurns(lw, o, r, id, cwd)
	if lw.err == nil {
		lw.err = lw.w.Flush()
	}
	if lw.err != nil {
		return Thread{}, fmt.Errorf("write thread %d: %w", i, lw.err)
	}
	return Thread{ID: id, Path: o.Path(i), Created: created, Size: lw.size, Lines: lw.lines, UserMessages: users}, nil
}

// writeTurns writes o.Turns turns, and more while the lines written stay
// under o.TargetBytes, and returns how many it wrote.
func writeTurns(lw *lineWriter, o Options, r *rand.Rand, threadID, cwd string) int {
	turns := 0
	for turn := 0; turn < o.Turns || (o.TargetBytes > 0 && lw.size+int64(lw.w.Buffered()) < o.TargetBytes); turn++ {
		if lw.err != nil {
			break
		}
		writeTurn(lw, o, r, threadID, cwd, turn)
		turns++
	}
	return turns
}

// TurnLines returns turns drawn for thread i of o as WriteThread draws
// them (o.Turns, then more up to o.TargetBytes), written for the thread
// threadID: the lines a writer appends to that thread, each ending in a
// newline, without ordinals (manager.AppendLines numbers them in a
// paginated thread), in o's history mode. A benchmark makes a fork's own
// history of them.
func TurnLines(o Options, i int, threadID string) ([][]byte, error) {
	o = o.normalized()
	r := o.rng(i)
	var buf bytes.Buffer
	lw := &lineWriter{w: bufio.NewWriterSize(&buf, 256<<10), clock: o.created(i), r: r}
	enc := json.NewEncoder(&lw.buf)
	enc.SetEscapeHTML(false)
	lw.enc = enc
	writeTurns(lw, o, r, threadID, fmt.Sprintf("/home/dev/src/project%02d", r.IntN(64)))
	if lw.err == nil {
		lw.err = lw.w.Flush()
	}
	if lw.err != nil {
		return nil, fmt.Errorf("turns of thread %d: %w", i, lw.err)
	}
	lines := bytes.SplitAfter(buf.Bytes(), []byte{'\n'})
	return lines[:len(lines)-1], nil // the empty rest after the last newline
}

// writeTurn writes one complete turn: rollout.RenderTurn's lines with
// reasoning, a tool call, its output (and an image) between the user
// message's echo and the answer's, and token_count before task_complete.
func writeTurn(lw *lineWriter, o Options, r *rand.Rand, threadID, cwd string, turn int) {
	text := o.TextBytes
	mode := rollout.HistoryLegacy
	if o.Paginated {
		mode = rollout.HistoryPaginated
	}
	started := lw.tick()
	spec := rollout.TurnSpec{
		ThreadID: threadID, TurnID: newID(started, r),
		UserText: fmt.Sprintf("Step %d: ", turn) + words(r, text/8),
		Cwd:      cwd, Model: "gpt-5-codex", Started: started,
	}
	if o.Paginated {
		spec.UserItemID, spec.AgentItemID = newID(started, r), newID(started, r)
	}
	callID := fmt.Sprintf("call_%016x", r.Uint64())
	reasoning := words(r, text/8)
	command := "rg -n " + words(r, 16)
	output := words(r, text/2)
	spec.AgentText = words(r, text/4)
	var img []byte
	if o.ImageEvery > 0 && turn%o.ImageEvery == o.ImageEvery-1 {
		img = make([]byte, o.ImageBytes)
		fillRandom(r, img)
	}
	// The lines between the echoes take ticks of the clock; the answer
	// comes after them.
	spec.Completed = started.Add(time.Duration(5+r.IntN(10)) * 4200 * time.Millisecond)
	rendered, _, err := rollout.RenderTurn(mode, 0, spec)
	if err != nil {
		lw.err = err
		return
	}
	lines := bytes.SplitAfter(rendered, []byte{'\n'})
	lines = lines[:len(lines)-1] // the empty rest after the last newline
	if o.Paginated {
		for i := range lines {
			lines[i] = bytes.Replace(lines[i], []byte(fmt.Sprintf(`,"ordinal":%d,`, i)), []byte(","), 1)
		}
	}
	if len(lines) != 7 {
		lw.err = fmt.Errorf("rollout.RenderTurn wrote %d lines, want 7", len(lines))
		return
	}
	for _, l := range lines[:4] { // task_started, turn_context, the user message, its echo
		lw.raw(l)
	}
	secret := make([]byte, 96+r.IntN(256))
	fillRandom(r, secret)
	lw.line(rollout.TypeResponseItem, obj{
		"type":              "reasoning",
		"summary":           []any{obj{"type": "summary_text", "text": reasoning}},
		"encrypted_content": base64.StdEncoding.EncodeToString(secret),
	})
	args, _ := json.Marshal(obj{"command": []string{"bash", "-lc", command}, "workdir": cwd})
	lw.line(rollout.TypeResponseItem, obj{"type": "function_call", "name": "shell", "arguments": string(args), "call_id": callID})
	lw.line(rollout.TypeResponseItem, obj{"type": "function_call_output", "call_id": callID, "output": output})
	if img != nil {
		lw.line(rollout.TypeResponseItem, obj{
			"type": "image_generation_call", "id": fmt.Sprintf("ig_%016x", r.Uint64()), "status": "completed",
			"result": base64.StdEncoding.EncodeToString(img),
		})
	}
	for _, l := range lines[4:6] { // the answer's echo, the answer
		lw.raw(l)
	}
	lw.clock = spec.Completed.Add(-5 * time.Second) // token_count's tick lands before task_complete
	in := 1000 + r.IntN(50000)
	lw.line(rollout.TypeEventMsg, obj{"type": "token_count", "info": obj{
		"total_token_usage":    obj{"input_tokens": in * (turn + 1), "cached_input_tokens": in * turn, "output_tokens": 300 * (turn + 1), "reasoning_output_tokens": 120 * (turn + 1), "total_tokens": (in + 300) * (turn + 1)},
		"last_token_usage":     obj{"input_tokens": in, "cached_input_tokens": in / 2, "output_tokens": 300, "reasoning_output_tokens": 120, "total_tokens": in + 300},
		"model_context_window": 272000,
	}})
	lw.raw(lines[6]) // task_complete
	lw.clock = spec.Completed
}

// vocabulary is what generated text is made of; it holds no characters that
// JSON or HTML escaping would change.
var vocabulary = strings.Fields(`the a to of and in is it for that this with on
	function file test error return value build module package index thread fork
	rollout line offset cursor page store writer reader sync append commit branch
	refactor rename compile benchmark latency memory disk kernel copy range parse
	json decode encode struct field method interface channel goroutine mutex
	context deadline cancel retry timeout request response handler server client`)

// words returns about n bytes of space-separated words.
func words(r *rand.Rand, n int) string {
	var b strings.Builder
	b.Grow(n + 16)
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(vocabulary[r.IntN(len(vocabulary))])
	}
	return b.String()
}

func fillRandom(r *rand.Rand, p []byte) {
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, r.Uint64())
		p = p[8:]
	}
	for i := range p {
		p[i] = byte(r.Uint32())
	}
}

// Generate writes threads 0..n-1 of o under root (creating the date
// folders) using one goroutine per CPU, and returns them in order.
func Generate(ctx context.Context, root string, n int, o Options) ([]Thread, error) {
	threads := make([]Thread, n)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var next int
	var mu sync.Mutex // guards next
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				t, err := writeFile(root, o, i)
				if err != nil {
					errs[w] = err
					return
				}
				threads[i] = t
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("generate corpus in %s: %w", root, err)
	}
	return threads, nil
}

// writeFile writes thread i of o at its path under root.
func writeFile(root string, o Options, i int) (Thread, error) {
	path := filepath.Join(root, filepath.FromSlash(o.Path(i)))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Thread{}, err
	}
	f, err := os.Create(path)
	if err != nil {
		return Thread{}, err
	}
	t, err := WriteThread(f, o, i)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return t, err
}
