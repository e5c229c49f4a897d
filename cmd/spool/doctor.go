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
	// unreadable counts the problems that are rollout files that could
	// not be read or indexed at all: like drift, they fail doctor, as
	// they fail reindex --verify.
	unreadable int
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
// route, so this reads every thread's history once. Reading a thread
// brings its index up to lines another process appended since the
// listing, so such a thread shows as drift in this run and not in the
// next, and drops the row of a thread whose file is gone (as it follows
// Codex's delete), which then shows as nothing; a file missing from the
// index it cannot see. Run doctor on the root with spoold stopped for the
// full check (it changes nothing, and reports such a row as stale).
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
			if _, gerr := r.Get(ctx, th.ID); errors.Is(gerr, client.ErrNotFound) {
				continue // deleted while we looked
			}
			// Still indexed, yet its history cannot be read: its file is
			// gone (reindex --verify calls that stale).
			rep.Drifts = append(rep.Drifts, drift{Kind: "stale", ThreadID: th.ID, Path: th.RolloutPath,
				Detail: fmt.Sprintf("indexed, but its history cannot be read: %v", err)})
			continue
		}
		if errors.Is(err, client.ErrBrokenChain) {
			// Its history continues bytes its base no longer holds (a
			// base cut or reverted under it): one thread to report, not
			// the end of the check.
			rep.Drifts = append(rep.Drifts, drift{Kind: "broken_chain", ThreadID: th.ID, Path: th.RolloutPath,
				Detail: fmt.Sprintf("its history cannot be read: %v", err)})
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("check thread %s: %w", th.ID, err)
		}
		rep.Drifts = append(rep.Drifts, drifts...)
	}
	return rep, nil
}

// fileStarts returns the positions in th's history where its files
// begin, as far as the API tells them: th's own file at its BaseSize, and
// down its chain of bases each base's own file, then 0. known is the
// position below which they are not known: a reverted thread (its own
// base) does not say where its earlier files begin.
func (r remote) fileStarts(ctx context.Context, th client.Thread) (starts []int64, known int64, err error) {
	for t, depth := th, 0; ; depth++ {
		if t.BaseID == "" {
			return append(starts, 0), 0, nil
		}
		if len(starts) == 0 || t.BaseSize < starts[len(starts)-1] { // a base's file past the cut is not in th's history
			starts = append(starts, t.BaseSize)
		}
		if t.BaseID == t.ID || depth == maxChainDepth {
			return starts, starts[len(starts)-1], nil
		}
		if t, err = r.Get(ctx, t.BaseID); err != nil {
			return nil, 0, fmt.Errorf("base of %s: %w", th.ID, err)
		}
	}
}

// maxChainDepth bounds the walk down a chain of bases.
const maxChainDepth = 64

func (r remote) checkThread(ctx context.Context, th client.Thread) ([]drift, error) {
	turns, err := r.Turns(ctx, th.ID)
	if err != nil {
		return nil, err
	}
	starts, known, err := r.fileStarts(ctx, th)
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
	// lineAt maps the start offset of each line a user message or a file
	// is said to begin at to its line number (0-based, as the index
	// counts) and kind: the other lines are counted, not kept, so memory
	// grows with the thread's turns, not its lines.
	type lineInfo struct {
		number int64
		kind   rollout.Kind
	}
	wanted := make(map[int64]bool, len(turns)+len(starts))
	for _, turn := range turns {
		wanted[turn.Offset] = true
	}
	for _, s := range starts {
		wanted[s] = true
	}
	lineAt := make(map[int64]lineInfo, len(wanted))
	br := bufio.NewReaderSize(body, 64<<10)
	var size, lines, ownLines int64
	for {
		raw, err := br.ReadBytes('\n')
		if len(raw) > 0 {
			lines++
			if size >= th.BaseSize {
				ownLines++ // the index counts the lines of th's own file
			}
			if raw[len(raw)-1] != '\n' {
				report("field", "history ends inside line %d", lines-1)
			}
			if wanted[size] {
				info := lineInfo{number: lines - 1}
				if len(bytes.TrimSpace(raw)) > 0 {
					info.kind = rollout.Classify(rollout.NewLine(bytes.TrimRight(raw, "\r\n"), size, info.number)).Kind
				}
				lineAt[size] = info
			}
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
	if ownLines != th.LineCount {
		report("field", "own file has %d lines, index says %d", ownLines, th.LineCount)
	}
	if len(turns) != th.UserMessageCount {
		report("messages", "%d turns listed, index counts %d user messages", len(turns), th.UserMessageCount)
	}
	for _, turn := range turns {
		info, ok := lineAt[turn.Offset]
		// The index numbers a message's line in the file that holds it.
		start := starts[len(starts)-1]
		for _, s := range starts {
			if s <= turn.Offset {
				start = s
				break
			}
		}
		line := info.number - lineAt[start].number
		switch {
		case !ok:
			report("messages", "user message %d at offset %d does not start a line", turn.Ordinal, turn.Offset)
		case info.kind != rollout.KindUserMessage:
			report("messages", "user message %d at offset %d is a %s line", turn.Ordinal, turn.Offset, info.kind)
		case turn.Offset >= known && line != turn.Line:
			report("messages", "user message %d is on line %d of its file, index says %d", turn.Ordinal, line, turn.Line)
		}
	}
	return drifts, nil
}
