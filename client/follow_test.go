package client_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/server"
)

// TestFollow follows a thread while another goroutine appends, stops half
// way, and resumes from the End of the last line: every line is seen
// once, in order, at its offset in the file.
func TestFollow(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const total = 20
	var seen []client.Line
	next := int64(0)
	for round := range 2 {
		followCtx, stop := context.WithCancel(ctx)
		// One line written while no one follows: the follow must start
		// with it.
		if _, err := c.Append(ctx, th.ID, assistantItem(fmt.Sprintf("round %d", round))); err != nil {
			t.Fatal(err)
		}
		appended := 0
		for l, err := range c.Follow(followCtx, th.ID, next) {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			seen = append(seen, l)
			next = l.End()
			// Each line seen asks for the next, so the follower is
			// always waiting on lines not yet written.
			if appended < total/2 {
				if _, err := c.Append(ctx, th.ID, userItem(fmt.Sprintf("p%d-%d", round, appended))); err != nil {
					t.Fatal(err)
				}
				appended++
				continue
			}
			break
		}
		stop()
	}
	var want []client.Line
	for l, err := range c.Items(ctx, th.ID, -1) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, l)
	}
	// The last line appended was not waited for: a last follow picks up
	// what is left.
	if len(seen) < len(want) {
		for l, err := range c.Follow(ctx, th.ID, next) {
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, l)
			if len(seen) == len(want) {
				break
			}
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("followed %d lines, the file has %d", len(seen), len(want))
	}
	for i := range want {
		if seen[i].Offset != want[i].Offset || string(seen[i].Raw) != string(want[i].Raw) {
			t.Fatalf("line %d: followed %d %s, file %d %s", i, seen[i].Offset, seen[i].Raw, want[i].Offset, want[i].Raw)
		}
	}
}

// TestFollowEndsOnDelete checks that the iteration ends with a
// *StreamEndError naming the reason.
func TestFollowEndsOnDelete(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for _, err := range c.Follow(ctx, th.ID, 0) {
		if err != nil {
			last = err
			break
		}
		if err := c.Delete(ctx, th.ID); err != nil {
			t.Fatal(err)
		}
	}
	var end *client.StreamEndError
	if !errors.As(last, &end) || end.Reason != "deleted" || !errors.Is(last, client.ErrStreamEnded) {
		t.Fatalf("follow ended with %v, want a StreamEndError deleted", last)
	}
}

func TestAppendWith(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AppendWith(ctx, th.ID, client.AppendOptions{ExpectedSize: th.IndexedSize + 1}, userItem("no"))
	var apiErr *client.Error
	if !errors.Is(err, client.ErrSizeMismatch) || !errors.As(err, &apiErr) || apiErr.Size == nil || *apiErr.Size != th.IndexedSize {
		t.Fatalf("stale size: %v, want ErrSizeMismatch with size %d", err, th.IndexedSize)
	}
	o := client.AppendOptions{ExpectedSize: th.IndexedSize, IdempotencyKey: "k1"}
	first, err := c.AppendWith(ctx, th.ID, o, userItem("yes"))
	if err != nil {
		t.Fatal(err)
	}
	// The retry carries the same stale-looking size: the key answers it
	// before the size is checked.
	again, err := c.AppendWith(ctx, th.ID, o, userItem("yes"))
	if err != nil || again.Offsets[0] != first.Offsets[0] {
		t.Fatalf("retry: %v, offsets %v, want %v", err, again.Offsets, first.Offsets)
	}
	_, err = c.AppendLinesWith(ctx, th.ID, client.AppendOptions{IdempotencyKey: "k1"}, []byte(`{"type":"event_msg","payload":{"type":"x"}}`))
	if !errors.Is(err, client.ErrIdempotencyKeyReused) {
		t.Fatalf("reused key: %v, want ErrIdempotencyKeyReused", err)
	}
	got, err := c.Get(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserMessageCount != 1 {
		t.Fatalf("user messages = %d, want 1", got.UserMessageCount)
	}
}

// TestEvents reads the event stream while another goroutine appends
// until the reader has seen enough: the events are numbered without gaps
// and name the thread.
func TestEvents(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The stream is open only once the iteration has started, and the
	// first event tells so: append until the reader is done.
	writeCtx, stopWriting := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() {
		for writeCtx.Err() == nil {
			if _, err := c.Append(writeCtx, th.ID, userItem("tick")); err != nil && writeCtx.Err() == nil {
				writerDone <- err
				return
			}
		}
		writerDone <- nil
	}()
	var seqs []uint64
	for ev, err := range c.Events(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != "appended" || ev.ThreadID != th.ID || ev.Thread == nil || ev.Size != ev.Thread.IndexedSize {
			t.Fatalf("event %+v, want appended to %s with its size", ev, th.ID)
		}
		seqs = append(seqs, ev.Seq)
		if len(seqs) == 5 {
			break
		}
	}
	stopWriting()
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("seqs %v have a gap", seqs)
		}
	}
}

