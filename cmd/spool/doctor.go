package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/rollout"
)

// doctorReport is what doctor found. Drifts are disagreements between the
// index and the files; problems are things a person should know about
// that are not drift (torn tails, malformed lines).
type doctorReport struct {
	Where    string   `json:"where"`
	Method   string   `json:"method"`
	Files    int      `json:"files,omitempty"`
	Threads  int      `json:"threads"`
	Drifts   []drift  `json:"drifts"`
	Problems []string `json:"problems"`
}

type drift struct {
	Kind     string `json:"kind"`
	ThreadID string `json:"thread_id"`
	Path     string `json:"path"`
	Detail   string `json:"detail"`
}

// Doctor checks, through the API, that what the index says of each thread
// holds for the history the server streams from its file: the history is
// indexed_size bytes of line_count lines, and each of the thread's turns
// starts a line that is a counted user message. spoold has no verify
// route, so this reads every thread's history once; it cannot see a file
// that grew behind the server's back (the stream ends at the indexed
// size) or a file missing from the index. Run doctor on the root with
// spoold stopped for the full check.
func (r remote) Doctor(ctx context.Context) (doctorReport, error) {
	rep := doctorReport{
		Where:  r.Describe(),
		Method: "API check: each thread's streamed history against its index row and turns (spoold has no verify route)",
	}
	if err := r.Health(ctx); err != nil {
		return rep, err
	}
	for th, err := range r.Threads(ctx, client.ListOptions{Limit: 1000, Archived: client.AllThreads, Sort: client.SortCreated, Ascending: true}) {
		if err != nil {
			return rep, err
		}
		rep.Threads++
		drifts, err := r.checkThread(ctx, th)
		if errors.Is(err, client.ErrNotFound) {
			continue // deleted while we looked
		}
		if err != nil {
			return rep, fmt.Errorf("check thread %s: %w", th.ID, err)
		}
		rep.Drifts = append(rep.Drifts, drifts...)
	}
	return rep, nil
}

func (r remote) checkThread(ctx context.Context, th client.Thread) ([]drift, error) {
	turns, err := r.Turns(ctx, th.ID)
	if err != nil {
		return nil, err
	}
	body, err := r.ReadItems(ctx, th.ID, -1)
	if err != nil {
		return nil, err
	}
	defer body.Close()

	var drifts []drift
	report := func(kind, format string, args ...any) {
		drifts = append(drifts, drift{Kind: kind, ThreadID: th.ID, Path: th.RolloutPath, Detail: fmt.Sprintf(format, args...)})
	}
	// lineAt maps each line's start offset to its line number (0-based,
	// as the index counts) and kind.
	type lineInfo struct {
		number int64
		kind   rollout.Kind
	}
	lineAt := make(map[int64]lineInfo)
	br := bufio.NewReaderSize(body, 64<<10)
	var size, lines int64
	for {
		raw, err := br.ReadBytes('\n')
		if len(raw) > 0 {
			lines++
			if raw[len(raw)-1] != '\n' {
				report("field", "history ends inside line %d", lines-1)
			}
			info := lineInfo{number: lines - 1}
			if len(bytes.TrimSpace(raw)) > 0 {
				info.kind = rollout.Classify(rollout.NewLine(bytes.TrimRight(raw, "\r\n"), size, info.number)).Kind
			}
			lineAt[size] = info
			size += int64(len(raw))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if size != th.HistorySize() {
		report("field", "history is %d bytes, index says %d", size, th.HistorySize())
	}
	if lines != th.LineCount {
		report("field", "history has %d lines, index says %d", lines, th.LineCount)
	}
	if len(turns) != th.UserMessageCount {
		report("messages", "%d turns listed, index counts %d user messages", len(turns), th.UserMessageCount)
	}
	for _, turn := range turns {
		info, ok := lineAt[turn.Offset]
		switch {
		case !ok:
			report("messages", "user message %d at offset %d does not start a line", turn.Ordinal, turn.Offset)
		case info.kind != rollout.KindUserMessage:
			report("messages", "user message %d at offset %d is a %s line", turn.Ordinal, turn.Offset, info.kind)
		case info.number != turn.Line:
			report("messages", "user message %d is on line %d, index says %d", turn.Ordinal, info.number, turn.Line)
		}
	}
	return drifts, nil
}
