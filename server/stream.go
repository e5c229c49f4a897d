// Streams that stay open: a thread's history followed as it grows
// (GET /v1/threads/{id}/items?follow=1) and the store's events
// (GET /v1/events), as NDJSON or, when the client accepts it, as
// server-sent events.

package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
)

// Stream end reasons, sent in the Spool-Stream-End trailer of an NDJSON
// follow stream, and in the last record of an event stream.
const (
	EndShutdown = "shutdown"        // the server is shutting down; reconnect elsewhere or later
	EndDeleted  = "deleted"         // the followed thread was deleted
	EndReverted = "reverted"        // the followed thread was reverted, or its file cut or rewritten by another program: its history past the cut is no longer its history
	EndSlow     = "slow_subscriber" // events stream only: the client read too slowly and events were dropped
	EndLost     = "events_lost"     // events stream only: the server lost events at their source (the distributed backend's PostgreSQL connection broke); list or read again, then subscribe again
	EndError    = "error"           // reading the thread failed; the server log says why (an NDJSON stream's last line may then lack its newline: it is cut short)
)

// streamEndTrailer names the trailer of an NDJSON follow stream that says
// why it ended.
const streamEndTrailer = "Spool-Stream-End"

const mediaEventStream = "text/event-stream"

// inFlightSlot is the in-flight slot limit gave a request; a stream gives
// it back once it is open, so open streams do not starve other requests.
type inFlightSlot struct {
	once    sync.Once
	release func()
}

func (s *inFlightSlot) done() { s.once.Do(s.release) }

type inFlightSlotKey struct{}

// releaseSlot gives back r's in-flight slot, if it holds one.
func releaseSlot(r *http.Request) {
	if slot, ok := r.Context().Value(inFlightSlotKey{}).(*inFlightSlot); ok {
		slot.done()
	}
}

// wantsSSE reports whether the client asked for server-sent events.
func wantsSSE(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == mediaEventStream {
			return true
		}
	}
	return false
}

// openStream takes a stream slot, or fails with 503. The caller calls the
// returned function when the stream ends.
func (s *Server) openStream() (func(), error) {
	select {
	case s.streams <- struct{}{}:
		return func() { <-s.streams }, nil
	default:
		return nil, errorf(http.StatusServiceUnavailable, CodeUnavailable, "too many open streams (%d)", cap(s.streams))
	}
}

// flusher writes with a fresh deadline per write and flushes on demand.
type flusher struct {
	dw *deadlineWriter
	rc *http.ResponseController
}

func (s *Server) newFlusher(w http.ResponseWriter) *flusher {
	rc := http.NewResponseController(w)
	return &flusher{dw: &deadlineWriter{w: w, rc: rc, timeout: s.cfg.StreamWriteTimeout}, rc: rc}
}

