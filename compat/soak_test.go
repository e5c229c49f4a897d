//go:build compat

package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/internal/spooldtest"
	"github.com/spoolhq/spool/internal/testbin"
)

// TestSoakCodexAndSpooldShareHome is issue #13: Codex (app-server, one
// process per round, as a user starts and quits it) and a real spoold
// write one home at once. In each round Codex starts a thread and injects
// into it, and resumes a thread spool created (and holds live) and injects
// into that; meanwhile spoold, through HTTP, appends to every thread it
// knows: its own and those Codex created in earlier rounds. 409 busy
// (Codex holds the thread's writer lock while it is loaded) is an
// accepted answer, counted and retried; so is Codex's "already has an
// active writer" (spool holds the lock during an append). Afterwards every
// line either side acknowledged is in its file (spool's at the offset it
// answered), every file ends with a complete line and no torn tail was
// cut aside, every thread's ordinals increase, and `reindex --verify`
// (beside the running spoold, then after it stopped) finds no drift.
func TestSoakCodexAndSpooldShareHome(t *testing.T) {
	const (
		rounds      = 4
		spoolOwn    = 3
		deadline    = 60 * time.Second
		maxAttempts = 200
	)
	home := newHome(t)
	bins := buildSpool(t, "spoold", "reindex")
	d := startSpooldOn(t, bins["spoold"], home)
	// The bound is on the soak itself, not on building and starting spoold.
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	c, err := client.New(d.URL)
	if err != nil {
		t.Fatal(err)
	}

	type spoolAck struct {
		id, text string
		offset   int64
	}
	type codexAck struct{ id, text string }
	var (
		mu         sync.Mutex // guards the fields below
		known      []string   // threads spool appends to
		spoolAcks  []spoolAck
		codexAcks  []codexAck
		busy       int // spool's 409 busy answers
		tornWaits  int // spool's 409 torn_tail answers
		codexBusy  int // Codex's "active writer" answers
		spoolSeq   int
		appendErrs []error
	)
	for i := range spoolOwn {
		th, err := c.Create(ctx, client.CreateOptions{Cwd: "/tmp", Originator: "spool_soak"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Append(ctx, th.ID, userMsg(fmt.Sprintf("spool own %d", i))); err != nil {
			t.Fatal(err)
		}
		known = append(known, th.ID)
	}
	spoolThreads := append([]string(nil), known...)

	// appendAll makes one append to every known thread; it returns how
	// many were acknowledged.
	appendAll := func() int {
		mu.Lock()
		ids := append([]string(nil), known...)
		mu.Unlock()
		acked := 0
		for _, id := range ids {
			mu.Lock()
			spoolSeq++
			text := fmt.Sprintf("spool-%d", spoolSeq)
			mu.Unlock()
			res, err := c.Append(ctx, id, userMsg(text))
			mu.Lock()
			switch {
			case err == nil:
				spoolAcks = append(spoolAcks, spoolAck{id: id, text: text, offset: res.Offsets[0]})
				acked++
			case errors.Is(err, client.ErrBusy):
				busy++
			case errors.Is(err, client.ErrTornTail):
				tornWaits++
			case ctx.Err() == nil:
				appendErrs = append(appendErrs, fmt.Errorf("append %s to %s: %w", text, id, err))
			}
			mu.Unlock()
		}
		return acked
	}

	stop := make(chan struct{})
	appender := make(chan struct{})
	go func() {
		defer close(appender)
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			default:
				appendAll()
			}
		}
	}()

	inject := func(s *Server, id, text string) {
		t.Helper()
		call(t, s, "thread/inject_items", map[string]any{"threadId": id, "items": []any{
			map[string]any{"type": "message", "role": "user", "content": []map[string]string{{"type": "input_text", "text": text}}},
			map[string]any{"type": "message", "role": "assistant", "content": []map[string]string{{"type": "output_text", "text": text + " answered"}}},
		}}, nil)
		mu.Lock()
		codexAcks = append(codexAcks, codexAck{id: id, text: text}, codexAck{id: id, text: text + " answered"})
		mu.Unlock()
	}
	for r := range rounds {
		s := startCodex(t, home)
		var started threadAnswer
		call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &started)
		created := started.Thread.ID
		inject(s, created, fmt.Sprintf("codex-%d-own", r))

		// Resume a thread spool holds live; spool holds its writer lock
		// during each append, and Codex refuses then, at once.
		theirs := spoolThreads[r%len(spoolThreads)]
		for attempt := 0; ; attempt++ {
			err := s.Call(ctx, "thread/resume", map[string]any{"threadId": theirs, "excludeTurns": true}, nil)
			var rpcErr *RPCError
			if err == nil {
				break
			}
			if !errors.As(err, &rpcErr) || !strings.Contains(rpcErr.Message, "active writer") || attempt >= maxAttempts {
				t.Fatalf("round %d: Codex resumes spool's thread %s: %v", r, theirs, err)
			}
			mu.Lock()
			codexBusy++
			mu.Unlock()
		}
		inject(s, theirs, fmt.Sprintf("codex-%d-resumed", r))
		inject(s, created, fmt.Sprintf("codex-%d-own-again", r))
		if err := s.Close(); err != nil {
			t.Fatalf("round %d: close Codex: %v", r, err)
		}
		// Codex exited: its thread is free for spool's appends now.
		mu.Lock()
		known = append(known, created)
		mu.Unlock()
	}
	close(stop)
	<-appender
	// No Codex runs now: one more append to every thread must be accepted.
	if got, want := appendAll(), len(known); got != want {
		t.Fatalf("final appends with no Codex running: %d accepted, want %d", got, want)
	}
	for _, err := range appendErrs {
		t.Error(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the soak overran its %v bound", deadline)
	}
	t.Logf("%d rounds: spool acknowledged %d appends (409 busy %d, 409 torn_tail %d); Codex acknowledged %d items (%d resumes refused: spool was appending)",
		rounds, len(spoolAcks), busy, tornWaits, len(codexAcks), codexBusy)
	if busy == 0 {
		t.Errorf("spool never got 409 busy: the rounds did not overlap Codex's writer locks")
	}

	verify := func(when string) {
		t.Helper()
		out, err := exec.Command(bins["reindex"], "-root", home, "-verify").CombinedOutput()
		if err != nil {
			t.Fatalf("reindex -verify %s: %v\n%s", when, err, out)
		}
	}
	verify("beside the running spoold")

	files := map[string][]byte{}
	fileOf := func(id string) []byte {
		t.Helper()
		if b, ok := files[id]; ok {
			return b
		}
		paths := findFiles(t, home, id)
		if len(paths) != 1 {
			t.Fatalf("thread %s: files %v, want one", id, paths)
		}
		b := readBytes(t, paths[0])
		files[id] = b
		return b
	}
	for _, a := range spoolAcks {
		data := fileOf(a.id)
		line, _, ok := bytes.Cut(data[a.offset:], []byte("\n"))
		if !ok || !bytes.Contains(line, []byte(`"`+a.text+`"`)) {
			t.Errorf("spool's %s acknowledged at %d of %s: that line is %.120q", a.text, a.offset, a.id, line)
		}
	}
	for _, a := range codexAcks {
		if !bytes.Contains(fileOf(a.id), []byte(`"`+a.text+`"`)) {
			t.Errorf("Codex's %q acknowledged in %s is not in its file", a.text, a.id)
		}
	}
	for id, data := range files {
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Errorf("thread %s does not end with a complete line", id)
		}
		last := int64(-1)
		for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			var l struct {
				Ordinal *int64 `json:"ordinal"`
			}
			if err := json.Unmarshal(line, &l); err != nil {
				t.Errorf("thread %s line %d is not JSON: %v", id, i+1, err)
				continue
			}
			if l.Ordinal != nil {
				if *l.Ordinal <= last {
					t.Errorf("thread %s line %d: ordinal %d after %d", id, i+1, *l.Ordinal, last)
				}
				last = *l.Ordinal
			}
		}
	}
	torn, err := filepath.Glob(filepath.Join(home, "sessions", "*", "*", "*", "*.torn-*"))
	if err != nil || len(torn) != 0 {
		t.Errorf("torn tails cut aside: %v (%v), want none", torn, err)
	}

	d.Stop(t)
	verify("after spoold stopped")
}

func userMsg(text string) client.Item {
	payload, _ := json.Marshal(map[string]any{
		"type": "message", "role": "user",
		"content": []map[string]string{{"type": "input_text", "text": text}},
	})
	return client.Item{Type: "response_item", Payload: payload}
}

// buildSpool builds the named commands of this module into a temporary
// directory and returns their paths by name.
func buildSpool(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for _, name := range names {
		bin, err := testbin.Build(t.Context(), dir, "github.com/spoolhq/spool/cmd/"+name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = bin
	}
	return out
}

// startSpooldOn starts spoold on home, watching it, and waits until it
// listens and its reconcile ended.
func startSpooldOn(t *testing.T, bin, home string) *spooldtest.Process {
	t.Helper()
	d := spooldtest.Start(t, bin, spooldtest.Options{Args: []string{"-root", home, "-sync", "always", "-watch", "true"}})
	d.WaitLog(t, "reconciled store")
	return d
}
