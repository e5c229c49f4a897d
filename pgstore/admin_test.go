//go:build distributed

package pgstore

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/objstore"
)

func TestRenameAndArchive(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	id, _ := parentWith(t, s, 1)
	if err := rename(t, s, id, "named"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetArchived(t.Context(), id, true); err != nil {
		t.Fatal(err)
	}
	active, err := s.List(t.Context(), ListOptions{Archived: new(false)})
	if err != nil || len(active) != 0 {
		t.Fatalf("active list: %v, %v; want empty", active, err)
	}
	archived, err := s.List(t.Context(), ListOptions{Archived: new(true)})
	if err != nil || len(archived) != 1 || archived[0].Name != "named" || !archived[0].Archived {
		t.Fatalf("archived list: %+v, %v", archived, err)
	}
	if err := rename(t, s, newID(t), "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rename of a missing thread: %v", err)
	}
}

// TestArchiveTwice: archiving checks and changes the row in one statement,
// so of two archives (two nodes' at once, each having read the thread as
// active) the second is told the thread is archived, and the same for
// unarchive; a missing thread is not found.
func TestArchiveTwice(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	id, _ := parentWith(t, s, 1)
	for _, archived := range []bool{true, false} {
		if _, err := s.SetArchived(t.Context(), id, archived); err != nil {
			t.Fatal(err)
		}
		want := map[bool]error{true: ErrArchived, false: ErrNotArchived}[archived]
		if _, err := s.SetArchived(t.Context(), id, archived); !errors.Is(err, want) {
			t.Fatalf("set archived %t twice: %v, want %v", archived, err, want)
		}
	}
	if _, err := s.SetArchived(t.Context(), newID(t), true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("archive of a missing thread: %v", err)
	}
}

