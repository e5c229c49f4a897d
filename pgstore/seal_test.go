//go:build distributed

package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/rollout"
)

// TestSealedThreadsReadTheSame: sealing moves bytes from chunk rows into
// objects and changes no history, for a thread, its later appends and a
// fork through a sealed base.
func TestSealedThreadsReadTheSame(t *testing.T) {
	s := openStore(t, testDSN(t), newBucket(t))
	parent, before := parentWith(t, s, 5)
	sealed, err := s.Seal(t.Context(), parent, 1)
	if err != nil || !sealed {
		t.Fatalf("Seal: %v, %v", sealed, err)
	}
	var chunks int
	if err := s.pool.QueryRow(t.Context(), `SELECT COUNT(*) FROM chunks WHERE thread_id = $1`, parent).Scan(&chunks); err != nil {
		t.Fatal(err)
	}
	if chunks != 0 {
		t.Fatalf("%d chunk rows left after the seal, want 0", chunks)
	}
	if got := history(t, s, parent); !bytes.Equal(got, before) {
		t.Fatal("sealed history differs")
	}
	if again, err := s.Seal(t.Context(), parent, 1); err != nil || again {
		t.Fatalf("Seal of nothing new: %v, %v", again, err)
	}
	more := append(userLine("after the seal"), otherLine(9)...)
	if _, err := s.Append(t.Context(), parent, more, int64(len(before))); err != nil {
		t.Fatal(err)
	}
	child := newID(t)
	if _, err := s.Fork(t.Context(), Fork{ParentID: parent, ChildID: child, BeforeUserMessage: 5, Lines: metaLine(child)}); err != nil {
		t.Fatal(err)
	}
	if sealed, err := s.Seal(t.Context(), parent, 1); err != nil || !sealed {
		t.Fatalf("second Seal: %v, %v", sealed, err)
	}
	if got, want := history(t, s, parent), append(bytes.Clone(before), more...); !bytes.Equal(got, want) {
		t.Fatal("history after two seals differs")
	}
	if got, want := history(t, s, child), append(bytes.Clone(before), metaLine(child)...); !bytes.Equal(got, want) {
		t.Fatal("a fork through a sealed base reads differently")
	}
	if _, err := openStore(t, testDSN(t), nil).Seal(t.Context(), parent, 1); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("Seal without a bucket: got %v, want ErrNoBucket", err)
	}
}

// TestSealWhileAppendingAndReading: two nodes append to one thread while a
// third seals it over and over and readers read it; every read is a prefix
// of the final history, and the final history holds every acknowledged line
// where it was acknowledged.
func TestSealWhileAppendingAndReading(t *testing.T) {
	dsn, bucket := testDSN(t), gatewayBucket(t)
	nodes := []*Store{openStore(t, dsn, bucket), openStore(t, dsn, bucket), openStore(t, dsn, bucket)}
	id := newID(t)
	if _, err := nodes[0].Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		offset int64
		line   []byte
	}
	var (
		mu    sync.Mutex
		acks  []ack
		reads [][]byte
		done  atomic.Bool
		seals atomic.Int64
		wg    sync.WaitGroup
		bg    sync.WaitGroup
	)
	for n := range 2 {
		for w := range 3 {
			wg.Go(func() {
				for i := range 20 {
					line := userLine(fmt.Sprintf("node %d writer %d line %d", n, w, i))
					res, err := nodes[n].Append(t.Context(), id, line, -1)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					acks = append(acks, ack{res.Offset, line})
					mu.Unlock()
				}
			})
		}
	}
	bg.Go(func() {
		for !done.Load() {
			ok, err := nodes[2].Seal(t.Context(), id, 1)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				seals.Add(1)
			}
		}
	})
	bg.Go(func() {
		for !done.Load() {
			var b bytes.Buffer
			if _, err := nodes[2].WriteHistory(t.Context(), &b, id, 0); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			reads = append(reads, b.Bytes())
			mu.Unlock()
		}
	})
	wg.Wait()
	done.Store(true)
	bg.Wait()
	final := history(t, nodes[1], id)
	for _, a := range acks {
		if !bytes.Equal(final[a.offset:a.offset+int64(len(a.line))], a.line) {
			t.Fatalf("acknowledged line at %d missing", a.offset)
		}
	}
	for i, r := range reads {
		if !bytes.HasPrefix(final, r) {
			t.Fatalf("read %d (%d bytes) is not a prefix of the final history", i, len(r))
		}
	}
	if seals.Load() == 0 || len(reads) == 0 {
		t.Fatalf("%d seals and %d reads ran during the appends; the test proved nothing", seals.Load(), len(reads))
	}
	t.Logf("%d appends, %d seals, %d reads", len(acks), seals.Load(), len(reads))
}

