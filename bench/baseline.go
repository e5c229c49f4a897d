// Package bench holds spool's in-process benchmarks against the baselines
// users live with today, and those baselines: the Codex way of forking
// (decode every line into typed structs, cut before a turn, re-encode),
// Codex's file listing (walk the date folders newest first, read heads,
// stop at the page size), reading a thread's last turn backwards without
// an index, and a plain read loop as the ceiling of any reindex. The
// benchmarks against the real Codex binary are bench/codexbench. See BENCHMARKS.md at the repository root for
// the figures and how to rerun them (make bench).
package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spoolhq/spool/rollout"
)

// The typed rollout lines of the Codex way: Codex decodes each line into
// its RolloutItem enum, whose variants are structs (serde), and writes them
// back the same way. These structs hold every member the benchmark corpora
// (bench/corpus) write.
type (
	// codexEnvelope is a line before its payload is decoded.
	codexEnvelope struct {
		Timestamp string          `json:"timestamp"`
		Type      string          `json:"type"`
		Payload   json.RawMessage `json:"payload"`
	}
	// codexItem is a decoded line; Payload holds one of the pointers below
	// (or *json.RawMessage for a line type Codex keeps opaque here).
	codexItem struct {
		Timestamp string `json:"timestamp"`
		Type      string `json:"type"`
		Payload   any    `json:"payload"`
	}
	sessionMetaPayload struct {
		ID               string          `json:"id"`
		Timestamp        string          `json:"timestamp"`
		Cwd              string          `json:"cwd"`
		Originator       string          `json:"originator"`
		CLIVersion       string          `json:"cli_version"`
		Source           json.RawMessage `json:"source,omitempty"` // a string or a sub-agent object
		ModelProvider    string          `json:"model_provider,omitempty"`
		ForkedFromID     string          `json:"forked_from_id,omitempty"`
		HistoryMode      string          `json:"history_mode,omitempty"`
		BaseInstructions *struct {
			Text string `json:"text"`
		} `json:"base_instructions,omitempty"`
		Git *struct {
			CommitHash    string `json:"commit_hash,omitempty"`
			Branch        string `json:"branch,omitempty"`
			RepositoryURL string `json:"repository_url,omitempty"`
		} `json:"git,omitempty"`
	}
	contentItem struct {
		Type     string `json:"type"`
		Text     string `json:"text,omitempty"`
		ImageURL string `json:"image_url,omitempty"`
	}
	responseItem struct {
		Type             string        `json:"type"`
		ID               string        `json:"id,omitempty"`
		Role             string        `json:"role,omitempty"`
		Content          []contentItem `json:"content,omitempty"`
		Phase            string        `json:"phase,omitempty"`
		Summary          []contentItem `json:"summary,omitempty"`
		EncryptedContent *string       `json:"encrypted_content,omitempty"`
		Name             string        `json:"name,omitempty"`
		Arguments        string        `json:"arguments,omitempty"`
		CallID           string        `json:"call_id,omitempty"`
		Output           *string       `json:"output,omitempty"`
		Status           string        `json:"status,omitempty"`
		Result           string        `json:"result,omitempty"`
	}
	tokenUsage struct {
		InputTokens           int64 `json:"input_tokens"`
		CachedInputTokens     int64 `json:"cached_input_tokens"`
		OutputTokens          int64 `json:"output_tokens"`
		ReasoningOutputTokens int64 `json:"reasoning_output_tokens"`
		TotalTokens           int64 `json:"total_tokens"`
	}
	tokenInfo struct {
		TotalTokenUsage    tokenUsage `json:"total_token_usage"`
		LastTokenUsage     tokenUsage `json:"last_token_usage"`
		ModelContextWindow *int64     `json:"model_context_window,omitempty"`
	}
	completedItem struct {
		Type    string `json:"type"`
		ID      string `json:"id"`
		Content []struct {
			Type         string            `json:"type"`
			Text         string            `json:"text"`
			TextElements []json.RawMessage `json:"text_elements,omitempty"`
		} `json:"content,omitempty"`
	}
	eventMsg struct {
		Type                  string            `json:"type"`
		TurnID                string            `json:"turn_id,omitempty"`
		ThreadID              string            `json:"thread_id,omitempty"`
		Message               *string           `json:"message,omitempty"`
		Images                []string          `json:"images,omitempty"`
		LocalImages           []string          `json:"local_images,omitempty"`
		TextElements          []json.RawMessage `json:"text_elements,omitempty"`
		Item                  *completedItem    `json:"item,omitempty"`
		Info                  *tokenInfo        `json:"info,omitempty"`
		NumTurns              *int64            `json:"num_turns,omitempty"`
		Reason                string            `json:"reason,omitempty"`
		LastAgentMessage      *string           `json:"last_agent_message,omitempty"`
		ModelContextWindow    *int64            `json:"model_context_window,omitempty"`
		CollaborationModeKind string            `json:"collaboration_mode_kind,omitempty"`
		StartedAt             *int64            `json:"started_at,omitempty"`
		CompletedAt           *int64            `json:"completed_at,omitempty"`
		DurationMS            *int64            `json:"duration_ms,omitempty"`
		StartedAtMS           *int64            `json:"started_at_ms,omitempty"`
		CompletedAtMS         *int64            `json:"completed_at_ms,omitempty"`
	}
	turnContextPayload struct {
		TurnID         string `json:"turn_id,omitempty"`
		Cwd            string `json:"cwd"`
		ApprovalPolicy string `json:"approval_policy"`
		SandboxPolicy  struct {
			Type          string `json:"type"`
			NetworkAccess *bool  `json:"network_access,omitempty"`
		} `json:"sandbox_policy"`
		Model   string `json:"model"`
		Effort  string `json:"effort,omitempty"`
		Summary string `json:"summary,omitempty"`
	}
)