// verifiable returns a store with a sealed, grown parent and a fork of it,
// which verifies clean.
func verifiable(t *testing.T) (s *Store, parent, child string) {
	t.Helper()
	s = openStore(t, testDSN(t), newBucket(t))
	parent, _ = parentWith(t, s, 4)
	if _, err := s.Seal(t.Context(), parent, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(t.Context(), parent, userLine("unsealed"), -1); err != nil {
		t.Fatal(err)
	}
	child = newID(t)
	if _, err := s.Fork(t.Context(), Fork{ParentID: parent, ChildID: child, BeforeUserMessage: 2, Lines: metaLine(child)}); err != nil {
		t.Fatal(err)
	}
	if problems, err := s.Verify(t.Context()); err != nil || len(problems) != 0 {
		t.Fatalf("clean store: %v, %v", problems, err)
	}
	return s, parent, child
}

// TestVerify: each kind of damage to a store that verified clean is
// reported with what is wrong.
func TestVerify(t *testing.T) {
	cases := []struct {
		name, damage string
		want         string
	}{
		{"a chunk row lost", `DELETE FROM chunks WHERE thread_id = $1`, "chunks end at"},
		{"a base cut past its end", `UPDATE threads SET base_size = 1099511627776 WHERE id = $2`, "keeps"},
		{"a cycle", `UPDATE threads SET base_id = $2, base_size = 1 WHERE id = $1`, "cycle"},
		{"a segment object lost", `UPDATE segments SET object_key = object_key || '-gone' WHERE thread_id = $1`, "not found"},
		{"a user message lost", `DELETE FROM user_messages WHERE thread_id = $1 AND ordinal = 1`, "user messages"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, parent, child := verifiable(t)
			q := strings.NewReplacer("$1", "'"+parent+"'", "$2", "'"+child+"'").Replace(tc.damage)
			if _, err := s.pool.Exec(t.Context(), q); err != nil {
				t.Fatal(err)
			}
			problems, err := s.Verify(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(problems, func(p Problem) bool { return strings.Contains(p.Detail, tc.want) }) {
				t.Fatalf("problems %v do not mention %q", problems, tc.want)
			}
		})
	}
}

// TestCollectOrphans: an object no row names is deleted once older than
// the grace period; the objects of live segments, and young orphans, stay.
func TestCollectOrphans(t *testing.T) {
	bucket := newBucket(t)
	s := openStore(t, testDSN(t), bucket)
	id, before := parentWith(t, s, 3)
	if _, err := s.Seal(t.Context(), id, 1); err != nil {
		t.Fatal(err)
	}
	if err := bucket.PutNew(t.Context(), "segments/"+id+"/orphan", []byte("lost race")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CollectOrphans(t.Context(), time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("young orphan collected: %v, %v", got, err)
	}
	s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	got, err := s.CollectOrphans(t.Context(), time.Hour)
	if err != nil || !slices.Equal(got, []string{"segments/" + id + "/orphan"}) {
		t.Fatalf("collected %v, %v; want the orphan only", got, err)
	}
	if h := history(t, s, id); !bytes.Equal(h, before) {
		t.Fatal("a live segment was collected")
	}
}

// TestSealDuringACollection: an orphan left by a seal that never recorded
// its row holds the key its bytes name (as every seal named its object
// before keys had a random part); a collection that read the named keys
// before a later seal of the same bytes recorded its row deletes the
// orphan after. The seal writes an object of its own, so the row it
// records names an object that stays.
func TestSealDuringACollection(t *testing.T) {
	bucket := newBucket(t)
	s := openStore(t, testDSN(t), bucket)
	id, before := parentWith(t, s, 3)
	orphan := oldOrphanOf(t, s, bucket, id, before)
	afterNamedRead = func() {
		if sealed, err := s.Seal(t.Context(), id, 1); err != nil || !sealed {
			t.Errorf("seal during the collection: %v, %v", sealed, err)
		}
	}
	t.Cleanup(func() { afterNamedRead = nil })
	got, err := s.CollectOrphans(t.Context(), time.Hour)
	if err != nil || !slices.Equal(got, []string{orphan}) {
		t.Fatalf("collected %v, %v; want the orphan", got, err)
	}
	if h := history(t, s, id); !bytes.Equal(h, before) {
		t.Fatal("the sealed history differs")
	}
	if problems, err := s.Verify(t.Context()); err != nil || len(problems) > 0 {
		t.Fatalf("Verify after the collection: %v, %v", problems, err)
	}
}

// TestSealBetweenTwoCollections: two collections read the same old orphan
// at the key a seal of the same bytes would name; one deletes it, the seal
// writes its object and records its row, then the other deletes what it
// read as the orphan. The seal's object is under a key no object held
// before, so the other deletes nothing the row names.
func TestSealBetweenTwoCollections(t *testing.T) {
	bucket := newBucket(t)
	s := openStore(t, testDSN(t), bucket)
	id, before := parentWith(t, s, 3)
	orphan := oldOrphanOf(t, s, bucket, id, before)
	inner := false
	afterNamedRead = func() {
		if inner {
			return
		}
		inner = true
		if got, err := s.CollectOrphans(t.Context(), time.Hour); err != nil || !slices.Equal(got, []string{orphan}) {
			t.Errorf("the first collection: %v, %v; want the orphan", got, err)
		}
		if sealed, err := s.Seal(t.Context(), id, 1); err != nil || !sealed {
			t.Errorf("seal between the collections: %v, %v", sealed, err)
		}
	}
	t.Cleanup(func() { afterNamedRead = nil })
	if _, err := s.CollectOrphans(t.Context(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if h := history(t, s, id); !bytes.Equal(h, before) {
		t.Fatal("the sealed history differs")
	}
}

// oldOrphanOf puts thread id's own bytes, unsealed yet, into an object
// at the key they name (as every seal named its object before keys had a
// random part), as a seal that never recorded its row left it, and moves
// s's clock two hours on, so that the object is older than an hour's
// grace. It returns the key.
func oldOrphanOf(t *testing.T, s *Store, bucket objstore.Bucket, id string, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	key := fmt.Sprintf("segments/%s/%016x-%x", id, 0, sum[:16])
	if err := bucket.PutNew(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	return key
}

// TestRepair: user-message rows, counts and previews that drifted from the
// bytes are rebuilt from them, so Verify is clean again and the history is
// unchanged; a second Repair rewrites nothing; a thread whose bytes are
// gone is reported, not changed.
func TestRepair(t *testing.T) {
	s, parent, child := verifiable(t)
	before := history(t, s, parent)
	for _, damage := range []string{
		`DELETE FROM user_messages WHERE thread_id = '` + parent + `' AND ordinal = 1`,
		`UPDATE user_messages SET text = 'wrong' WHERE thread_id = '` + parent + `' AND ordinal = 2`,
		`UPDATE threads SET user_message_count = 99, preview = 'wrong', line_count = 1 WHERE id = '` + parent + `'`,
	} {
		if _, err := s.pool.Exec(t.Context(), damage); err != nil {
			t.Fatal(err)
		}
	}
	if problems, _ := s.Verify(t.Context()); len(problems) == 0 {
		t.Fatal("the damage went unnoticed by Verify")
	}
	repaired, problems, err := s.Repair(t.Context())
	if err != nil || len(problems) != 0 || !slices.Equal(repaired, []string{parent}) {
		t.Fatalf("Repair: %v, %v, %v; want the parent repaired", repaired, problems, err)
	}
	if problems, err := s.Verify(t.Context()); err != nil || len(problems) != 0 {
		t.Fatalf("verify after repair: %v, %v", problems, err)
	}
	th, err := s.Get(t.Context(), parent)
	if err != nil || th.UserMessageCount != 5 || th.Preview != "prompt 0" {
		t.Fatalf("repaired row: %+v, %v", th, err)
	}
	if m, err := s.UserMessage(t.Context(), parent, 2); err != nil || m.Text != "prompt 2" {
		t.Fatalf("message 2 after repair: %+v, %v", m, err)
	}
	if got := history(t, s, parent); !bytes.Equal(got, before) {
		t.Fatal("repair changed the history")
	}
	if again, _, err := s.Repair(t.Context()); err != nil || len(again) != 0 {
		t.Fatalf("second Repair rewrote %v, %v", again, err)
	}
	if _, err := s.pool.Exec(t.Context(), `DELETE FROM chunks WHERE thread_id = $1`, child); err != nil {
		t.Fatal(err)
	}
	repaired, problems, err = s.Repair(t.Context())
	if err != nil || len(repaired) != 0 || len(problems) != 1 || problems[0].ThreadID != child {
		t.Fatalf("Repair with a thread's bytes gone: %v, %v, %v; want one problem naming it", repaired, problems, err)
	}
}

// TestRepairKeepsRollbacks: a fork whose own rollback dropped messages it
// inherited verifies clean, and Repair, which recounts from the bytes,
// leaves it as the appends left it (the rollback is applied once).
func TestRepairKeepsRollbacks(t *testing.T) {
	s, _, child := verifiable(t) // the child inherits 2 messages
	rollback := []byte(`{"timestamp":"2026-01-01T00:00:00.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":2}}` + "\n")
	res, err := s.Append(t.Context(), child, slices.Concat(userLine("own"), rollback, userLine("after")), -1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Thread.UserMessageCount != 2 || res.Thread.InheritedMessages != 1 {
		t.Fatalf("after a rollback of 2 past one own message: %d messages, %d inherited; want 2 and 1", res.Thread.UserMessageCount, res.Thread.InheritedMessages)
	}
	if problems, err := s.Verify(t.Context()); err != nil || len(problems) != 0 {
		t.Fatalf("verify: %v, %v", problems, err)
	}
	if repaired, problems, err := s.Repair(t.Context()); err != nil || len(repaired) != 0 || len(problems) != 0 {
		t.Fatalf("Repair rewrote %v (%v, %v); want nothing", repaired, problems, err)
	}
	msgs, err := s.UserMessages(t.Context(), child)
	if err != nil || len(msgs) != 2 || msgs[1].Text != "after" {
		t.Fatalf("messages after repair: %+v, %v", msgs, err)
	}
}

// TestRollbackUnderForksRefused: a rollback that would drop user messages
// a reference fork inherits is refused (ReferencedError), nothing written,
// the fork's messages intact; one that drops only messages past the
// forks' cuts is taken.
func TestRollbackUnderForksRefused(t *testing.T) {
	s, parent, child := verifiable(t) // the child inherits 2 of the parent's 5 messages
	rollback := func(n int) []byte {
		return fmt.Appendf(nil, `{"timestamp":"2026-01-01T00:00:00.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":%d}}`+"\n", n)
	}
	before := history(t, s, parent)
	var referenced *ReferencedError
	if _, err := s.Append(t.Context(), parent, rollback(4), -1); !errors.As(err, &referenced) || !slices.Equal(referenced.Forks, []string{child}) {
		t.Fatalf("a rollback into what a fork inherits: %v, want a ReferencedError naming the fork", err)
	}
	if got := history(t, s, parent); !bytes.Equal(got, before) {
		t.Fatal("a refused rollback wrote")
	}
	if msgs, err := s.UserMessages(t.Context(), child); err != nil || len(msgs) != 2 {
		t.Fatalf("the fork's messages: %d, %v; want 2", len(msgs), err)
	}
	res, err := s.Append(t.Context(), parent, rollback(3), -1)
	if err != nil || res.Thread.UserMessageCount != 2 {
		t.Fatalf("a rollback past the fork's cut: %+v, %v; want it taken, 2 messages left", res.Thread, err)
	}
	if problems, err := s.Verify(t.Context()); err != nil || len(problems) != 0 {
		t.Fatalf("verify: %v, %v", problems, err)
	}
}

// TestVerifyWithARevertMeanwhile: Verify reads one snapshot of the
// database, but the objects of segments in the bucket as they are: a
// revert committed meanwhile deletes the objects of the segments it
// dropped, which the snapshot still names. That is no problem: the rows
// that named them are gone too.
func TestVerifyWithARevertMeanwhile(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testDSN(t), newBucket(t))
	id := createPaginated(t, s)
	appendTurn := func(turn string) {
		t.Helper()
		lines := slices.Concat(turnLine("event_msg", "task_started", turn), userLine("prompt "+turn), turnLine("event_msg", "task_complete", turn))
		if _, err := s.Append(ctx, id, lines, -1); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Seal(ctx, id, 1); err != nil {
			t.Fatal(err)
		}
	}
	appendTurn("turn-a")
	appendTurn("turn-b")
	// Its bytes move into a link; the new head holds a segment of its own,
	// which the revert in Verify's window (into the link) drops.
	if _, err := s.Revert(ctx, Revert{ID: id, TurnID: "turn-b"}); err != nil {
		t.Fatal(err)
	}
	appendTurn("turn-c")
	revertedIn := 0
	beforeSegmentCheck = func(thread string) {
		if thread != id || revertedIn > 0 {
			return
		}
		revertedIn++
		if _, err := s.Revert(ctx, Revert{ID: id, TurnID: "turn-a"}); err != nil {
			t.Errorf("revert in Verify's window: %v", err)
		}
	}
	t.Cleanup(func() { beforeSegmentCheck = nil })
	problems, err := s.Verify(ctx)
	if revertedIn != 1 {
		t.Fatalf("%d reverts landed in Verify's window, want 1", revertedIn)
	}
	if err != nil || len(problems) != 0 {
		t.Fatalf("Verify with a revert meanwhile: %v, %v; want no problem", problems, err)
	}
}

// TestRepairWithADeleteMeanwhile: Repair lists the threads, then repairs
// each under its row lock; one deleted in between (or a link a revert
// dropped) is no problem.
func TestRepairWithADeleteMeanwhile(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testDSN(t), newBucket(t))
	ids := []string{createPaginated(t, s), createPaginated(t, s)}
	deleted := ""
	beforeRepairThread = func(id string) {
		if deleted != "" {
			return
		}
		deleted = ids[0]
		if id == ids[0] {
			deleted = ids[1]
		}
		if err := s.Delete(ctx, deleted); err != nil {
			t.Errorf("delete in Repair's window: %v", err)
		}
	}
	t.Cleanup(func() { beforeRepairThread = nil })
	repaired, problems, err := s.Repair(ctx)
	if deleted == "" {
		t.Fatal("nothing was deleted in Repair's window")
	}
	if err != nil || len(repaired) != 0 || len(problems) != 0 {
		t.Fatalf("Repair with %s deleted meanwhile: repaired %v, problems %v, %v; want nothing", deleted, repaired, problems, err)
	}
}

// TestSealSlowerThanTheGrace: a seal whose row comes more than the grace
// after its object (a sealer paused, or waiting on the thread's row lock)
// meets a collection in between, which reads the object as an old orphan
// and deletes it. The seal must then not record a row naming the deleted
// object: it used to, and the thread's sealed bytes were lost (its chunks
// deleted, its segment's object gone). Nothing is lost, and a later seal
// seals the bytes.
func TestSealSlowerThanTheGrace(t *testing.T) {
	bucket := newBucket(t)
	s := openStore(t, testDSN(t), bucket)
	id, before := parentWith(t, s, 3)
	var collected []string
	afterSegmentPut = func(key string) {
		afterSegmentPut = nil
		s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		var err error
		if collected, err = s.CollectOrphans(t.Context(), time.Hour); err != nil {
			t.Errorf("collection during the seal: %v", err)
		}
	}
	t.Cleanup(func() { afterSegmentPut = nil })
	if _, err := s.Seal(t.Context(), id, 1); err != nil {
		t.Fatalf("seal that met a collection: %v", err)
	}
	if problems, err := s.Verify(t.Context()); err != nil || len(problems) > 0 {
		t.Fatalf("Verify after the seal (collected %v): %v, %v", collected, problems, err)
	}
	if h := history(t, s, id); !bytes.Equal(h, before) {
		t.Fatal("the history differs after the seal")
	}
	if sealed, err := s.Seal(t.Context(), id, 1); err != nil || !sealed {
		t.Fatalf("a later seal: %v, %v; want the bytes sealed", sealed, err)
	}
	if h := history(t, s, id); !bytes.Equal(h, before) {
		t.Fatal("the history differs after the later seal")
	}
}