// TestSealBoundsSegments (issue #17): a thread whose unsealed bytes pass
// maxSegment is sealed into several segments of whole chunks, none holding
// more than maxSegment and a chunk, and reads the same through ranged
// reads of readPiece bytes.
func TestSealBoundsSegments(t *testing.T) {
	oldSegment, oldPiece := maxSegment, readPiece
	maxSegment, readPiece = 64<<10, 10<<10
	t.Cleanup(func() { maxSegment, readPiece = oldSegment, oldPiece })
	s := openStore(t, testDSN(t), newBucket(t))
	id := newID(t)
	if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); err != nil {
		t.Fatal(err)
	}
	var chunk []byte
	for i := 0; len(chunk) < 40<<10; i++ {
		chunk = append(chunk, otherLine(i)...)
	}
	for range 5 { // 200 KiB in chunks of 40
		if _, err := s.Append(t.Context(), id, chunk, -1); err != nil {
			t.Fatal(err)
		}
	}
	before := history(t, s, id)
	if sealed, err := s.Seal(t.Context(), id, 1); err != nil || !sealed {
		t.Fatalf("Seal: %v, %v", sealed, err)
	}
	rows, err := s.pool.Query(t.Context(), `SELECT end_offset - start_offset FROM segments WHERE thread_id = $1 ORDER BY start_offset`, id)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(sizes) < 3 {
		t.Fatalf("segments of %v bytes, want at least 3", sizes)
	}
	for _, n := range sizes {
		if n > maxSegment+int64(len(chunk)) {
			t.Fatalf("segments of %v bytes: one passes %d by more than a chunk", sizes, maxSegment)
		}
	}
	if th, err := s.Get(t.Context(), id); err != nil || th.SealedSize != th.Size {
		t.Fatalf("after the seal: %d of %d bytes sealed, %v", th.SealedSize, th.Size, err)
	}
	if got := history(t, s, id); !bytes.Equal(got, before) {
		t.Fatal("the sealed history reads differently")
	}
}