// decodeCodexItem decodes one line (newline optional) the way Codex does:
// the envelope, then the payload into the struct of its type.
func decodeCodexItem(line []byte) (codexItem, error) {
	var env codexEnvelope
	if err := json.Unmarshal(line, &env); err != nil {
		return codexItem{}, err
	}
	var payload any
	switch env.Type {
	case rollout.TypeSessionMeta:
		payload = new(sessionMetaPayload)
	case rollout.TypeResponseItem:
		payload = new(responseItem)
	case rollout.TypeEventMsg:
		payload = new(eventMsg)
	case rollout.TypeTurnContext:
		payload = new(turnContextPayload)
	default:
		payload = new(json.RawMessage)
	}
	if err := json.Unmarshal(env.Payload, payload); err != nil {
		return codexItem{}, err
	}
	return codexItem{Timestamp: env.Timestamp, Type: env.Type, Payload: payload}, nil
}

// setupMarkers are the session-setup texts that do not count as user
// messages (docs/CODEX.md: compared case-sensitively after trimming),
// repeated here so the baseline does not borrow spool's classifier.
var setupMarkers = [...][2]string{
	{"# AGENTS.md instructions", "</INSTRUCTIONS>"},
	{"<environment_context>", "</environment_context>"},
	{"<skill>", "</skill>"},
	{"<user_shell_command>", "</user_shell_command>"},
	{"<turn_aborted>", "</turn_aborted>"},
	{"<subagent_notification>", "</subagent_notification>"},
	{"<recommended_plugins>", "</recommended_plugins>"},
	{"<goal_context>", "</goal_context>"},
}

// userMessageDelta says what a decoded item does to the count of user
// messages: +1 for a counted user message, -k for a rollback of k turns, 0
// otherwise.
func userMessageDelta(it *codexItem) int {
	switch p := it.Payload.(type) {
	case *eventMsg:
		if p.Type == "thread_rolled_back" && p.NumTurns != nil && *p.NumTurns > 0 {
			return -int(*p.NumTurns)
		}
	case *responseItem:
		if p.Type != "message" || p.Role != "user" {
			return 0
		}
		for _, part := range p.Content {
			if part.Type != "input_text" {
				continue
			}
			t := strings.TrimSpace(part.Text)
			for _, m := range setupMarkers {
				if strings.HasPrefix(t, m[0]) && strings.HasSuffix(t, m[1]) {
					return 0
				}
			}
		}
		return 1
	}
	return 0
}