func (f *flusher) flush() error {
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// startStream sends the headers of a stream of the given type, flushes
// them so the client knows the stream is open, and gives back the
// request's in-flight slot.
func (s *Server) startStream(w http.ResponseWriter, r *http.Request, contentType string, f *flusher) error {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	releaseSlot(r)
	return f.flush()
}

// follow streams thread id's lines from byte offset from on, then each
// line appended later, until the client leaves, the thread is deleted or
// reverted (by spool, or by another process: an event of the thread in
// another layout) or the server drains. Lines are the file's bytes; each SSE event carries
// the offset just past its line as its id. The manager's events only say
// when to read: what is sent is always read from the file from the last
// offset sent, so a dropped subscription loses nothing and nothing is
// sent twice.
func (s *Server) follow(w http.ResponseWriter, r *http.Request, id string, from int64) error {
	ctx := r.Context()
	closeStream, err := s.openStream()
	if err != nil {
		return err
	}
	defer closeStream()
	pub, err := capability[manager.Publisher](s, "follow")
	if err != nil {
		return err
	}
	sub := pub.Subscribe(0)
	defer func() { sub.Close() }()
	rc, end, err := s.m.ReadAfter(ctx, id, from)
	if err != nil {
		return err
	}
	// The first bytes are read before the status line is sent, so a read
	// that fails at once is answered with its error (as streamNDJSON's).
	br := bufio.NewReaderSize(rc, 64<<10)
	if _, err := br.Peek(1); err != nil && err != io.EOF {
		rc.Close()
		return err
	}
	var lines io.ReadCloser = &readCloser{Reader: br, Closer: rc}
	// A revert makes the history past its cut another's: the offsets the
	// follower holds name other bytes. Its event ends the stream; a
	// follower whose events were dropped compares the history's layout.
	layout, err := s.historyLayout(ctx, id)
	if err != nil {
		lines.Close()
		return err
	}
	sse := wantsSSE(r)
	f := s.newFlusher(w)
	contentType := mediaNDJSON
	if sse {
		contentType = mediaEventStream
	} else {
		w.Header().Set("Trailer", streamEndTrailer)
	}
	if err := s.startStream(w, r, contentType, f); err != nil {
		lines.Close()
		return s.cutStream(ctx, err)
	}
	pos := from
	recheck := false
	var sent lastLine // of the lines this stream sent, the last
	finish := func(reason string) error {
		if sse {
			fmt.Fprintf(f.dw, "event: end\ndata: {\"reason\":%q}\n\n", reason)
			f.flush()
		} else {
			w.Header().Set(streamEndTrailer, reason)
		}
		return nil
	}
	for {
		err := s.sendLines(f, sent.track(lines, pos), pos, sse)
		lines.Close()
		var failed readError
		switch {
		case errors.As(err, &failed) && ctx.Err() == nil:
			// The client is there: tell it, as when a read fails to start.
			s.log.ErrorContext(ctx, "follow: read", "id", id, "offset", pos, "err", err)
			return finish(EndError)
		case err != nil:
			return s.cutStream(ctx, err)
		}
		pos = end
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-s.drained:
				return finish(EndShutdown)
			case e, ok := <-sub.Events():
				if !ok {
					if err := sub.Err(); !errors.Is(err, manager.ErrSlowSubscriber) && !errors.Is(err, manager.ErrEventsLost) {
						return finish(EndShutdown) // the manager closed
					}
					// Events were dropped: subscribe again and read what
					// the file holds past pos, which covers them.
					sub = pub.Subscribe(0)
					recheck = true
					break wait
				}
				if e.ThreadID != id {
					continue
				}
				switch e.Type {
				case manager.EventDeleted:
					return finish(EndDeleted)
				case manager.EventReverted:
					return finish(EndReverted)
				}
				if e.Thread != nil && manager.LayoutOf(*e.Thread) != layout {
					// Another process (Codex's thread/revert) laid the
					// history out anew: that is no event, but the next
					// one names the new history, in which pos names
					// other bytes.
					return finish(EndReverted)
				}
				if e.Size > pos {
					break wait
				}
			}
		}
		if recheck {
			recheck = false
			now, err := s.historyLayout(ctx, id)
			switch {
			case errors.Is(err, manager.ErrNotFound):
				return finish(EndDeleted)
			case errors.Is(err, context.Canceled):
				return nil
			case err != nil:
				s.log.ErrorContext(ctx, "follow: layout", "id", id, "err", err)
				return finish(EndError)
			case now != layout:
				return finish(EndReverted)
			}
			// Another program may have rewritten the file in place,
			// which keeps the layout: the last line sent must still be
			// there.
			same, err := s.stillThere(ctx, id, sent)
			switch {
			case errors.Is(err, manager.ErrNotFound):
				return finish(EndDeleted) // deleted since its layout was read
			case errors.Is(err, context.Canceled):
				return nil
			case err != nil:
				s.log.ErrorContext(ctx, "follow: read the last line sent", "id", id, "offset", sent.start, "err", err)
				return finish(EndError)
			case !same:
				return finish(EndReverted)
			}
		}
		lines, end, err = s.m.ReadAfter(ctx, id, pos)
		switch {
		case errors.Is(err, manager.ErrNotFound):
			return finish(EndDeleted)
		case errors.Is(err, manager.ErrInvalidArgument), errors.Is(err, manager.ErrBusy):
			// pos is past the history's end or no longer starts a line,
			// or another program emptied the file to write it anew: the
			// file was cut or rewritten, with no revert announced to
			// this stream.
			return finish(EndReverted)
		case errors.Is(err, context.Canceled):
			return nil
		case err != nil:
			s.log.ErrorContext(ctx, "follow: read", "id", id, "offset", pos, "err", err)
			return finish(EndError)
		}
	}
}

// lastLine is where the last complete line a reader passed starts and
// ends, and the CRC-32C of its bytes; end is 0 before the first.
type lastLine struct {
	start, end int64
	sum        uint32
}

// track returns r, whose bytes start at offset pos, as a reader that
// records in l each complete line read through it.
func (l *lastLine) track(r io.Reader, pos int64) io.Reader {
	return &lineTracker{r: r, last: l, start: pos, pos: pos}
}

// lineTracker is a reader that records the last complete line read.
type lineTracker struct {
	r          io.Reader
	last       *lastLine
	start, pos int64  // where the line being read starts; the offset read to
	sum        uint32 // of the line being read, so far
}

func (t *lineTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	for b := p[:n]; len(b) > 0; {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.sum = crc32.Update(t.sum, castagnoli, b)
			t.pos += int64(len(b))
			break
		}
		t.sum = crc32.Update(t.sum, castagnoli, b[:i+1])
		t.pos += int64(i + 1)
		*t.last = lastLine{start: t.start, end: t.pos, sum: t.sum}
		t.start, t.sum = t.pos, 0
		b = b[i+1:]
	}
	return n, err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// stillThere reports whether thread id's history still holds line l