// TestUnsealedUsesItsIndex: the sealer's query, run every second on every
// node, is answered from threads_unsealed, not by a scan of every thread.
// Sequential scans are switched off so that the plan shows whether the
// index can serve the query at all (on a table this small the planner
// would rightly scan it).
func TestUnsealedUsesItsIndex(t *testing.T) {
	s := openStore(t, testDSN(t), newBucket(t))
	ctx := t.Context()
	for range 3 {
		parentWith(t, s, 2)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `ANALYZE threads`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), `RESET enable_seqscan`)
	var plan string
	for _, q := range []string{`PREPARE unsealed AS ` + unsealedSQL, `SET plan_cache_mode = force_generic_plan`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer conn.Exec(context.Background(), `DEALLOCATE unsealed; RESET plan_cache_mode`)
	rows, err := conn.Query(ctx, `EXPLAIN EXECUTE unsealed(1, 16)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan += line + "\n"
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "threads_unsealed") {
		t.Fatalf("the sealer's query does not use threads_unsealed:\n%s", plan)
	}
	ids, err := s.Unsealed(ctx, 1, 16)
	if err != nil || len(ids) != 3 {
		t.Fatalf("Unsealed: %v, %v; want the three threads", ids, err)
	}
}

// TestVerifyWhileSealing: Verify reads one snapshot, so a thread that is
// appended to and sealed while it runs shows no drift (read in pieces, a
// seal committed between reading a thread's row and its chunks looked like
// chunks missing: clustertest.TestSurvivesRestarts failed so).
func TestVerifyWhileSealing(t *testing.T) {
	s := openStore(t, testDSN(t), newBucket(t))
	ctx := t.Context()
	id, h := parentWith(t, s, 2)
	size := int64(len(h))
	done := make(chan error, 1)
	go func() {
		for i := range 40 {
			line := userLine(fmt.Sprintf("while verifying %d", i))
			if _, err := s.Append(ctx, id, line, size); err != nil {
				done <- err
				return
			}
			size += int64(len(line))
			if _, err := s.Seal(ctx, id, 1); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for verified := 0; ; verified++ {
		problems, err := s.Verify(ctx)
		if err != nil || len(problems) > 0 {
			<-done
			t.Fatalf("Verify %d while sealing: %v, %v", verified, problems, err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d verifies during 40 appends and seals", verified+1)
			return
		default:
		}
	}
}

// TestHistoryReadsInPieces: a history read a piece at a time, pieces
// smaller than its chunks and its segments' ranged reads, from sealed and
// unsealed bytes, says from any position what was appended.
func TestHistoryReadsInPieces(t *testing.T) {
	oldSegment, oldRead, oldPiece := maxSegment, readPiece, pieceBytes
	maxSegment, readPiece, pieceBytes = 64<<10, 10<<10, 8<<10
	t.Cleanup(func() { maxSegment, readPiece, pieceBytes = oldSegment, oldRead, oldPiece })
	s := openStore(t, testDSN(t), newBucket(t))
	id := newID(t)
	want := metaLine(id)
	if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: want}); err != nil {
		t.Fatal(err)
	}
	appendChunk := func(size int) {
		var chunk []byte
		for i := 0; len(chunk) < size; i++ {
			chunk = append(chunk, otherLine(i)...)
		}
		if _, err := s.Append(t.Context(), id, chunk, -1); err != nil {
			t.Fatal(err)
		}
		want = append(want, chunk...)
	}
	for range 3 {
		appendChunk(40 << 10)
	}
	if _, err := s.Seal(t.Context(), id, 1); err != nil {
		t.Fatal(err)
	}
	appendChunk(30 << 10)
	for range 20 {
		appendChunk(100)
	}
	sealed := int64(3*40<<10) + int64(len(metaLine(id)))
	for _, from := range []int64{0, 1, pieceBytes + 3, sealed - 1, sealed, sealed + 1, int64(len(want)) - 1, int64(len(want))} {
		rc, end, err := s.OpenHistory(t.Context(), id, from, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || end != int64(len(want)) || !bytes.Equal(got, want[from:]) {
			t.Fatalf("from %d: %d bytes to %d, %v; want the %d appended from there", from, len(got), end, err, len(want)-int(from))
		}
	}
}

// TestReadAcrossADeleteAndARecreate: a history read that began on a
// thread that is then purged and created again with the same id (another
// incarnation) fails with ErrChanged at its next piece, rather than go on
// with the new thread's bytes.
func TestReadAcrossADeleteAndARecreate(t *testing.T) {
	old := pieceBytes
	pieceBytes = 4 << 10
	t.Cleanup(func() { pieceBytes = old })
	s := openStore(t, testDSN(t), nil)
	id := newID(t)
	if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); err != nil {
		t.Fatal(err)
	}
	for i := range 200 { // many chunks, so the read takes several pieces
		if _, err := s.Append(t.Context(), id, userLine(fmt.Sprintf("FIRST prompt %d", i)), -1); err != nil {
			t.Fatal(err)
		}
	}
	rc, _, err := s.OpenHistory(t.Context(), id, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	second := metaLine(id)
	for i := 0; len(second) < 64<<10; i++ {
		second = append(second, userLine(fmt.Sprintf("SECOND prompt %d", i))...)
	}
	if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: second}); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	if !errors.Is(err, ErrChanged) || bytes.Contains(rest, []byte("SECOND")) {
		t.Fatalf("read on after a delete and a recreate: %d bytes (the new thread's: %v), %v; want ErrChanged",
			len(rest), bytes.Contains(rest, []byte("SECOND")), err)
	}
}

// TestForkThroughABaseSealedMeanwhile: a reference fork cut in its
// parent's base reads the base's row, then the base's last bytes for the
// ordinal at the cut; a seal that moves those bytes into a segment in
// between (a fork's transaction reads committed rows, not one snapshot)
// is seen, and the fork numbers its meta as without the seal.
func TestForkThroughABaseSealedMeanwhile(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testDSN(t), newBucket(t))
	base := createPaginated(t, s)
	appendTurns(t, s, base, "turn-a", "turn-b")
	whole := paginatedFork(t, s, Fork{ParentID: base, BeforeUserMessage: -1})
	// Cut where the whole fork's own bytes start: base holds the cut.
	cut := Fork{ParentID: whole.ID, BeforeUserMessage: -1, At: &Cut{Offset: whole.BaseSize, Messages: whole.InheritedMessages}}
	want := paginatedFork(t, s, cut)
	sealedIn := 0
	beforeOrdinalRead = func(holder string) {
		if holder != base {
			return
		}
		if sealed, err := s.Seal(ctx, base, 1); err != nil {
			t.Errorf("seal in the fork's window: %v", err)
		} else if sealed {
			sealedIn++
		}
	}
	t.Cleanup(func() { beforeOrdinalRead = nil })
	got := paginatedFork(t, s, cut)
	if sealedIn != 1 {
		t.Fatalf("%d seals of %s landed in the fork's window, want 1", sealedIn, base)
	}
	checkSameFork(t, s, "the base sealed meanwhile", got, want, base)
}

// TestForkWhileItsBaseIsReverted: a reference fork cut in its parent's
// base reads the base's row without a lock, then, in the base, the bytes
// at the cut (for the ordinal of its meta) or the row of the message it
// is cut before; a revert of the base committed in between (at the
// parent's cut, which no fork continues past) moves those bytes, or that
// row, into a link. The fork finds them where they are now and is made as
// without the revert.
func TestForkWhileItsBaseIsReverted(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook *func(string) // called in the window, with the thread read
		cut  func(whole Thread) Fork
	}{
		{"at a position, reading the base's bytes", &beforeOrdinalRead, func(whole Thread) Fork {
			return Fork{ParentID: whole.ID, BeforeUserMessage: -1, At: &Cut{Offset: whole.BaseSize, Messages: whole.InheritedMessages}}
		}},
		{"before a message, reading the base's row of it", &beforeMessageRows, func(whole Thread) Fork {
			return Fork{ParentID: whole.ID, BeforeUserMessage: 0}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := openStore(t, testDSN(t), newBucket(t))
			base := createPaginated(t, s)
			appendTurns(t, s, base, "turn-a")
			whole := paginatedFork(t, s, Fork{ParentID: base, BeforeUserMessage: -1})
			appendTurns(t, s, base, "turn-b") // starts where the whole fork's base part ends
			want := paginatedFork(t, s, tc.cut(whole))
			revertedIn := 0
			*tc.hook = func(id string) {
				if id != base || revertedIn > 0 {
					return
				}
				revertedIn++
				if _, err := s.Revert(ctx, Revert{ID: base, TurnID: "turn-b"}); err != nil {
					t.Errorf("revert in the fork's window: %v", err)
				}
			}
			t.Cleanup(func() { *tc.hook = nil })
			got := paginatedFork(t, s, tc.cut(whole))
			if revertedIn != 1 {
				t.Fatalf("%d reverts of %s landed in the fork's window, want 1", revertedIn, base)
			}
			checkSameFork(t, s, "the base reverted meanwhile", got, want, base)
		})
	}
}

// appendTurns appends a Codex turn to thread id for each of turns: its
// task_started, a user message and its task_complete.
func appendTurns(t *testing.T, s *Store, id string, turns ...string) {
	t.Helper()
	for _, turn := range turns {
		lines := slices.Concat(turnLine("event_msg", "task_started", turn), userLine("prompt "+turn), turnLine("event_msg", "task_complete", turn))
		if _, err := s.Append(t.Context(), id, lines, -1); err != nil {
			t.Fatal(err)
		}
	}
}

// paginatedFork commits f as a paginated reference fork with a new child
// id and a meta naming its parent.
func paginatedFork(t *testing.T, s *Store, f Fork) Thread {
	t.Helper()
	f.ChildID = newID(t)
	f.Meta = &rollout.MetaPayload{SessionMeta: rollout.SessionMeta{ID: f.ChildID, ForkedFromID: f.ParentID, Timestamp: "2026-11-25T00:00:03.000Z"}}
	th, err := s.Fork(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

// checkSameFork fails t unless fork got, made while what says happened,
// has base as its base, want's cut and next ordinal, and want's history
// but for the child's id.
func checkSameFork(t *testing.T, s *Store, what string, got, want Thread, base string) {
	t.Helper()
	if got.BaseThreadID() != base || got.BaseSize != want.BaseSize || got.NextOrdinal != want.NextOrdinal {
		t.Fatalf("fork with %s: base %s at %d, next ordinal %d; without %s at %d, %d",
			what, got.BaseThreadID(), got.BaseSize, got.NextOrdinal, want.BaseThreadID(), want.BaseSize, want.NextOrdinal)
	}
	a := bytes.ReplaceAll(history(t, s, got.ID), []byte(got.ID), []byte(want.ID))
	if b := history(t, s, want.ID); !bytes.Equal(a, b) {
		t.Fatalf("fork with %s: the history differs but for the ids:\n%s\n%s", what, a, b)
	}
}

// TestMessagesOfAThreadRevertedMeanwhile: reading a thread's user
// messages reads its row, then its rows of messages; a revert committed
// in between moves those rows into a link. The read sees the thread as it
// was before the revert, not its old row with no messages.
func TestMessagesOfAThreadRevertedMeanwhile(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testDSN(t), newBucket(t))
	var id string
	for _, tc := range []struct {
		name string
		read func() (string, error)
	}{
		{"UserMessages", func() (string, error) {
			msgs, err := s.UserMessages(ctx, id)
			got := ""
			for _, m := range msgs {
				got += fmt.Sprintf("%d %s;", m.Ordinal, m.Text)
			}
			return got, err
		}},
		{"UserMessageOfTurn", func() (string, error) {
			m, err := s.UserMessageOfTurn(ctx, id, "turn-a")
			return fmt.Sprintf("%d %s %s;", m.Ordinal, m.Text, m.TurnID), err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id = createPaginated(t, s)
			for _, turn := range []string{"turn-a", "turn-b"} {
				lines := slices.Concat(turnLine("event_msg", "task_started", turn), userLine("prompt "+turn), turnLine("event_msg", "task_complete", turn))
				if _, err := s.Append(ctx, id, lines, -1); err != nil {
					t.Fatal(err)
				}
			}
			want, err := tc.read()
			if err != nil {
				t.Fatal(err)
			}
			// The revert moves the thread's messages into a link.
			revertedIn := 0
			beforeMessageRows = func(owner string) {
				if owner != id || revertedIn > 0 {
					return
				}
				revertedIn++
				if _, err := s.Revert(ctx, Revert{ID: id, BeforeUserMessage: 1}); err != nil {
					t.Errorf("revert in the read's window: %v", err)
				}
			}
			t.Cleanup(func() { beforeMessageRows = nil })
			got, err := tc.read()
			if revertedIn != 1 {
				t.Fatalf("%d reverts landed in the read's window, want 1", revertedIn)
			}
			if err != nil || got != want {
				t.Fatalf("read with a revert meanwhile: %q, %v; want %q", got, err, want)
			}
		})
	}
}

// TestSealOfAThreadRevertedMeanwhile: a seal reads a thread's row, then
// its unsealed chunks; a revert committed in between moves those chunks
// into a link. The seal reads the chunks of the row it read (the segment
// it writes is then not recorded, the thread's bytes being others) and
// does not fail; the next seal seals what the thread holds now.
func TestSealOfAThreadRevertedMeanwhile(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testDSN(t), newBucket(t))
	id := createPaginated(t, s)
	for _, turn := range []string{"turn-a", "turn-b"} {
		lines := slices.Concat(turnLine("event_msg", "task_started", turn), userLine("prompt "+turn), turnLine("event_msg", "task_complete", turn))
		if _, err := s.Append(ctx, id, lines, -1); err != nil {
			t.Fatal(err)
		}
	}
	revertedIn := 0
	beforeUnsealedRead = func(thread string) {
		if thread != id || revertedIn > 0 {
			return
		}
		revertedIn++
		if _, err := s.Revert(ctx, Revert{ID: id, BeforeUserMessage: 1}); err != nil {
			t.Errorf("revert in the seal's window: %v", err)
		}
	}
	t.Cleanup(func() { beforeUnsealedRead = nil })
	want := history(t, s, id) // before the revert
	if _, err := s.Seal(ctx, id, 1); err != nil {
		t.Fatalf("seal of a thread reverted meanwhile: %v", err)
	}
	if revertedIn != 1 {
		t.Fatalf("%d reverts landed in the seal's window, want 1", revertedIn)
	}
	if sealed, err := s.Seal(ctx, id, 1); err != nil || !sealed {
		t.Fatalf("seal after the revert: %v, %v; want the new head sealed", sealed, err)
	}
	got := history(t, s, id)
	turnB := bytes.Index(want, []byte(`"turn_id":"turn-b"`))
	if cut := bytes.LastIndexByte(want[:max(turnB, 0)], '\n') + 1; turnB < 0 || len(got) < cut || !bytes.Equal(got[:cut], want[:cut]) {
		t.Fatalf("the history after the revert and the seals:\n%s\nwant it to start as\n%s", got, want)
	}
}

// losingTransport carries requests to the gateway but loses the answer to
// the first PUT of a segment once the gateway has written it, as a
// connection that breaks then: the S3 client sends the PUT again.
type losingTransport struct {
	mu   sync.Mutex // guards lost
	lost bool
}

func (l *losingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || req.Method != http.MethodPut || !strings.Contains(req.URL.Path, "/segments/") {
		return resp, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return resp, nil
	}
	l.lost = true
	resp.Body.Close()
	return nil, errors.New("connection reset after the request was sent")
}

// TestSealPutAnswerLost: a seal whose segment was written but whose PUT's
// answer was lost meets its own object when the S3 client sends the PUT
// again (412). It used to fail (an orphan left, the bytes unsealed until
// another pass); it seals, and the object it records holds the bytes.
func TestSealPutAnswerLost(t *testing.T) {
	cfg := disttest.S3Config(t)
	transport := &losingTransport{}
	cfg.Transport = transport
	bucket, err := objstore.OpenS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, testDSN(t), bucket)
	id, before := parentWith(t, s, 3)
	if sealed, err := s.Seal(t.Context(), id, 1); err != nil || !sealed {
		t.Fatalf("Seal whose PUT answer was lost: %v, %v; want sealed", sealed, err)
	}
	if !transport.lost {
		t.Fatal("no PUT answer was lost: the test tested nothing")
	}
	if got := history(t, s, id); !bytes.Equal(got, before) {
		t.Fatal("sealed history differs")
	}
	objects, err := bucket.List(t.Context(), "segments/")
	if err != nil || len(objects) != 1 {
		t.Fatalf("objects after the seal: %v, %v; want the one recorded", objects, err)
	}
}
