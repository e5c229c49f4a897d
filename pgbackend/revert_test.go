//go:build distributed

package pgbackend

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// TestRevertUnderLoad: reverts of a thread that other writers append turns
// to, while the sealer moves every byte it can into segments, leave a
// history Codex can read and an index that agrees with it: the lines
// numbered 0, 1, 2, ... without a gap, every user message the index
// counts a user message line at its offset, and nothing for Verify or
// Repair to report.
func TestRevertUnderLoad(t *testing.T) {
	ctx := t.Context()
	b, err := Open(ctx, Options{DSN: disttest.DSN(t), Bucket: disttest.Bucket(t), SealBytes: 1, SealEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
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