// where it was read: false when the history no longer has a line
// starting there or its bytes differ. A zero l (no line read) is there.
func (s *Server) stillThere(ctx context.Context, id string, l lastLine) (bool, error) {
	if l.end == 0 {
		return true, nil
	}
	rc, end, err := s.m.ReadAfter(ctx, id, l.start)
	if errors.Is(err, manager.ErrInvalidArgument) || errors.Is(err, manager.ErrBusy) {
		return false, nil // l.start is past the end or not a line's start, or the file was emptied
	}
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if end < l.end {
		return false, nil
	}
	h := crc32.New(castagnoli)
	if _, err := io.CopyN(h, rc, l.end-l.start); err != nil {
		return false, err
	}
	return h.Sum32() == l.sum, nil
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// historyLayout returns the layout of thread id's history
// (manager.LayoutOf).
func (s *Server) historyLayout(ctx context.Context, id string) (manager.Layout, error) {
	t, err := s.m.Get(ctx, id)
	if err != nil {
		return manager.Layout{}, err
	}
	return manager.LayoutOf(t), nil
}

// readError is a failure to read what a stream sends, as opposed to one
// to send it.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// markedReads marks its reader's failures as readErrors.
type markedReads struct{ r io.Reader }

func (m markedReads) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
}

// sendLines copies lines (which start at offset start) to the client and
// flushes. In SSE form each line is one event whose id is the offset just
// past it, and whose data is the line with any raw CR sent as a space. A
// failure to read lines is a readError.
func (s *Server) sendLines(f *flusher, lines io.Reader, start int64, sse bool) error {
	lines = markedReads{lines}
	if !sse {
		if _, err := io.Copy(f.dw, lines); err != nil {
			return err
		}
		return f.flush()
	}
	br := bufio.NewReaderSize(lines, 64<<10)
	pos := start
	var buf []byte
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF && len(line) == 0 {
			return f.flush()
		}
		if err != nil && err != io.EOF {
			return err
		}
		pos += int64(len(line))
		buf = append(buf[:0], "id: "...)
		buf = strconv.AppendInt(buf, pos, 10)
		buf = append(buf, "\nevent: line\ndata: "...)
		data := len(buf)
		buf = append(buf, line[:len(line)-1]...) // a rollout line holds no raw newline
		// Nor may an event's data hold a CR, which ends a line in SSE. In
		// a JSON line a raw CR can only be space between tokens.
		for i := data; i < len(buf); i++ {
			if buf[i] == '\r' {
				buf[i] = ' '
			}
		}
		buf = append(buf, "\n\n"...)
		if _, err := f.dw.Write(buf); err != nil {
			return err
		}
	}
}

// cutStream ends a stream whose status line is gone: the client sees a
// truncated body.
func (s *Server) cutStream(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil // the client left
	}
	s.log.WarnContext(ctx, "stream cut short", "err", err)
	panic(http.ErrAbortHandler)
}

// events streams the manager's events until the client leaves, falls
// behind (the last record says slow_subscriber), the backend loses events
// at their source (events_lost) or the server drains. A
// HEAD gets the stream's headers at once.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	pub, err := capability[manager.Publisher](s, "events")
	if err != nil {
		return err
	}
	sse := wantsSSE(r)
	contentType := mediaNDJSON
	if sse {
		contentType = mediaEventStream
	}
	if r.Method == http.MethodHead {
		// Answered at once, as a HEAD of a follow is: the stream never
		// ends by itself, and its headers would hold the connection and
		// a stream slot until the client hangs up.
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	ctx := r.Context()
	closeStream, err := s.openStream()
	if err != nil {
		return err
	}
	defer closeStream()
	sub := pub.Subscribe(0)
	defer sub.Close()
	f := s.newFlusher(w)
	if err := s.startStream(w, r, contentType, f); err != nil {
		return s.cutStream(ctx, err)
	}
	send := func(id string, v any) error {
		body, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var buf []byte
		if sse {
			if id != "" {
				buf = append(buf, "id: "+id+"\n"...)
			}
			buf = append(buf, "data: "...)
			buf = append(buf, body...)
			buf = append(buf, "\n\n"...)
		} else {
			buf = append(body, '\n')
		}
		if _, err := f.dw.Write(buf); err != nil {
			return err
		}
		return f.flush()
	}
	end := func(reason string) error {
		send("", api.StreamEnd{Type: "stream_end", Reason: reason})
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.drained:
			return end(EndShutdown)
		case e, ok := <-sub.Events():
			if !ok {
				switch err := sub.Err(); {
				case errors.Is(err, manager.ErrSlowSubscriber):
					return end(EndSlow)
				case errors.Is(err, manager.ErrEventsLost):
					return end(EndLost)
				}
				return end(EndShutdown)
			}
			if err := send(strconv.FormatUint(e.Seq, 10), wireEvent(e)); err != nil {
				return s.cutStream(ctx, err)
			}
		}
	}
}
