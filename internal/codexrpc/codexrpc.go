// Package codexrpc drives the real Codex CLI: it runs
// `codex app-server` inside a private network namespace (`unshare -n`) with
// a temporary CODEX_HOME and a dummy API key, and speaks its stdio
// JSON-RPC. The compatibility tests (compat/, make compat) and the
// benchmarks against Codex (bench/codexbench, make bench-codex) use it; see
// docs/CODEX.md for what the tests established.
package codexrpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// ErrClosed reports a call on a server that has exited or been closed.
var ErrClosed = errors.New("codexrpc: codex app-server closed")

// RPCError is an error answer of the app-server.
type RPCError struct {
	Method  string
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("codex %s: error %d: %s", e.Method, e.Code, e.Message)
}

// Options configure Start.
type Options struct {
	// Binary is the native codex binary (scripts/codex.sh prints it).
	Binary string
	// Home is the CODEX_HOME to run with; it must exist. Never a real home.
	Home string
	// Stderr receives the server's log output (discarded when nil).
	Stderr io.Writer
	// MockResponses, when set, is a built compat/internal/mockresponses:
	// the namespace's loopback is brought up and Codex runs under that
	// stand-in for the Responses API, which writes Home/config.toml
	// pointing the "mock" model provider at itself. Turns then complete
	// without a network. Pid is then the stand-in's pid, not Codex's.
	MockResponses string
}

