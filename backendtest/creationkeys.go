package backendtest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// testIdempotentStart: a start sent again with its idempotency key creates
// nothing and answers with the thread the first created, as it is now,
// without a second event; the key with other options is refused,
// concurrent retries get one thread, and a retry after the thread's delete
// starts a new one. The thread's meta states its key (a rebuilt local
// index learns it from there).
func testIdempotentStart(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	p := implements[manager.Publisher](t, b)
	sub := p.Subscribe(0)
	defer sub.Close()
	o := manager.StartOptions{Cwd: "/work", Name: "once", IdempotencyKey: "start-1"}
	first, err := b.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Rename(ctx, first.ID, "renamed since"); err != nil {
		t.Fatal(err)
	}
	checkStatedKey(t, b, first, "", o.IdempotencyKey, o.RequestHash())
	again, err := b.Start(ctx, o)
	if err != nil || again.ID != first.ID || again.Name != "renamed since" {
		t.Fatalf("retry: %s %q, %v; want %s as it is now (renamed since)", again.ID, again.Name, err, first.ID)
	}
	// A default spelled out is the same request (a backend may fill
	// defaults in before it hashes).
	spelled := o
	spelled.Source, spelled.ModelProvider, spelled.HistoryMode = "vscode", manager.DefaultModelProvider, "paginated"
	if again, err := b.Start(ctx, spelled); err != nil || again.ID != first.ID {
		t.Fatalf("retry with the defaults spelled out: %s, %v; want %s", again.ID, err, first.ID)
	}
	plain, err := b.Start(ctx, manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	checkStatedKey(t, b, plain, "", "", nil)
	waitCreated(t, sub, first.ID, plain.ID)
	if n := countThreads(t, b); n != 2 {
		t.Fatalf("%d threads, want 2: the retry started one", n)
	}

	other := o
	other.Cwd = "/elsewhere"
	if _, err := b.Start(ctx, other); !errors.Is(err, manager.ErrIdempotencyKeyReused) {
		t.Fatalf("the key with another cwd: %v, want ErrIdempotencyKeyReused", err)
	}

	o.IdempotencyKey = "start-2"
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			th, err := b.Start(ctx, o)
			if err != nil {
				t.Error(err)
			}
			ids[i] = th.ID
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("concurrent starts with one key made threads %v, want one", ids)
		}
	}

	if err := b.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	anew, err := b.Start(ctx, o)
	if err != nil || anew.ID == ids[0] {
		t.Fatalf("retry after a delete: %s, %v; want a new thread", anew.ID, err)
	}
}

