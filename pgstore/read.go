package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/objstore"
)

// span is a range [lo, hi) of one thread's own bytes.
type span struct {
	threadID string
	lo, hi   int64
	sealed   int64 // the thread's sealed size: bytes below it are in segments
	era      Era   // the thread's era when the span was found
}

// chainSpans returns the spans whose bytes, in order, are t's history from
// position from to position to. Each base's spans end at the next thread's
// BaseSize, and a base never changes below that point, so the spans are a
// consistent snapshot as of t's row.
func chainSpans(ctx context.Context, q querier, t Thread, from, to int64) ([]span, error) {
	var spans []span
	end := to
	for {
		ownStart := t.BaseSize
		if end > ownStart {
			lo := max(from, ownStart)
			if lo < end {
				spans = append(spans, span{threadID: t.ID, lo: lo - ownStart, hi: end - ownStart, sealed: t.SealedSize, era: t.Era()})
			}
		}
		if t.BaseID == "" || from >= t.BaseSize {
			break
		}
		end = min(end, t.BaseSize)
		base, err := getThread(ctx, q, t.BaseID, "")
		if err != nil {
			return nil, fmt.Errorf("base %s: %w", t.BaseID, err)
		}
		t = base
	}
	for i, j := 0, len(spans)-1; i < j; i, j = i+1, j-1 {
		spans[i], spans[j] = spans[j], spans[i]
	}
	return spans, nil
}

// chunkPage is how many chunk rows one query reads.
const chunkPage = 256

// WriteHistory writes thread id's history from position from to its end
// (as of the call) to w and returns the number of bytes written. It reads
// as OpenHistory does, a piece at a time, holding no database connection
// while it writes to w.
func (s *Store) WriteHistory(ctx context.Context, w io.Writer, id string, from int64) (int64, error) {
	rc, _, err := s.openHistory(ctx, id, nil, from, -1)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(w, rc)
}

// pieceBytes bounds the bytes of chunks one piece of a history read takes
// (historyReader): the chunks that start within this many bytes, each
// whole, or one ranged read of a segment (readPiece). A variable for
// tests.
var pieceBytes int64 = 1 << 20

// historyReader reads positions [pos, end) of thread id's history in era
// a piece at a time. Each piece is read in a short read-only transaction
// of its own, which finds the piece's bytes as of then (in chunk rows, or
// the segment that holds them, read from the bucket after the
// transaction), so no connection is held while the caller uses the bytes:
// a reader that stops reading holds nothing of the database's. A thread
// in era holds the same bytes at a position whatever is appended or
// sealed meanwhile; a revert or rewrite (another era) fails the next
// piece with ErrChanged.
type historyReader struct {
	ctx      context.Context
	s        *Store
	id       string
	era      Era
	pos, end int64
	buf      []byte
	pieces   pieceState
	err      error
}

// pieceState is what a history reader keeps from one piece to the next:
// the buffer of the last piece's chunks, reused, and the chain of links
// the history runs through, so that each piece reads the rows of its own
// link and the head, not of every link above it (a thread reverted many
// times has as many links).
type pieceState struct {
	scratch bytes.Buffer
	chain   []span // the links from chainAt on, as found (nil: not yet)
	chainAt int64  // the history position where chain[0] starts
}

// spanAt returns the span of the history at position from, from the
// chain found before, with its link's sealed size as of tx; ok is false
// when there is none, or its link is no longer in the era it was found
// in (the chain must be found again).
func (ps *pieceState) spanAt(ctx context.Context, tx pgx.Tx, head Thread, from int64) (sp span, ok bool, err error) {
	start := ps.chainAt
	for _, c := range ps.chain {
		n := c.hi - c.lo
		if from >= start+n {
			start += n
			continue
		}
		if from < start {
			return span{}, false, nil
		}
		link := head
		if c.threadID != head.ID {
			if link, err = getThread(ctx, tx, c.threadID, ""); errors.Is(err, ErrNotFound) {
				return span{}, false, nil
			} else if err != nil {
				return span{}, false, err
			}
		}
		if link.Era() != c.era {
			return span{}, false, nil
		}
		c.lo += from - start
		c.sealed = link.SealedSize
		return c, true, nil
	}
	return span{}, false, nil
}

