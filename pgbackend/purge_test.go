//go:build distributed

package pgbackend

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/backendtest"
	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// TestPurgeDeletesSegments: a purge deletes the objects of the purged
// thread's segments and of the segments its descendant, made
// self-contained, no longer uses, and leaves those of the root; Verify is
// clean after it and no orphan is left for CollectOrphans.
func TestPurgeDeletesSegments(t *testing.T) {
	ctx := t.Context()
	bucket := disttest.Bucket(t)
	// No background sealing: the test seals, so it knows every object.
	b, err := Open(ctx, Options{DSN: disttest.DSN(t), Bucket: bucket, SealEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	root, err := b.Start(ctx, manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{root.ID}
	for i := range 2 {
		if _, err := b.AppendTurn(ctx, ids[i], manager.TurnOptions{Prompt: "a prompt", Answer: "an answer"}); err != nil {
			t.Fatal(err)
		}
		f, err := b.Fork(ctx, ids[i], manager.ForkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID)
	}
	if _, err := b.AppendWith(ctx, ids[2], []rollout.Item{{Type: rollout.TypeEventMsg, Payload: []byte(`{"type":"agent_message","message":"x"}`)}}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	objects := func(id string) int {
		t.Helper()
		list, err := bucket.List(ctx, "segments/"+id+"/")
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	for _, id := range ids {
		if sealed, err := b.store.Seal(ctx, id, 1); err != nil || !sealed {
			t.Fatalf("seal %s: %v, %v", id, sealed, err)
		}
		if objects(id) != 1 {
			t.Fatalf("%s has %d objects after its seal, want 1", id, objects(id))
		}
	}
	if err := b.Purge(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{1, 0, 0} {
		if got := objects(ids[i]); got != want {
			t.Fatalf("thread %d (%s) has %d objects after the purge, want %d", i, ids[i], got, want)
		}
	}
	if problems, err := b.store.Verify(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("Verify after the purge: %v, %v", problems, err)
	}
	if orphans, err := b.store.CollectOrphans(ctx, 0); err != nil || len(orphans) != 0 {
		t.Fatalf("orphans after the purge: %v, %v", orphans, err)
	}
	// The rewritten thread seals again, into new objects.
	if sealed, err := b.store.Seal(ctx, ids[2], 1); err != nil || !sealed || objects(ids[2]) != 1 {
		t.Fatalf("seal after the purge: %v, %v, %d objects", sealed, err, objects(ids[2]))
	}
}

// TestPurgeWithAForkMadeMeanwhile: a purge finds the threads that
// continue the purged one's history, then rewrites them one by one; a
// reference fork made in between, cut in the bytes of one of them (so
// its base is that one, not its parent), says what it said: it is made
// self-contained too, before the thread it reads through is rewritten
// (which moves every position the fork keeps).
func TestPurgeWithAForkMadeMeanwhile(t *testing.T) {
	ctx := t.Context()
	b := openUnsealed(t)
	root, err := b.Start(ctx, manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{root.ID}
	for i := range 2 {
		if _, err := b.AppendTurn(ctx, ids[i], manager.TurnOptions{Prompt: fmt.Sprintf("prompt %d", i), Answer: "an answer"}); err != nil {
			t.Fatal(err)
		}
		f, err := b.Fork(ctx, ids[i], manager.ForkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID)
	}
	var late string
	var want []string
	afterDependents = func(string) {
		if late != "" {
			return
		}
		one := 1
		f, err := b.Fork(ctx, ids[2], manager.ForkOptions{BeforeUserMessage: &one})
		if err != nil {
			t.Errorf("fork in the purge's window: %v", err)
			return
		}
		late, want = f.ID, backendtest.Said(t, b, f.ID)
		if row, err := b.store.Get(ctx, late); err != nil || row.BaseID != ids[1] {
			t.Errorf("the fork made meanwhile: base %q, %v; want %s, which holds its cut", row.BaseID, err, ids[1])
		}
	}
	t.Cleanup(func() { afterDependents = nil })
	if err := b.Purge(ctx, root.ID); err != nil {
		t.Fatal(err)
	}
	if late == "" {
		t.Fatal("no fork was made in the purge's window")
	}
	if row, err := b.store.Get(ctx, late); err != nil || row.BaseID != "" {
		t.Fatalf("the fork made during the purge: base %q, %v; want none (self-contained)", row.BaseID, err)
	}
	if got := backendtest.Said(t, b, late); !slices.Equal(got, want) {
		t.Fatalf("the fork made during the purge says:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if problems, err := b.store.Verify(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("Verify after the purge: %v, %v", problems, err)
	}
}

// TestPurgeWithADependentDeletedMeanwhile: a thread that continued the
// purged one's history when the purge found it, deleted before the purge
// rewrites it, needs no rewrite: the purge goes on without it.
func TestPurgeWithADependentDeletedMeanwhile(t *testing.T) {
	ctx := t.Context()
	b := openUnsealed(t)
	root, err := b.Start(ctx, manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendTurn(ctx, root.ID, manager.TurnOptions{Prompt: "a prompt", Answer: "an answer"}); err != nil {
		t.Fatal(err)
	}
	fork, err := b.Fork(ctx, root.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deleted := false
	afterDependents = func(string) {
		if deleted {
			return
		}
		deleted = true
		if err := b.Delete(ctx, fork.ID); err != nil {
			t.Errorf("delete in the purge's window: %v", err)
		}
	}
	t.Cleanup(func() { afterDependents = nil })
	if err := b.Purge(ctx, root.ID); err != nil {
		t.Fatalf("purge with a dependent deleted meanwhile: %v", err)
	}
	if !deleted {
		t.Fatal("nothing was deleted in the purge's window")
	}
	if _, err := b.Get(ctx, root.ID); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("get of the purged thread: %v, want ErrNotFound", err)
	}
}