// testIdempotentFork: a fork sent again with its idempotency key creates
// nothing and answers with the first fork; the key with another point is
// refused; the keys of forks are their parent's, and a fork's meta states
// its key, a copy's too.
func testIdempotentFork(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent, other := withTurns(t, b, 3), withTurns(t, b, 2)
	one := 1
	o := manager.ForkOptions{BeforeUserMessage: &one, IdempotencyKey: "fork-1"}
	first, err := b.Fork(ctx, parent.ID, o)
	if err != nil {
		t.Fatal(err)
	}
	checkStatedKey(t, b, first, parent.ID, o.IdempotencyKey, o.RequestHash())
	again, err := b.Fork(ctx, parent.ID, o)
	if err != nil || again.ID != first.ID {
		t.Fatalf("retry: %s, %v; want %s", again.ID, err, first.ID)
	}
	cp := manager.ForkOptions{Mode: manager.ForkCopy, IdempotencyKey: "fork-copy"}
	copied, err := b.Fork(ctx, parent.ID, cp)
	if err != nil {
		t.Fatal(err)
	}
	checkStatedKey(t, b, copied, parent.ID, cp.IdempotencyKey, cp.RequestHash())
	if again, err := b.Fork(ctx, parent.ID, cp); err != nil || again.ID != copied.ID {
		t.Fatalf("retry of a copy: %s, %v; want %s", again.ID, err, copied.ID)
	}
	if n := countThreads(t, b); n != 4 {
		t.Fatalf("%d threads, want 4: a retry forked again", n)
	}
	two := 2
	// A retry that spells out the mode its first request defaulted to
	// asks for the same fork; the other mode is another request.
	legacy := startIn(t, b, string(rollout.HistoryLegacy))
	for _, c := range []struct {
		name           string
		parent         manager.Thread
		spelled, other string
	}{
		{"paginated parent", parent, manager.ForkReference, manager.ForkCopy},
		{"legacy parent", legacy, manager.ForkCopy, manager.ForkReference},
	} {
		defaulted := manager.ForkOptions{BeforeUserMessage: &one, IdempotencyKey: "fork-default"}
		if c.parent.ID == legacy.ID {
			defaulted.BeforeUserMessage = nil
		}
		first, err := b.Fork(ctx, c.parent.ID, defaulted)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		spelled := defaulted
		spelled.Mode = c.spelled
		if again, err := b.Fork(ctx, c.parent.ID, spelled); err != nil || again.ID != first.ID {
			t.Fatalf("%s: retry with mode %q spelled out: %s, %v; want %s", c.name, c.spelled, again.ID, err, first.ID)
		}
		other := defaulted
		other.Mode = c.other
		if _, err := b.Fork(ctx, c.parent.ID, other); !errors.Is(err, manager.ErrIdempotencyKeyReused) {
			t.Fatalf("%s: the key with mode %q: %v, want ErrIdempotencyKeyReused", c.name, c.other, err)
		}
	}
	// And the other way round: a fork that spelled its default out is
	// the fork a retry without a mode asks for.
	spelled := manager.ForkOptions{BeforeUserMessage: &two, Mode: manager.ForkReference, IdempotencyKey: "fork-spelled"}
	made, err := b.Fork(ctx, parent.ID, spelled)
	if err != nil {
		t.Fatal(err)
	}
	spelled.Mode = ""
	if again, err := b.Fork(ctx, parent.ID, spelled); err != nil || again.ID != made.ID {
		t.Fatalf("retry without the mode spelled out: %s, %v; want %s", again.ID, err, made.ID)
	}
	if _, err := b.Fork(ctx, parent.ID, manager.ForkOptions{BeforeUserMessage: &two, IdempotencyKey: "fork-1"}); !errors.Is(err, manager.ErrIdempotencyKeyReused) {
		t.Fatalf("the key with another point: %v, want ErrIdempotencyKeyReused", err)
	}
	elsewhere, err := b.Fork(ctx, other.ID, o)
	if err != nil || elsewhere.ID == first.ID || elsewhere.ParentID != other.ID {
		t.Fatalf("the same key on another parent: %s (parent %s), %v; want a fork of %s", elsewhere.ID, elsewhere.ParentID, err, other.ID)
	}
	// A start's keys are not a fork's.
	started, err := b.Start(ctx, manager.StartOptions{IdempotencyKey: "fork-1"})
	if err != nil || started.ID == first.ID || started.ID == elsewhere.ID {
		t.Fatalf("a start with a fork's key: %s, %v; want a new thread", started.ID, err)
	}
}

