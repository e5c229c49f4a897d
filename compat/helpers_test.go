//go:build compat

package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// codexBinary returns $SPOOL_CODEX. The compat tests fail, never skip, when
// it is missing: `make compat` installs Codex and sets it.
func codexBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("SPOOL_CODEX")
	if bin == "" {
		t.Fatal("SPOOL_CODEX is not set: run `make compat` (it installs Codex 0.169.0 and sets it)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("SPOOL_CODEX: %v", err)
	}
	return bin
}

// newHome returns a fresh, empty CODEX_HOME.
func newHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "codex-home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	return home
}

// startCodex runs codex app-server on home and closes it at cleanup.
func startCodex(t *testing.T, home string) *Server {
	t.Helper()
	stderr := &fixtures.Buffer{}
	s, err := Start(t.Context(), Options{Binary: codexBinary(t), Home: home, Stderr: stderr})
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr.String())
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// codexFork writes a paginated thread of three turns (id suffix idSuffix)
// into a new home, has a Codex load it and fork it after its second turn
// (by reference, as Codex 0.169 forks), and returns the home, the thread,
// that Codex, still running, and its fork.
func codexFork(t *testing.T, idSuffix int) (string, *spoolThread, *Server, threadAnswer) {
	t.Helper()
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, idSuffix)
	st.write(t, home)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	var fork threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": st.ID, "lastTurnId": st.Turns[1].TurnID, "excludeTurns": true}, &fork)
	return home, st, s, fork
}

// call is Server.Call that fails the test on error.
func call(t *testing.T, s *Server, method string, params, result any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := s.Call(ctx, method, params, result); err != nil {
		t.Fatal(err)
	}
}