// isTurnStart reports whether it is a task_started event: where Codex
// cuts a fork before a turn.
func isTurnStart(it *codexItem) bool {
	p, ok := it.Payload.(*eventMsg)
	return ok && p.Type == "task_started"
}

// CodexFork forks the rollout at src the way Codex 0.169 forks a legacy
// thread: it reads and decodes every line into typed structs, cuts the
// list before the turn of the nth counted user message (0-based, rollbacks
// applied; before its task_started, or before the message when its turn
// has none), and writes metaLine followed by every kept item re-encoded to
// a new file dst. It returns the number of items written after metaLine.
func CodexFork(src, dst string, metaLine []byte, n int) (int, error) {
	f, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var items []codexItem
	var starts []int // index in items where the turn of each counted user message starts
	turnStart := -1  // index of the last task_started since the last counted user message
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if it, derr := decodeCodexItem(line); derr == nil {
				switch d := userMessageDelta(&it); {
				case d > 0:
					cut := len(items)
					if turnStart >= 0 {
						cut = turnStart
					}
					starts = append(starts, cut)
					turnStart = -1
				case d < 0:
					starts = starts[:max(len(starts)+d, 0)]
				}
				if isTurnStart(&it) {
					turnStart = len(items)
				}
				items = append(items, it)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("codex fork %s: %w", src, err)
		}
	}
	if n < 0 || n >= len(starts) {
		return 0, fmt.Errorf("codex fork %s: user message %d of %d", src, n, len(starts))
	}
	items = items[:starts[n]]

	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_, err = w.Write(metaLine)
	for i := range items {
		if err != nil {
			break
		}
		err = enc.Encode(&items[i])
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("codex fork %s: write %s: %w", src, dst, err)
	}
	return len(items), nil
}

// CopyPrefix copies the first n bytes of src into a new file dst with
// io.Copy between two *os.File values (one copy_file_range on Linux): the
// least any fork must do.
func CopyPrefix(src, dst string, n int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	copied, err := io.Copy(out, io.LimitReader(in, n))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && copied != n {
		err = fmt.Errorf("copied %d of %d bytes", copied, n)
	}
	if err != nil {
		return fmt.Errorf("copy prefix of %s: %w", src, err)
	}
	return nil
}

// CopyPrefixAfter is CopyPrefix into a file that already starts with head:
// the layout of a fork (its own meta line, then the parent's bytes). The
// kernel copies into a non-zero destination offset more slowly than into
// offset 0, and this baseline shows by how much.
func CopyPrefixAfter(src, dst string, head []byte, n int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = out.Write(head)
	var copied int64
	if err == nil {
		copied, err = io.Copy(out, io.LimitReader(in, n))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && copied != n {
		err = fmt.Errorf("copied %d of %d bytes", copied, n)
	}
	if err != nil {
		return fmt.Errorf("copy prefix of %s after %d bytes: %w", src, len(head), err)
	}
	return nil
}

// HeadEntry is a thread as a directory scan sees it.
type HeadEntry struct {
	ID      string
	Path    string
	Created string // session_meta timestamp
	Updated int64  // file mtime, Unix ns
}

// headBytes is how much of each file ScanNewest reads.
const headBytes = 8 << 10

// ScanNewest lists the newest limit threads under root/sessions the way
// Codex's file listing does: it walks the year, month and day folders
// newest first, and in each day the rollout files newest first by name
// (their names start with the creation time), reads the head of each file
// and decodes its session_meta line, and stops once it has limit threads.
// Files without a session_meta first line are skipped.
func ScanNewest(root string, limit int) ([]HeadEntry, error) {
	var page []HeadEntry
	buf := make([]byte, headBytes)
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		slices.Reverse(entries) // ReadDir sorts by name
		for _, e := range entries {
			if len(page) == limit {
				return nil
			}
			path := filepath.Join(dir, e.Name())
			if depth < 3 {
				if e.IsDir() {
					if err := walk(path, depth+1); err != nil {
						return err
					}
				}
				continue
			}
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".jsonl") {
				continue
			}
			entry, ok, err := readHead(path, buf)
			if err != nil {
				return err
			}
			if ok {
				page = append(page, entry)
			}
		}
		return nil
	}
	if err := walk(filepath.Join(root, rollout.SessionsDir), 0); err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	return page, nil
}