// Notification is a message of the server without an id.
type Notification struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// message is any JSON-RPC message of the server.
type message struct {
	ID     *int64          `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

// Server is a running `codex app-server`. Its methods are safe for
// concurrent use. Close it when done.
type Server struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the reader has stopped

	writeMu sync.Mutex // serialises writes to stdin
	stdin   io.WriteCloser

	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex // guards the fields below
	nextID  int64
	pending map[int64]chan message
	notes   []Notification
	noted   chan struct{} // closed (and replaced) when a notification arrives
	readErr error         // why the reader stopped
}

// Start runs `unshare -n <Binary> app-server` (under MockResponses when
// set) with CODEX_HOME=Home, HOME=Home and OPENAI_API_KEY=sk-dummy, then
// performs the handshake
// (initialize with experimentalApi, then initialized). The server stops
// when ctx is done or Close is called.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Binary == "" || o.Home == "" {
		return nil, fmt.Errorf("start codex app-server: binary and home are required")
	}
	if _, err := os.Stat(o.Home); err != nil {
		return nil, fmt.Errorf("start codex app-server: home: %w", err)
	}
	cmd := exec.CommandContext(ctx, "unshare", "-n", o.Binary, "app-server")
	if o.MockResponses != "" {
		// $0 is the stand-in, $1 the home, $2 Codex.
		cmd = exec.CommandContext(ctx, "unshare", "-n", "sh", "-c",
			`ip link set lo up && exec "$0" -home "$1" -- "$2" app-server`, o.MockResponses, o.Home, o.Binary)
	}
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + o.Home,
		"CODEX_HOME=" + o.Home,
		"OPENAI_API_KEY=sk-dummy",
	}
	cmd.Dir = o.Home
	cmd.Stderr = o.Stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start codex app-server: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start codex app-server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start codex app-server: %w", err)
	}
	s := &Server{cmd: cmd, stdin: stdin, done: make(chan struct{}), pending: make(map[int64]chan message), noted: make(chan struct{})}
	go s.read(stdout)
	init := map[string]any{
		"clientInfo":   map[string]any{"name": "spool-compat", "title": nil, "version": "0"},
		"capabilities": map[string]any{"experimentalApi": true},
	}
	if err := s.Call(ctx, "initialize", init, nil); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("start codex app-server: %w", err)
	}
	if err := s.send(map[string]any{"method": "initialized"}); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("start codex app-server: %w", err)
	}
	return s, nil
}

// Pid returns the process id of the server's process: Codex's own, since
// unshare execs it in place, unless Options.MockResponses is set.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// read dispatches the server's messages until its stdout ends.
func (s *Server) read(stdout io.Reader) {
	defer close(s.done)
	br := bufio.NewReaderSize(stdout, 1<<20)
	var err error
	for {
		var line []byte
		line, err = br.ReadBytes('\n')
		if len(line) > 0 {
			var m message
			if jerr := json.Unmarshal(line, &m); jerr != nil {
				err = fmt.Errorf("codex sent a line that is not JSON: %w", jerr)
				break
			}
			s.dispatch(m)
		}
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(err, io.EOF) {
		err = ErrClosed
	}
	s.readErr = err
	for id, ch := range s.pending {
		close(ch)
		delete(s.pending, id)
	}
}

func (s *Server) dispatch(m message) {
	switch {
	case m.ID != nil && m.Method == "":
		s.mu.Lock()
		ch := s.pending[*m.ID]
		delete(s.pending, *m.ID)
		s.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	case m.ID != nil:
		// A request of the server (an approval): nothing here asks for one,
		// so refuse it rather than leave the server waiting.
		_ = s.send(map[string]any{"id": *m.ID, "error": map[string]any{"code": -32601, "message": "spool-compat answers no requests"}})
	default:
		s.mu.Lock()
		s.notes = append(s.notes, Notification{Method: m.Method, Params: m.Params})
		close(s.noted)
		s.noted = make(chan struct{})
		s.mu.Unlock()
	}
}

func (s *Server) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return nil
}

// Call sends the request method with params and decodes its result into
// result (ignored when nil). An error answer is an *RPCError. A call whose
// ctx is done before it is sent is not sent; one whose ctx ends while it
// waits returns ctx's error and its answer is dropped.
func (s *Server) Call(ctx context.Context, method string, params, result any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("codex %s: %w", method, err)
	}
	ch := make(chan message, 1)
	s.mu.Lock()
	if s.readErr != nil {
		err := s.readErr
		s.mu.Unlock()
		return fmt.Errorf("codex %s: %w", method, err)
	}
	s.nextID++
	id := s.nextID
	s.pending[id] = ch
	s.mu.Unlock()
	if err := s.send(map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return fmt.Errorf("codex %s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("codex %s: %w", method, ErrClosed)
		}
		if m.Error != nil {
			m.Error.Method = method
			return m.Error
		}
		if result != nil {
			if err := json.Unmarshal(m.Result, result); err != nil {
				return fmt.Errorf("codex %s: decode result: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
		return fmt.Errorf("codex %s: %w", method, ctx.Err())
	}
}

// Notifications returns a copy of the notifications received so far.
func (s *Server) Notifications() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notification(nil), s.notes...)
}

// WaitNotification returns the first notification named method, waiting
// for it to arrive when none has yet. It fails when ctx is done or the
// server has stopped (ErrClosed) first.
func (s *Server) WaitNotification(ctx context.Context, method string) (Notification, error) {
	notes, err := s.WaitNotifications(ctx, method, 1)
	if err != nil {
		return Notification{}, err
	}
	return notes[0], nil
}

// WaitNotifications returns the first n notifications named method, in the
// order they arrived, waiting until there are n. It fails when ctx is done
// or the server has stopped (ErrClosed) first.
func (s *Server) WaitNotifications(ctx context.Context, method string, n int) ([]Notification, error) {
	for {
		s.mu.Lock()
		var found []Notification
		for _, note := range s.notes {
			if note.Method == method {
				found = append(found, note)
			}
		}
		noted := s.noted
		s.mu.Unlock()
		if len(found) >= n {
			return found[:n], nil
		}
		select {
		case <-noted:
		case <-s.done:
			return nil, fmt.Errorf("wait for %d %s: %w", n, method, ErrClosed)
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %d %s: %w", n, method, ctx.Err())
		}
	}
}

// Close closes the server's stdin, which makes it shut down, and waits for
// it; a server still running after 10 seconds is killed. It returns the
// process's exit error, if any. Calling Close twice is safe.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.writeMu.Lock()
		_ = s.stdin.Close()
		s.writeMu.Unlock()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		s.closeErr = s.cmd.Wait()
	})
	return s.closeErr
}