func (r *historyReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.pos >= r.end {
			return 0, io.EOF
		}
		b, err := r.s.readPieceAt(r.ctx, r.id, r.era, r.pos, r.end, &r.pieces)
		if err == nil && len(b) == 0 {
			err = fmt.Errorf("no bytes at %d", r.pos)
		}
		if err != nil {
			r.err = fmt.Errorf("read %s: %w", r.id, err)
			return 0, r.err
		}
		r.buf, r.pos = b, r.pos+int64(len(b))
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// errReaderClosed fails the reads of a closed history reader.
var errReaderClosed = errors.New("history reader closed")

// Close ends the reader: later reads fail.
func (r *historyReader) Close() error {
	r.buf, r.err = nil, errReaderClosed
	return nil
}

// readPieceAt returns the bytes of thread id's history from position from
// on, before to: one piece (see historyReader). A segment's object
// deleted between finding it and reading it (the thread was reverted,
// rewritten or deleted meanwhile) is looked for once more, which tells
// why.
// Chunk bytes are read into ps's scratch, whose earlier bytes the caller
// no longer needs.
func (s *Store) readPieceAt(ctx context.Context, id string, era Era, from, to int64, ps *pieceState) ([]byte, error) {
	b, err := s.readPieceOnce(ctx, id, era, from, to, ps)
	if errors.Is(err, objstore.ErrNotFound) {
		ps.chain = nil
		b, err = s.readPieceOnce(ctx, id, era, from, to, ps)
	}
	return b, err
}

func (s *Store) readPieceOnce(ctx context.Context, id string, era Era, from, to int64, ps *pieceState) ([]byte, error) {
	var sp span
	var seg *segmentRow
	var data []byte
	err := s.inReadTx(ctx, func(tx pgx.Tx) error {
		t, err := getThread(ctx, tx, id, "")
		if err == nil {
			err = checkEra(t, &era)
		}
		if err != nil {
			return err
		}
		var ok bool
		if sp, ok, err = ps.spanAt(ctx, tx, t, from); err != nil {
			return err
		}
		if !ok {
			spans, err := chainSpans(ctx, tx, t, from, to)
			if err != nil {
				return err
			}
			if len(spans) == 0 {
				return fmt.Errorf("no bytes at %d", from)
			}
			ps.chain, ps.chainAt, sp = spans, from, spans[0]
		}
		if sp.lo < sp.sealed {
			seg, err = segmentAt(ctx, tx, sp.threadID, sp.lo)
			return err
		}
		data, err = readChunks(ctx, tx, sp, &ps.scratch)
		return err
	})
	if err != nil || seg == nil {
		return data, err
	}
	if s.bucket == nil {
		return nil, fmt.Errorf("thread %s has sealed segments and this store has no bucket", sp.threadID)
	}
	n := min(seg.End, sp.hi, sp.sealed, sp.lo+readPiece) - sp.lo
	b, err := s.bucket.ReadRange(ctx, seg.Key, sp.lo-seg.Start, n)
	if err != nil {
		return nil, fmt.Errorf("thread %s: %w", sp.threadID, err)
	}
	return b, nil
}

// inReadTx runs fn in a read-only repeatable-read transaction: its
// queries see one snapshot.
func (s *Store) inReadTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	return fn(tx)
}

// segmentAt returns the segment that holds sealed byte at of a thread.
func segmentAt(ctx context.Context, q querier, threadID string, at int64) (*segmentRow, error) {
	rows, err := q.Query(ctx, `SELECT start_offset, end_offset, object_key FROM segments
		WHERE thread_id = $1 AND start_offset <= $2 AND end_offset > $2`, threadID, at)
	if err != nil {
		return nil, err
	}
	g, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[segmentRow])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("thread %s: no segment holds sealed byte %d", threadID, at)
	}
	return g, err
}