// testIdempotencyKeyRule: every call that takes an idempotency key takes
// it by one rule (manager.CheckIdempotencyKey): 1 to 255 printable ASCII
// characters; another is ErrInvalidArgument, and nothing is created or
// written.
func testIdempotencyKeyRule(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent := withTurns(t, b, 2)
	size := parent.HistorySize()
	calls := []struct {
		name string
		call func(key string) error
	}{
		{"start", func(key string) error {
			_, err := b.Start(ctx, manager.StartOptions{Cwd: "/work", IdempotencyKey: key})
			return err
		}},
		{"fork", func(key string) error {
			_, err := b.Fork(ctx, parent.ID, manager.ForkOptions{IdempotencyKey: key})
			return err
		}},
		{"append", func(key string) error {
			_, err := b.AppendWith(ctx, parent.ID, []rollout.Item{userItem("keyed")}, manager.AppendOptions{IdempotencyKey: key})
			return err
		}},
		{"append lines", func(key string) error {
			line := []byte(`{"timestamp":"2026-01-02T03:04:05.000Z","type":"event_msg","payload":{"type":"note"}}`)
			_, err := b.AppendLinesWith(ctx, parent.ID, [][]byte{line}, manager.AppendOptions{IdempotencyKey: key})
			return err
		}},
	}
	for _, bad := range []string{strings.Repeat("k", manager.MaxIdempotencyKeyLen+1), "a\tb", "caf\u00e9", "nul\x00"} {
		for _, c := range calls {
			if err := c.call(bad); !errors.Is(err, manager.ErrInvalidArgument) {
				t.Fatalf("%s with key %q: %v, want ErrInvalidArgument", c.name, bad, err)
			}
		}
	}
	if n := countThreads(t, b); n != 1 {
		t.Fatalf("%d threads after refused keys, want the parent alone", n)
	}
	if got, err := b.Get(ctx, parent.ID); err != nil || got.HistorySize() != size {
		t.Fatalf("the parent after refused appends: size %d, %v; want %d", got.HistorySize(), err, size)
	}
	for i, c := range calls { // each its own key: the appends share a thread
		longest := strings.Repeat("~", manager.MaxIdempotencyKeyLen-1) + string(rune(' '+i))
		if err := c.call(longest); err != nil {
			t.Fatalf("%s with a key of %d printable characters: %v", c.name, len(longest), err)
		}
	}
}

// checkStatedKey fails unless th's own meta states key of scope for a
// request hashed hash, kept for manager.IdempotencyTTL from about th's
// creation (the request's arrival; key "": states none).
func checkStatedKey(t *testing.T, b manager.Backend, th manager.Thread, scope, key string, hash []byte) {
	t.Helper()
	own, _, _ := bytes.Cut(history(t, b, th.ID)[th.BaseSize:], []byte{'\n'})
	meta, err := rollout.ParseSessionMeta(own)
	if err != nil || meta.ID != th.ID {
		t.Fatalf("thread %s: its own first line %s (%v) is not its meta", th.ID, own, err)
	}
	got := meta.CreationKey
	var since time.Duration
	if got != nil {
		since = th.CreatedAt.Sub(time.UnixMilli(got.CreatedAt))
	}
	switch {
	case key == "" && got == nil:
	case key == "" || got == nil:
		t.Fatalf("thread %s states key %+v, want %q", th.ID, got, key)
	case got.Scope != scope || got.Key != key || got.RequestSHA256 != hex.EncodeToString(hash) ||
		since < -time.Millisecond || since > time.Minute || got.ExpiresAt-got.CreatedAt != manager.IdempotencyTTL.Milliseconds():
		t.Fatalf("thread %s (created %s) states key %+v, want %q of scope %q, request %x, for %s",
			th.ID, th.CreatedAt, got, key, scope, hash, manager.IdempotencyTTL)
	}
}

// countThreads returns how many threads the backend lists.
func countThreads(t *testing.T, b manager.Backend) int {
	t.Helper()
	page, err := b.List(t.Context(), manager.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Threads)
}

// waitCreated waits for created events of ids, in order, and fails on a
// created event of another thread before them.
func waitCreated(t *testing.T, sub *manager.Subscription, ids ...string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for i := 0; i < len(ids); {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			if e.Type != manager.EventCreated {
				continue
			}
			if e.ThreadID != ids[i] {
				t.Fatalf("created event %d for %s, want %s", i, e.ThreadID, ids[i])
			}
			i++
		case <-timeout:
			t.Fatalf("waited 30 s for the created event of %s", ids[i])
		}
	}
}
