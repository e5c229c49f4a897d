package main

import (
	"context"
	"iter"
	"time"

	"github.com/spoolhq/spool/client"
)

// backoff is the poll interval of pollFollow: min after a change, doubling
// while nothing changes, up to max.
type backoff struct {
	min, max time.Duration
}

// pollFollow yields the lines appended to thread id after file offset
// seen, with Offset set to each line's offset in the file, until ctx is
// done or an error (yielded last) happens. It stands in for a follow
// stream the server does not have: it polls the thread's indexed size and,
// when it grew, reads from the last user message at or before seen (the
// only points the API can read from), skipping what was already yielded.
func pollFollow(ctx context.Context, b backend, id string, seen int64, bo backoff) iter.Seq2[client.Line, error] {
	return func(yield func(client.Line, error) bool) {
		wait := bo.min
		timer := time.NewTimer(wait)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			thread, err := b.Get(ctx, id)
			if err != nil {
				if ctx.Err() == nil {
					yield(client.Line{}, err)
				}
				return
			}
			if thread.HistorySize() <= seen {
				wait = min(2*wait, bo.max)
				timer.Reset(wait)
				continue
			}
			turns, err := b.Turns(ctx, id)
			if err != nil {
				yield(client.Line{}, err)
				return
			}
			from, start := -1, int64(0)
			for _, t := range turns {
				if t.Offset <= seen {
					from, start = t.Ordinal, t.Offset
				}
			}
			for line, err := range b.Items(ctx, id, from) {
				if err != nil {
					if ctx.Err() == nil {
						yield(client.Line{}, err)
					}
					return
				}
				line.Offset += start
				if line.Offset < seen {
					continue
				}
				if !yield(line, nil) {
					return
				}
				seen = line.Offset + int64(len(line.Raw)) + 1
			}
			// The stream ran to the size at the time of the read, at least
			// thread.IndexedSize; blank lines at its end yield nothing.
			seen = max(seen, thread.HistorySize())
			wait = bo.min
			timer.Reset(wait)
		}
	}
}