// readChunks returns a piece of a thread's unsealed bytes from sp.lo on,
// before sp.hi: those of the chunks that start before sp.lo+pieceBytes,
// each to its end, so a chunk row larger than a piece is read once, not
// once per piece. The bytes are read into buf, emptied first.
func readChunks(ctx context.Context, q querier, sp span, buf *bytes.Buffer) ([]byte, error) {
	var end int64
	if err := q.QueryRow(ctx, `SELECT start_offset + octet_length(data) FROM chunks
		WHERE thread_id = $1 AND start_offset < $2 ORDER BY start_offset DESC LIMIT 1`,
		sp.threadID, sp.lo+pieceBytes).Scan(&end); err != nil {
		return nil, fmt.Errorf("thread %s: the chunk of byte %d: %w", sp.threadID, sp.lo, err)
	}
	buf.Reset()
	if _, err := writeChunks(ctx, q, buf, span{threadID: sp.threadID, lo: sp.lo, hi: min(sp.hi, max(end, sp.lo+1))}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeSpan writes one span's bytes: its sealed part from segments, then
// the rest from chunks.
func (s *Store) writeSpan(ctx context.Context, q querier, w io.Writer, sp span) (int64, error) {
	var n int64
	if sp.lo < sp.sealed {
		m, err := s.writeSealed(ctx, q, w, span{threadID: sp.threadID, lo: sp.lo, hi: min(sp.hi, sp.sealed)})
		n += m
		if err != nil {
			return n, err
		}
	}
	if sp.hi > sp.sealed {
		m, err := writeChunks(ctx, q, w, span{threadID: sp.threadID, lo: max(sp.lo, sp.sealed), hi: sp.hi})
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// segmentRow is a row of segments: own bytes [Start, End) of a thread
// live in the object Key.
type segmentRow struct {
	Start, End int64
	Key        string
}

// readPiece bounds one ranged read of a segment, so a read holds a piece,
// not a segment. A variable for tests.
var readPiece int64 = 4 << 20

// writeSealed writes [sp.lo, sp.hi) of a thread's sealed bytes by ranged
// reads of the segments it touches, readPiece bytes at most each.
func (s *Store) writeSealed(ctx context.Context, q querier, w io.Writer, sp span) (int64, error) {
	if s.bucket == nil {
		return 0, fmt.Errorf("thread %s has sealed segments and this store has no bucket", sp.threadID)
	}
	rows, err := q.Query(ctx, `SELECT start_offset, end_offset, object_key FROM segments
		WHERE thread_id = $1 AND end_offset > $2 AND start_offset < $3 ORDER BY start_offset`,
		sp.threadID, sp.lo, sp.hi)
	if err != nil {
		return 0, err
	}
	segs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[segmentRow])
	if err != nil {
		return 0, err
	}
	var n int64
	next := sp.lo
	for _, g := range segs {
		if g.Start > next {
			break
		}
		for hi := min(g.End, sp.hi); next < hi; {
			piece := min(hi-next, readPiece)
			b, err := s.bucket.ReadRange(ctx, g.Key, next-g.Start, piece)
			if err != nil {
				return n, fmt.Errorf("thread %s: %w", sp.threadID, err)
			}
			m, err := w.Write(b)
			n += int64(m)
			if err != nil {
				return n, err
			}
			next += piece
		}
	}
	if next != sp.hi {
		return n, fmt.Errorf("thread %s: no segment holds sealed byte %d", sp.threadID, next)
	}
	return n, nil
}

// errNoChunk reports that a thread's chunk rows do not hold bytes its row
// said were unsealed: outside one snapshot, a seal may have moved them
// into a segment since the row was read.
var errNoChunk = errors.New("no chunk holds them")

// writeChunks writes [sp.lo, sp.hi) of a thread's unsealed bytes, a page
// of chunks at a time. Bytes missing from the chunks fail with errNoChunk.
func writeChunks(ctx context.Context, q querier, w io.Writer, sp span) (int64, error) {
	// The first chunk is the one that holds lo.
	var next int64
	err := q.QueryRow(ctx, `SELECT COALESCE(MAX(start_offset), 0) FROM chunks
		WHERE thread_id = $1 AND start_offset <= $2`, sp.threadID, sp.lo).Scan(&next)
	if err != nil {
		return 0, err
	}
	var n int64
	for next < sp.hi {
		rows, err := q.Query(ctx, `SELECT start_offset, data FROM chunks
			WHERE thread_id = $1 AND start_offset >= $2 AND start_offset < $3
			ORDER BY start_offset LIMIT $4`, sp.threadID, next, sp.hi, chunkPage)
		if err != nil {
			return n, err
		}
		read := 0
		for rows.Next() {
			var start int64
			var data []byte
			if err := rows.Scan(&start, &data); err != nil {
				rows.Close()
				return n, err
			}
			if start != next {
				rows.Close()
				return n, fmt.Errorf("thread %s: chunk at %d, want %d: %w", sp.threadID, start, next, errNoChunk)
			}
			lo, hi := max(sp.lo-start, 0), min(sp.hi-start, int64(len(data)))
			if lo > hi { // the chunk found for lo ends before it
				rows.Close()
				return n, fmt.Errorf("thread %s: chunk at %d ends at %d, want byte %d: %w", sp.threadID, start, start+int64(len(data)), sp.lo, errNoChunk)
			}
			m, err := w.Write(data[lo:hi])
			n += int64(m)
			if err != nil {
				rows.Close()
				return n, err
			}
			next = start + int64(len(data))
			read++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, err
		}
		if read == 0 {
			return n, fmt.Errorf("thread %s: at %d, want bytes to %d: %w", sp.threadID, next, sp.hi, errNoChunk)
		}
	}
	return n, nil
}

// ListOptions selects a page of List.
type ListOptions struct {
	// Archived selects archived threads (true), the others (false), or both
	// (nil).
	Archived *bool
	// Limit is 1..MaxListRows; 0 means 50.
	Limit int
	// ByCreated orders by creation time instead of the last update;
	// Ascending puts the oldest first.
	ByCreated bool
	Ascending bool
	// Exact filters ("" for none) and Text, a case-insensitive substring
	// of the name or preview.
	Cwd, Source, ModelProvider, ParentID string
	Text                                 string
	// Spawned selects spawned sub-agents (true), the other threads
	// (false), or both (nil).
	Spawned *bool
	// After continues a listing after the last thread of the previous page.
	After *Thread
}

// MaxListRows bounds the threads List returns: a page of the API's largest
// size (store.MaxListLimit, 1000) and one more, which tells its caller
// that another page follows.
const MaxListRows = 1001

// List returns threads ordered by time, then id, by keyset, so every page
// costs the same however deep.
func (s *Store) List(ctx context.Context, o ListOptions) ([]Thread, error) {
	limit := o.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, MaxListRows)
	col, op, dir := "updated_at", "<", "DESC"
	if o.ByCreated {
		col = "created_at"
	}
	if o.Ascending {
		op, dir = ">", "ASC"
	}
	where := []string{"link_of IS NULL"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if o.Archived != nil {
		where = append(where, "archived = "+arg(*o.Archived))
	}
	if o.Spawned != nil {
		where = append(where, "(spawn_parent_id IS NOT NULL) = "+arg(*o.Spawned))
	}
	for _, f := range []struct{ col, v string }{{"cwd", o.Cwd}, {"source", o.Source}, {"model_provider", o.ModelProvider}, {"parent_id", o.ParentID}} {
		if f.v != "" {
			where = append(where, f.col+" = "+arg(f.v))
		}
	}
	if o.Text != "" {
		pattern := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(o.Text) + "%"
		p := arg(pattern)
		where = append(where, "(name ILIKE "+p+" OR preview ILIKE "+p+")")
	}
	if o.After != nil {
		at := o.After.UpdatedAt
		if o.ByCreated {
			at = o.After.CreatedAt
		}
		where = append(where, fmt.Sprintf("(%s, id) %s (%s, %s)", col, op, arg(at.UnixMilli()), arg(o.After.ID)))
	}
	q := `SELECT ` + threadColumns + ` FROM threads WHERE ` + strings.Join(where, " AND ")
	q += fmt.Sprintf(" ORDER BY %s %s, id %s LIMIT %s", col, dir, dir, arg(limit))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Thread, error) { return scanThread(r) })
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return out, nil
}