// TestEventsOfABigAppend: an event is read whatever its size. An append
// of 2M short lines (50 MB, under spoold's default -max-body) gives an
// "appended" event of 2M offsets, over 16 MiB of JSON, which the stream
// failed on ("bufio.Scanner: token too long"), for every subscriber. The
// server here sends such an event as spoold does, without the minute of
// appending it.
func TestEventsOfABigAppend(t *testing.T) {
	const lines = 2_000_000
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		bw := bufio.NewWriter(w)
		fmt.Fprintf(bw, `{"seq":1,"type":"appended","thread_id":"019a0000-0000-7000-8000-000000000000","size":%d,"offsets":[`, 27*lines)
		for i := range lines {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString(strconv.Itoa(500 + 27*i))
		}
		bw.WriteString("]}\n")
		bw.WriteString(`{"type":"stream_end","reason":"shutdown"}` + "\n")
		bw.Flush()
	}))
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	var got []client.Event
	for ev, err := range c.Events(t.Context()) {
		if err != nil {
			var end *client.StreamEndError
			if !errors.As(err, &end) || end.Reason != "shutdown" {
				t.Fatalf("after %d events: %v, want the stream's end", len(got), err)
			}
			break
		}
		got = append(got, ev)
	}
	if len(got) != 1 || len(got[0].Offsets) != lines {
		t.Fatalf("%d events, want one with %d offsets", len(got), lines)
	}
}

