//go:build distributed

package pgbackend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/backendtest"
	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/rollout"
)

// openSealing opens a backend whose sealer seals every byte it can, as
// often as it can, closed when the test ends.
func openSealing(t *testing.T) *Backend {
	t.Helper()
	b, err := Open(t.Context(), Options{DSN: disttest.DSN(t), Bucket: disttest.Bucket(t), SealBytes: 1, SealEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// openUnsealed opens a backend whose sealer does not run during a test
// (the test seals when it wants to), closed when the test ends.
func openUnsealed(t *testing.T) *Backend {
	t.Helper()
	b, err := Open(t.Context(), Options{DSN: disttest.DSN(t), Bucket: disttest.Bucket(t), SealEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestRevertUnderLoad: reverts of a thread that other writers append turns
// to, while the sealer moves every byte it can into segments, leave a
// history Codex can read and an index that agrees with it: the lines
// numbered 0, 1, 2, ... without a gap, every user message the index
// counts a user message line at its offset, and nothing for Verify or
// Repair to report.
func TestRevertUnderLoad(t *testing.T) {
	ctx := t.Context()
	b := openSealing(t)
	th, err := b.Start(ctx, manager.StartOptions{Cwd: "/work", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	turn := func(id string) error {
		_, err := b.AppendTurn(ctx, th.ID, manager.TurnOptions{TurnID: id, Prompt: "prompt " + id, Answer: "answer"})
		return err
	}
	if err := turn("first"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for w := range 3 {
		writers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := turn(fmt.Sprintf("w%d-%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	one := 1
	for i := range 20 {
		if err := turn(fmt.Sprintf("main-%d", i)); err != nil {
			t.Error(err)
			break
		}
		if _, err := b.Revert(ctx, th.ID, manager.RevertOptions{BeforeUserMessage: &one}); err != nil {
			t.Errorf("revert %d: %v", i, err)
			break
		}
	}
	close(stop)
	writers.Wait()

	rc, _, err := b.ReadAfter(ctx, th.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	starts := map[int64]bool{}
	var off int64
	for i, line := range bytes.SplitAfter(h, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		raw := bytes.TrimSuffix(line, []byte{'\n'})
		if n, ok, err := rollout.LineOrdinal(raw); err != nil || !ok || n != int64(i) {
			t.Fatalf("line %d has ordinal %d (%v, %v), want %d", i, n, ok, err, i)
		}
		if rollout.Classify(rollout.NewLine(raw, off, int64(i))).Kind == rollout.KindUserMessage {
			starts[off] = true
		}
		off += int64(len(line))
	}
	msgs, err := b.UserMessages(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(starts) {
		t.Fatalf("the index counts %d user messages, the history holds %d", len(msgs), len(starts))
	}
	for _, m := range msgs {
		if !starts[m.Offset] {
			t.Fatalf("user message %d at %d: no user message line starts there", m.Ordinal, m.Offset)
		}
	}
	if problems, err := b.Store().Verify(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("Verify: %v, %v", problems, err)
	}
	if repaired, problems, err := b.Store().Repair(ctx); err != nil || len(repaired) > 0 || len(problems) > 0 {
		t.Fatalf("Repair rewrote %v (problems %v, %v), want nothing", repaired, problems, err)
	}
}

// TestPurgeUnderARevert: a reference fork reverted inside its own part
// keeps reading its history through its base (the fork's link holds the
// fork's bytes before the cut and names the base); purging that base
// makes the fork self-contained first, its links with it, and the fork
// then says what it said. (backendtest's RevertReferenceFork runs the
// same shape on both backends; this test adds the sealer and the links.)
func TestPurgeUnderARevert(t *testing.T) {
	ctx := t.Context()
	b := openSealing(t)
	base, fork := revertedReferenceFork(t, b)
	want := backendtest.Said(t, b, fork.ID)
	if len(want) == 0 || !strings.Contains(strings.Join(want, "\n"), "prompt turn-x") || strings.Contains(strings.Join(want, "\n"), "prompt turn-y") {
		t.Fatalf("the reverted fork says %q, want turn-a, turn-b and turn-x", want)
	}
	if err := b.Delete(ctx, base.ID); !errors.Is(err, manager.ErrReferenced) {
		t.Fatalf("delete of the base of a reverted fork: %v, want ErrReferenced", err)
	}
	if err := b.Purge(ctx, base.ID); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, fork.ID)
	if err != nil || got.UserMessageCount != 3 || got.BaseID != "" {
		t.Fatalf("the fork after the purge of its base: %+v, %v; want 3 user messages, no base", got, err)
	}
	if after := backendtest.Said(t, b, fork.ID); !slices.Equal(after, want) {
		t.Fatalf("the fork says %d items after the purge of its base, %d before", len(after), len(want))
	}
	if problems, err := b.Store().Verify(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("Verify: %v, %v", problems, err)
	}
}

// revertedReferenceFork starts a paginated thread on b with the turns
// turn-a, turn-b and turn-c, forks it by reference after turn-b, appends
// turn-x and turn-y to the fork and reverts the fork before turn-y: a
// reference fork reverted inside its own part.
func revertedReferenceFork(t *testing.T, b *Backend) (base, fork manager.Thread) {
	t.Helper()
	ctx := t.Context()
	turns := func(id string, turns ...string) {
		t.Helper()
		for _, turn := range turns {
			if _, err := b.AppendTurn(ctx, id, manager.TurnOptions{TurnID: turn, Prompt: "prompt " + turn, Answer: "answer " + turn}); err != nil {
				t.Fatal(err)
			}
		}
	}
	base, err := b.Start(ctx, manager.StartOptions{Cwd: "/work", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	turns(base.ID, "turn-a", "turn-b", "turn-c")
	if fork, err = b.Fork(ctx, base.ID, manager.ForkOptions{LastTurnID: "turn-b"}); err != nil {
		t.Fatal(err)
	}
	turns(fork.ID, "turn-x", "turn-y")
	if _, err := b.Revert(ctx, fork.ID, manager.RevertOptions{BeforeTurnID: "turn-y"}); err != nil {
		t.Fatal(err)
	}
	return base, fork
}

// undeletableBucket fails every Delete, as a bucket that cannot be
// reached does.
type undeletableBucket struct{ objstore.Bucket }

func (undeletableBucket) Delete(context.Context, string) error { return errRefused }

// TestRevertDoneWhenItsObjectsStay: a revert whose dropped segments'
// objects the bucket does not delete is committed, and says so: it
// answers the reverted thread, not an error a caller would follow by
// reverting again.
func TestRevertDoneWhenItsObjectsStay(t *testing.T) {
	ctx := t.Context()
	b, th := openUndeletable(t)
	ask := func(text string) {
		t.Helper()
		if _, err := b.AppendTurn(ctx, th.ID, manager.TurnOptions{Prompt: text, Answer: "noted"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Store().Seal(ctx, th.ID, 1); err != nil {
			t.Fatal(err)
		}
	}
	ask("one")
	ask("two")
	one := 1
	// The first revert moves the sealed bytes to a link; the second cuts
	// in that link, which drops the sealed segment of what came after.
	if _, err := b.Revert(ctx, th.ID, manager.RevertOptions{BeforeUserMessage: &one}); err != nil {
		t.Fatal(err)
	}
	ask("three")
	zero := 0
	got, err := b.Revert(ctx, th.ID, manager.RevertOptions{BeforeUserMessage: &zero})
	if err != nil || got.UserMessageCount != 0 {
		t.Fatalf("revert: %d user messages, %v; want none and no error", got.UserMessageCount, err)
	}
}

// TestPurgeDoneWhenItsObjectsStay: a purge, and the rewrite of the fork it
// makes self-contained, whose segments' objects the bucket does not delete
// are committed, and say so: the purge answers no error a caller would
// follow by purging again (to be told not found).
func TestPurgeDoneWhenItsObjectsStay(t *testing.T) {
	ctx := t.Context()
	b, th := openUndeletable(t)
	if _, err := b.AppendTurn(ctx, th.ID, manager.TurnOptions{Prompt: "one", Answer: "noted"}); err != nil {
		t.Fatal(err)
	}
	fork, err := b.Fork(ctx, th.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendTurn(ctx, fork.ID, manager.TurnOptions{Prompt: "two", Answer: "noted"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{th.ID, fork.ID} {
		if _, err := b.Store().Seal(ctx, id, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Purge(ctx, th.ID); err != nil {
		t.Fatalf("purge: %v, want none", err)
	}
	if got, err := b.Get(ctx, fork.ID); err != nil || got.BaseID != "" || got.UserMessageCount != 2 {
		t.Fatalf("the fork after the purge: %+v, %v; want self-contained with 2 user messages", got, err)
	}
}

// openUndeletable opens a backend whose bucket refuses deletes and that
// seals only when asked, and starts a thread on it.
func openUndeletable(t *testing.T) (*Backend, manager.Thread) {
	b, err := Open(t.Context(), Options{DSN: disttest.DSN(t), Bucket: undeletableBucket{disttest.Bucket(t)}, SealEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	th, err := b.Start(t.Context(), manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	return b, th
}

// TestReadTurnOfAThreadRevertedMeanwhile: reading turn k (or the history
// from it) finds where user messages k and k+1 start, then reads the
// history between; a revert before message k and a new turn committed in
// between make those positions name other bytes. The read answers as the
// thread stands then, as a read after it does.
func TestReadTurnOfAThreadRevertedMeanwhile(t *testing.T) {
	ctx := t.Context()
	b := openUnsealed(t)
	for _, tc := range []struct {
		name string
		read func(id string) (io.ReadCloser, error)
	}{
		{"ReadTurn", func(id string) (io.ReadCloser, error) { return b.ReadTurn(ctx, id, 1) }},
		{"ReadFrom", func(id string) (io.ReadCloser, error) { return b.ReadFrom(ctx, id, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th, err := b.Start(ctx, manager.StartOptions{Cwd: "/work"})
			if err != nil {
				t.Fatal(err)
			}
			turn := func(prompt string) {
				t.Helper()
				if _, err := b.AppendTurn(ctx, th.ID, manager.TurnOptions{Prompt: prompt, Answer: "an answer"}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				turn(fmt.Sprintf("prompt %d", i))
			}
			readAll := func() string {
				t.Helper()
				rc, err := tc.read(th.ID)
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				got, err := io.ReadAll(rc)
				if err != nil {
					t.Fatal(err)
				}
				return string(got)
			}
			reverted := false
			beforeTurnRead = func(id string) {
				if id != th.ID || reverted {
					return
				}
				reverted = true
				if _, err := b.store.Revert(ctx, pgstore.Revert{ID: th.ID, BeforeUserMessage: 0}); err != nil {
					t.Errorf("revert in the read's window: %v", err)
				}
				for _, p := range []string{"another prompt", "a prompt of some length, longer than the first three"} {
					turn(p)
				}
			}
			t.Cleanup(func() { beforeTurnRead = nil })
			got := readAll()
			if !reverted {
				t.Fatal("no revert landed in the read's window")
			}
			beforeTurnRead = nil
			if want := readAll(); got != want {
				t.Fatalf("read of message 1 with a revert meanwhile:\n%s\nwant, as read after it:\n%s", got, want)
			}
		})
	}
}
