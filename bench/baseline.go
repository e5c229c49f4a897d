// Package bench holds spool's benchmarks against the baselines users live
// with today, and those baselines: the Codex way of forking (parse every
// line, cut, re-marshal), the directory scan Codex falls back to for
// listing, parsing a whole rollout to resume it, and a plain read loop as
// the ceiling of any reindex. See BENCHMARKS.md at the repository root for
// the figures and how to rerun them (make bench).
package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spoolhq/spool/rollout"
)

// item is a rollout line decoded into Go values, as Codex decodes each line
// into its RolloutItem enum: every payload is materialized.
type item struct {
	Timestamp string `json:"timestamp"`
	Type      string `json:"type"`
	Payload   any    `json:"payload"`
}

// setupMarkers are the session-setup texts that do not count as user
// messages (ROLLOUT_FORMAT.md), repeated here so the baseline does not
// borrow spool's classifier.
var setupMarkers = [...][2]string{
	{"# agents.md instructions for ", "</instructions>"},
	{"<environment_context>", "</environment_context>"},
	{"<skill>", "</skill>"},
	{"<user_shell_command>", "</user_shell_command>"},
	{"<turn_aborted>", "</turn_aborted>"},
	{"<subagent_notification>", "</subagent_notification>"},
	{"<user_instructions>", "</user_instructions>"},
	{"<hook_prompt", "</hook_prompt>"},
}

// userMessageDelta says what a decoded item does to the count of user
// messages: +1 for a counted user message, -k for a rollback of k turns, 0
// otherwise.
func userMessageDelta(it *item) int {
	p, ok := it.Payload.(map[string]any)
	if !ok {
		return 0
	}
	switch it.Type {
	case rollout.TypeEventMsg:
		if p["type"] == "thread_rolled_back" {
			if k, ok := p["num_turns"].(float64); ok && k > 0 {
				return -int(k)
			}
		}
		return 0
	case rollout.TypeResponseItem:
	default:
		return 0
	}
	if p["type"] != "message" || p["role"] != "user" {
		return 0
	}
	content, _ := p["content"].([]any)
	for _, c := range content {
		part, _ := c.(map[string]any)
		if part["type"] != "input_text" {
			continue
		}
		text, _ := part["text"].(string)
		t := strings.ToLower(strings.TrimSpace(text))
		for _, m := range setupMarkers {
			if strings.HasPrefix(t, m[0]) && strings.HasSuffix(t, m[1]) {
				return 0
			}
		}
	}
	return 1
}

// CodexFork forks the rollout at src the way Codex does: it reads and
// decodes every line into Go values, cuts the list before the nth counted
// user message (0-based, rollbacks applied), and writes metaLine followed
// by every kept item re-marshalled to a new file dst. It returns the number
// of items written after metaLine.
// turnStart returns where Codex cuts a fork before user message n: before
// the task_started of its turn when it is the turn's first message (so no
// empty interrupted turn is left), else at the message.
func turnStart(items []item, starts []int, n int) int {
	prev := -1
	if n > 0 {
		prev = starts[n-1]
	}
	for i := starts[n] - 1; i > prev; i-- {
		if p, ok := items[i].Payload.(map[string]any); ok && items[i].Type == "event_msg" && p["type"] == "task_started" {
			return i
		}
	}
	return starts[n]
}

func CodexFork(src, dst string, metaLine []byte, n int) (int, error) {
	f, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var items []item
	var starts []int // index in items of each counted user message
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var it item
			if json.Unmarshal(line, &it) == nil {
				switch d := userMessageDelta(&it); {
				case d > 0:
					starts = append(starts, len(items))
				case d < 0:
					starts = starts[:max(len(starts)+d, 0)]
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
	items = items[:turnStart(items, starts, n)]

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
// Codex's file-based fallback does: walk every date folder, read the head
// of each rollout file, decode its session_meta line, then sort by update
// time (mtime), newest first (ties by id).
func ScanNewest(root string, limit int) ([]HeadEntry, error) {
	var all []HeadEntry
	buf := make([]byte, headBytes)
	err := filepath.WalkDir(filepath.Join(root, rollout.SessionsDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".jsonl") {
			return nil
		}
		e, ok, err := readHead(path, buf)
		if err != nil {
			return err
		}
		if ok {
			all = append(all, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	slices.SortFunc(all, func(a, b HeadEntry) int {
		if c := cmp.Compare(b.Updated, a.Updated); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return all[:min(limit, len(all))], nil
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

// ParseLastTurn resumes a thread the way a reader without an index must:
// it decodes every line of the rollout at path into Go values and returns
// the lines of the last turn (from the last counted user message on) and
// how many lines it decoded.
func ParseLastTurn(path string) (turn [][]byte, lines int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var it item
			if json.Unmarshal(line, &it) == nil {
				lines++
				if userMessageDelta(&it) > 0 {
					turn = turn[:0]
				}
				turn = append(turn, line)
			}
		}
		if errors.Is(err, io.EOF) {
			return turn, lines, nil
		}
		if err != nil {
			return nil, lines, fmt.Errorf("parse %s: %w", path, err)
		}
	}
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