func TestFullTurns(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.Append(ctx, th.ID, userItem(fmt.Sprintf("q%d", i)), assistantItem(fmt.Sprintf("a%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var texts []string
	cursor := ""
	for {
		page, err := c.FullTurns(ctx, th.ID, client.TurnsOptions{Limit: 2, Cursor: cursor, Descending: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, turn := range page.Turns {
			for _, it := range turn.Items {
				texts = append(texts, it.Type+":"+it.Text)
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	got := fmt.Sprint(texts)
	want := "[user_message:q2 agent_message:a2 user_message:q1 agent_message:a1 user_message:q0 agent_message:a0]"
	if got != want {
		t.Fatalf("items %s, want %s", got, want)
	}
}

// TestLinesEnds: each line's End is where the next line starts, whatever
// ends it (a line stored with "\r\n" keeps its "\r" in Raw).
func TestLinesEnds(t *testing.T) {
	const history = "{\"type\":\"a\"}\n{\"type\":\"b\"}\r\n\n{\"type\":\"c\"}\r\r\n{\"type\":\"d\"}\n"
	var got []string
	next := int64(0)
	for l, err := range client.Lines(strings.NewReader(history)) {
		if err != nil {
			t.Fatal(err)
		}
		end := strings.IndexByte(history[l.Offset:], '\n') + int(l.Offset) + 1
		if l.End() != int64(end) || string(l.Raw) != history[l.Offset:end-1] {
			t.Errorf("line at %d: End %d, Raw %q; want %d (just past its newline) and %q", l.Offset, l.End(), l.Raw, end, history[l.Offset:end-1])
		}
		if l.Offset < next {
			t.Errorf("line at %d starts before the End of the line before it (%d)", l.Offset, next)
		}
		next = l.End()
		got = append(got, l.Type)
	}
	if next != int64(len(history)) || strings.Join(got, "") != "abcd" {
		t.Fatalf("lines %v ending at %d; want a, b, c, d ending at %d", got, next, len(history))
	}
}

// TestIteratorsStopWhenContextDone: once ctx is done an iterator yields
// ctx's error next, not the lines or events it had already read ahead:
// Follow went on with up to 64 KiB of them, a few hundred lines after the
// caller had cancelled.
func TestIteratorsStopWhenContextDone(t *testing.T) {
	c := serve(t, server.Config{})
	th, err := c.Create(t.Context(), client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var items []client.Item
	for i := range 500 {
		items = append(items, assistantItem(fmt.Sprintf("line %d", i)))
	}
	if _, err := c.Append(t.Context(), th.ID, items...); err != nil {
		t.Fatal(err)
	}
	// events answers 500 events at once, then holds the stream open.
	events := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for seq := 1; seq <= 500; seq++ {
			fmt.Fprintf(w, `{"seq":%d,"type":"appended","thread_id":%q,"size":%d}`+"\n", seq, th.ID, seq*100)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(events.Close)
	eventsClient, err := client.New(events.URL)
	if err != nil {
		t.Fatal(err)
	}
	// each runs an iterator with ctx, calling cancel at the first element,
	// and returns how many elements came after it and the last error.
	tests := []struct {
		name string
		each func(ctx context.Context, cancel func()) (after int, last error)
	}{
		{"Follow", func(ctx context.Context, cancel func()) (int, error) {
			return countAfterFirst(c.Follow(ctx, th.ID, 0), cancel)
		}},
		{"Items", func(ctx context.Context, cancel func()) (int, error) {
			return countAfterFirst(c.Items(ctx, th.ID, -1), cancel)
		}},
		{"Events", func(ctx context.Context, cancel func()) (int, error) {
			return countAfterFirst(eventsClient.Events(ctx), cancel)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			after, last := tc.each(ctx, cancel)
			if after != 0 || !errors.Is(last, context.Canceled) {
				t.Fatalf("after cancel: %d more elements, then %v; want none, then context.Canceled", after, last)
			}
		})
	}
}

// countAfterFirst calls cancel at seq's first element and counts the
// elements that follow it, up to the first error, which it returns.
func countAfterFirst[T any](seq func(func(T, error) bool), cancel func()) (after int, last error) {
	first := true
	for _, err := range seq {
		if err != nil {
			return after, err
		}
		if first {
			first = false
			cancel()
			continue
		}
		after++
	}
	return after, nil
}

// TestAppendLinesNamesLinesFromOne: the client names a line it refuses as
// the server names a line of the body it sends, counting from 1 (it
// counted from 0, so a body had two numberings).
func TestAppendLinesNamesLinesFromOne(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good := []byte(`{"type":"event_msg","payload":{"type":"x"}}`)
	tests := []struct {
		name  string
		lines [][]byte
		want  string
	}{
		{"a newline in the second line (client)", [][]byte{good, []byte("{\"type\":\"a\",\n\"payload\":{}}")}, "line 2 "},
		{"no type in the second line (server)", [][]byte{good, []byte(`{"payload":{}}`)}, "line 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.AppendLines(ctx, th.ID, tt.lines...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, strings.TrimSpace(tt.want))
			}
		})
	}
}

// TestAppendLinesKeepsACarriageReturnInALine: a CR inside a line is JSON
// white space, which the server keeps byte for byte, so AppendLines sends
// it; it refuses only what would not come back as sent: a newline, which
// splits the line, and a CR at its end, which the server drops as part of a
// CRLF. It refused every CR, saying the line "contains a newline".
func TestAppendLinesKeepsACarriageReturnInALine(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	tests := []struct {
		name    string
		line    string
		wantErr string // "" when the line is appended and read back as sent
	}{
		{"a CR between tokens", "{\"type\":\"event_msg\",\r\"payload\":{\"type\":\"x\"}}", ""},
		{"a CR at the end", "{\"type\":\"event_msg\",\"payload\":{\"type\":\"x\"}}\r", "line 1 ends with a carriage return"},
		{"a newline", "{\"type\":\"event_msg\",\n\"payload\":{\"type\":\"x\"}}", "line 1 contains a newline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th, err := c.Create(ctx, client.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.AppendLines(ctx, th.ID, []byte(tt.line))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("AppendLines(%q) = %v, want an error saying %q", tt.line, err, tt.wantErr)
				}
				if !errors.Is(err, client.ErrInvalidArgument) {
					t.Fatalf("AppendLines(%q) = %v, want it to wrap ErrInvalidArgument", tt.line, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("AppendLines(%q): %v", tt.line, err)
			}
			var last client.Line
			for l, err := range c.Items(ctx, th.ID, -1) {
				if err != nil {
					t.Fatal(err)
				}
				last = l
			}
			if last.Offset != res.Offsets[0] || !strings.Contains(string(last.Raw), "\r") {
				t.Fatalf("last line at %d = %q, want the appended line, CR kept, at %d", last.Offset, last.Raw, res.Offsets[0])
			}
		})
	}
}