func readHead(path string, buf []byte) (HeadEntry, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return HeadEntry{}, false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return HeadEntry{}, false, err
	}
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return HeadEntry{}, false, err
	}
	head := buf[:n]
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	var meta struct {
		Type    string `json:"type"`
		Payload struct {
			ID        string `json:"id"`
			Timestamp string `json:"timestamp"`
		} `json:"payload"`
	}
	if json.Unmarshal(head, &meta) != nil || meta.Type != rollout.TypeSessionMeta {
		return HeadEntry{}, false, nil // Codex skips such files
	}
	return HeadEntry{ID: meta.Payload.ID, Path: path, Created: meta.Payload.Timestamp, Updated: info.ModTime().UnixNano()}, true, nil
}

// lastTurnBlock is how many bytes ParseLastTurn reads at a time (a test
// makes it small).
var lastTurnBlock = 1 << 20

// ParseLastTurn reads the last turn of the rollout at path the way a
// reader without an index does at best: it reads the file backwards in
// blocks, decoding each line into typed structs (as Codex does) until it
// meets the last counted user message (skipping as many as the rollback
// markers it passed roll back), and returns the lines from that message to
// the end and how many lines it decoded.
func ParseLastTurn(path string) (turn [][]byte, lines int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	block := int64(lastTurnBlock)
	var backwards [][]byte // the lines read so far, last first
	rolledBack := 0        // counted user messages still to skip
	// visit decodes one line; it reports whether it is the turn's start.
	visit := func(line []byte) bool {
		backwards = append(backwards, line)
		it, err := decodeCodexItem(line)
		if err != nil {
			return false
		}
		lines++
		switch d := userMessageDelta(&it); {
		case d < 0:
			rolledBack -= d
		case d > 0 && rolledBack > 0:
			rolledBack--
		case d > 0:
			return true
		}
		return false
	}
	end := info.Size()
	var rest []byte // the start of the file's bytes not yet split, up to end of the last line seen
	for end > 0 || len(rest) > 0 {
		start := max(0, end-block)
		data := make([]byte, end-start, end-start+int64(len(rest)))
		if _, err := f.ReadAt(data, start); err != nil {
			return nil, lines, fmt.Errorf("parse %s: %w", path, err)
		}
		data = append(data, rest...)
		end = start
		for {
			// The last line of data ends at its end; it starts after the
			// newline before that.
			i := bytes.LastIndexByte(data[:max(len(data)-1, 0)], '\n')
			if i < 0 && start > 0 {
				break // its start is in an earlier block
			}
			line := data[i+1:]
			data = data[:i+1]
			if len(line) > 0 && visit(line) {
				slices.Reverse(backwards)
				return backwards, lines, nil
			}
			if i < 0 {
				break
			}
		}
		rest = data
		if start == 0 {
			break
		}
	}
	return nil, lines, fmt.Errorf("parse %s: no user message", path)
}

// ReadFiles reads every byte of the files at paths with a plain read loop
// and returns how many bytes it read: the ceiling of any indexer.
func ReadFiles(paths []string) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return total, err
		}
		for {
			n, err := f.Read(buf)
			total += int64(n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return total, err
			}
		}
		f.Close()
	}
	return total, nil
}
