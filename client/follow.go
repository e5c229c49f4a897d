package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spoolhq/spool/api"
)

// AppendOptions make an append conditional or idempotent (docs/API.md,
// "Safe writes"). The zero value is a plain append.
type AppendOptions struct {
	// ExpectedSize, when not zero, is the history size the thread must
	// have (Thread.HistorySize() of the last answer, the API's
	// history_size; a reference fork's history includes its base's part,
	// so IndexedSize is not it): otherwise the append fails
	// with ErrSizeMismatch, the *Error's Size holds the actual size, and
	// nothing is written.
	ExpectedSize int64
	// IdempotencyKey, when not empty, names the append: a retry with the
	// same key and items writes nothing and returns the first answer;
	// other items with the same key fail with ErrIdempotencyKeyReused.
	// The server keeps keys in its index for a day, across its restarts.
	IdempotencyKey string
}

func (o AppendOptions) header() http.Header {
	h := http.Header{}
	if o.ExpectedSize != 0 {
		h.Set("Expected-Size", strconv.FormatInt(o.ExpectedSize, 10))
	}
	if o.IdempotencyKey != "" {
		h.Set("Idempotency-Key", o.IdempotencyKey)
	}
	return h
}

// ErrStreamEnded is yielded, wrapped in a *StreamEndError, when the
// server ends a follow or event stream.
var ErrStreamEnded = errors.New("client: stream ended by the server")

// StreamEndError says why the server ended a stream: "deleted" or
// "reverted" (the followed thread; after a revert, read it again),
// "shutdown", "slow_subscriber" (an event stream read too slowly),
// "events_lost" (the server lost events at their source: list again and
// subscribe again, as after slow_subscriber),
// "error", or "unknown" when the stream ended cleanly without saying why
// (a proxy between that drops HTTP trailers). It wraps ErrStreamEnded.
type StreamEndError struct{ Reason string }

func (e *StreamEndError) Error() string { return "client: stream ended by the server: " + e.Reason }

func (e *StreamEndError) Unwrap() error { return ErrStreamEnded }

// End returns the offset just past l in the stream: where a follow
// resumes after it.
func (l Line) End() int64 { return l.Offset + int64(len(l.Raw)) + 1 }

// Follow iterates over thread id's lines from the position from in its
// history (0, or the End of a line seen before) on, then over each line
// appended later, as it comes, until ctx is done or the server ends the
// stream. Line offsets are positions in the thread's history. The
// iteration ends with a *StreamEndError when the server ends the stream
// (the thread was deleted, the server is shutting down), or with the
// request's or the connection's error; to resume without a gap or a
// repeat, call Follow again from the End of the last line received.
func (c *Client) Follow(ctx context.Context, id string, from int64) iter.Seq2[Line, error] {
	return func(yield func(Line, error) bool) {
		q := url.Values{"follow": {"1"}, "from_offset": {strconv.FormatInt(from, 10)}}
		path, err := threadPath(id, "/items")
		if err != nil {
			yield(Line{}, err)
			return
		}
		resp, err := c.request(ctx, "GET", path, q, "", nil, http.StatusOK)
		if err != nil {
			yield(Line{}, err)
			return
		}
		defer resp.Body.Close()
		for l, err := range linesWithin(resp.Body, c.limit) {
			// Lines reads ahead: once ctx is done, what it read before
			// is not yielded after.
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			if err != nil {
				yield(Line{}, err)
				return
			}
			l.Offset += from
			if !yield(l, nil) {
				return
			}
		}
		if ctx.Err() != nil {
			yield(Line{}, ctx.Err())
			return
		}
		// The body is read to its end, so the trailer is in.
		reason := resp.Trailer.Get("Spool-Stream-End")
		if reason == "" {
			reason = "unknown"
		}
		yield(Line{}, &StreamEndError{Reason: reason})
	}
}

// Event is a change to the store, as GET /v1/events reports it.
type Event struct {
	Seq      uint64  `json:"seq"`
	Type     string  `json:"type"` // created, appended, forked, renamed, archived, unarchived, deleted, reverted
	ThreadID string  `json:"thread_id"`
	Size     int64   `json:"size,omitempty"`
	Offsets  []int64 `json:"offsets,omitempty"`
	Thread   *Thread `json:"thread,omitempty"` // nil for deleted
}

// Events iterates over the server's events from now on until ctx is done
// or the server ends the stream, which it says with a *StreamEndError
// (a client that reads too slowly is dropped: "slow_subscriber"; when the
// server loses events at their source the reason is "events_lost").
func (c *Client) Events(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		resp, err := c.request(ctx, "GET", "/v1/events", nil, "", nil, http.StatusOK)
		if err != nil {
			yield(Event{}, err)
			return
		}
		defer resp.Body.Close()
		// Records are read whole, up to the Client's limit: an append's
		// event holds an offset per line, megabytes for a big append.
		br := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			raw, err := readLine(br, c.limit)
			if err != nil || ctx.Err() != nil { // a record read ahead is not yielded once ctx is done
				switch {
				case ctx.Err() != nil:
					err = ctx.Err()
				case err == io.EOF:
					err = fmt.Errorf("client: event stream: %w", errors.New("closed without a stream_end record"))
				default:
					err = fmt.Errorf("client: event stream: %w", err)
				}
				yield(Event{}, err)
				return
			}
			var rec struct {
				Event
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(raw, &rec); err != nil {
				yield(Event{}, fmt.Errorf("client: event stream: %w", err))
				return
			}
			if rec.Type == "stream_end" {
				yield(Event{}, &StreamEndError{Reason: rec.Reason})
				return
			}
			if !yield(rec.Event, nil) {
				return
			}
		}
	}
}

// TurnItem is one decoded line of a turn (GET .../turns?view=full): Type
// is user_message, agent_message, reasoning, tool_call, tool_output, or
// another response_item's payload type, which then carries its Payload.
type TurnItem = api.TurnItem

// FullTurn is turn Ordinal with its items: the lines from its user
// message (at Offset) up to the next user message or the end (End).
type FullTurn = api.FullTurn

// TurnsOptions select a page of turns, for TurnsPage and FullTurns.
type TurnsOptions struct {
	Limit      int    // 1..200, default 20
	Cursor     string // NextCursor of the previous page
	Descending bool   // newest turn first
}

// query returns the query of a page of turns in view ("summary" or
// "full").
func (o TurnsOptions) query(view string) url.Values {
	q := url.Values{"view": {view}}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	if o.Descending {
		q.Set("order", "desc")
	}
	return q
}

// FullTurnsPage is a page of turns; NextCursor is empty on the last.
type FullTurnsPage struct {
	Turns      []FullTurn `json:"turns"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// TurnsPage returns a page of thread id's counted user messages (GET
// .../turns?view=summary), the page Turns returns all at once.
func (c *Client) TurnsPage(ctx context.Context, id string, o TurnsOptions) (TurnsPage, error) {
	var page TurnsPage
	return page, c.callThread(ctx, "GET", id, "/turns", o.query("summary"), nil, http.StatusOK, &page)
}

// FullTurns returns a page of thread id's turns with their items decoded.
func (c *Client) FullTurns(ctx context.Context, id string, o TurnsOptions) (FullTurnsPage, error) {
	var page FullTurnsPage
	return page, c.callThread(ctx, "GET", id, "/turns", o.query("full"), nil, http.StatusOK, &page)
}