// The parts of Codex's answers the tests read (v2 schema).
type (
	thread struct {
		ID           string  `json:"id"`
		ForkedFromID *string `json:"forkedFromId"`
		Preview      string  `json:"preview"`
		HistoryMode  string  `json:"historyMode"`
		Path         string  `json:"path"`
		Name         *string `json:"name"`
		UpdatedAt    int64   `json:"updatedAt"`
		Turns        []turn  `json:"turns"`
	}
	turn struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Items  []item `json:"items"`
	}
	item struct {
		Type    string `json:"type"`
		Text    string `json:"text"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	threadAnswer struct {
		Thread thread `json:"thread"`
	}
	listAnswer struct {
		Data []thread `json:"data"`
	}
	turnsAnswer struct {
		Data []turn `json:"data"`
	}
)

// describe renders turns as "id:status[user=...,agent=...]" for messages.
func describe(turns []turn) string {
	var parts []string
	for _, tn := range turns {
		var items []string
		for _, it := range tn.Items {
			switch it.Type {
			case "userMessage":
				var texts []string
				for _, c := range it.Content {
					texts = append(texts, c.Text)
				}
				items = append(items, "user="+strings.Join(texts, "|"))
			case "agentMessage":
				items = append(items, "agent="+it.Text)
			default:
				items = append(items, it.Type)
			}
		}
		parts = append(parts, fmt.Sprintf("%s:%s[%s]", tn.ID, tn.Status, strings.Join(items, ",")))
	}
	return strings.Join(parts, " ")
}

// turnsOf lists every turn of a thread, oldest first, with full items.
func turnsOf(t *testing.T, s *Server, id string) []turn {
	t.Helper()
	var a turnsAnswer
	call(t, s, "thread/turns/list", map[string]any{"threadId": id, "sortDirection": "asc", "itemsView": "full", "limit": 100}, &a)
	return a.Data
}

// spoolThread describes a thread that spool writes into a Codex home.
type spoolThread struct {
	ID      string
	Mode    rollout.HistoryMode
	Created time.Time
	Turns   []rollout.TurnSpec
	Path    string // set by write: absolute path of the rollout
	Data    []byte // set by write: the file's bytes
}

// newSpoolThread returns a thread of n turns ("prompt i" / "answer i").
func newSpoolThread(t *testing.T, mode rollout.HistoryMode, n int, idSuffix int) *spoolThread {
	t.Helper()
	created := time.Date(2026, 11, 20, 9, 0, idSuffix, 0, time.UTC)
	st := &spoolThread{ID: fmt.Sprintf("019dab90-0000-7000-8000-%012d", idSuffix), Mode: mode, Created: created}
	for i := range n {
		start := created.Add(time.Duration(i+1) * time.Minute)
		st.Turns = append(st.Turns, rollout.TurnSpec{
			ThreadID: st.ID, TurnID: fmt.Sprintf("019dab90-1111-7000-8000-%06d%06d", idSuffix, i),
			UserText: fmt.Sprintf("prompt %d", i), AgentText: fmt.Sprintf("answer %d", i),
			Cwd: "/tmp", Model: "gpt-5", Started: start, Completed: start.Add(10 * time.Second),
			UserItemID: fmt.Sprintf("019dab90-2222-7000-8000-%06d%06d", idSuffix, i), AgentItemID: fmt.Sprintf("019dab90-3333-7000-8000-%06d%06d", idSuffix, i),
		})
	}
	return st
}

// metaLine returns the thread's session_meta line (with ordinal 0 when
// paginated).
func (st *spoolThread) metaLine(t *testing.T) []byte {
	t.Helper()
	meta := rollout.SessionMeta{
		ID: st.ID, Timestamp: rollout.FormatTimestamp(st.Created), Cwd: "/tmp", Originator: "spool",
		CLIVersion: "0.169.0", Source: "cli", ModelProvider: "openai",
	}
	if st.Mode == rollout.HistoryPaginated {
		meta.HistoryMode = rollout.HistoryPaginated
	}
	line, err := rollout.NewSessionMetaLine(rollout.FormatTimestamp(st.Created), rollout.MetaPayload{SessionMeta: meta})
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode == rollout.HistoryPaginated {
		if line, err = rollout.WithOrdinal(line, 0); err != nil {
			t.Fatal(err)
		}
	}
	return line
}

// render returns the thread's whole file.
func (st *spoolThread) render(t *testing.T) []byte {
	t.Helper()
	data := st.metaLine(t)
	next := int64(1)
	for _, spec := range st.Turns {
		lines, n, err := rollout.RenderTurn(st.Mode, next, spec)
		if err != nil {
			t.Fatal(err)
		}
		data, next = append(data, lines...), n
	}
	return data
}

// write renders the thread into home's sessions tree.
func (st *spoolThread) write(t *testing.T, home string) {
	t.Helper()
	st.Data = st.render(t)
	rel, err := rollout.SessionPath(rollout.FileName(st.Created, st.ID))
	if err != nil {
		t.Fatal(err)
	}
	st.Path = filepath.Join(home, filepath.FromSlash(rel))
	writeFile(t, st.Path, st.Data)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// history scans a rollout file with rollout.ScanTurns.
func history(t *testing.T, path string) rollout.History {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := rollout.ScanTurns(f)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// firstMeta parses the first line of a rollout file.
func firstMeta(t *testing.T, path string) rollout.SessionMeta {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	m, err := rollout.ParseSessionMeta(line)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// lineAt returns the ordinal of the line starting at offset in data.
func ordinalAt(t *testing.T, data []byte, offset int64) int64 {
	t.Helper()
	line, _, _ := bytes.Cut(data[offset:], []byte{'\n'})
	n, ok, err := rollout.LineOrdinal(line)
	if err != nil || !ok {
		t.Fatalf("line at %d: ordinal %d, %v, %v", offset, n, ok, err)
	}
	return n
}

// findFiles returns the rollout files under home whose base name contains
// id, in sessions/ and archived_sessions/.
func findFiles(t *testing.T, home, id string) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{rollout.SessionsDir, rollout.ArchivedSessionsDir} {
		_ = filepath.WalkDir(filepath.Join(home, dir), func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(d.Name(), id) {
				out = append(out, path)
			}
			return nil
		})
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// withManager opens a manager on home, calls fn with it, and closes it
// (releasing the root) before it returns.
func withManager(t *testing.T, home string, fn func(m *manager.Manager)) {
	t.Helper()
	m, err := manager.Open(t.Context(), manager.Options{Root: home})
	if err != nil {
		t.Fatal(err)
	}
	fn(m)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// listIDs returns the ids thread/list answers with params.
func listIDs(t *testing.T, s *Server, params map[string]any) []string {
	t.Helper()
	var l listAnswer
	call(t, s, "thread/list", params, &l)
	var out []string
	for _, th := range l.Data {
		out = append(out, th.ID)
	}
	return out
}
