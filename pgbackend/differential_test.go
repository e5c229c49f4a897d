//go:build distributed

package pgbackend_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/pgbackend"
	"github.com/spoolhq/spool/rollout"
)

// TestSameAsLocal runs seeded random sequences of operations (start,
// appends with rollbacks and turn events, Codex turns, forks by reference
// and by copy, reverts, archive, unarchive, rename, delete, purge, search)
// through the local backend and the distributed one side by side, and
// checks that they answer alike: every call succeeds on both or is refused
// on both with the same sentinel, and at the end each thread says the same
// (its row, its user messages, its whole history and each of its turns,
// byte for byte once ids and times are named alike), lists, searches and
// has the same ancestry. The two are two implementations of one contract
// (manager.Backend); where they differ, one of them is wrong.
//
// SPOOL_DIFF_SEEDS sets how many seeds run (default 20), SPOOL_DIFF_FROM
// the first (default 1).
func TestSameAsLocal(t *testing.T) {
	seeds, first := envInt(t, "SPOOL_DIFF_SEEDS", 20), envInt(t, "SPOOL_DIFF_FROM", 1)
	failed := 0
	for seed := first; seed < first+seeds; seed++ {
		ops := diffGenerate(uint64(seed))
		if diffs := diffRun(t, ops); len(diffs) > 0 {
			failed++
			t.Errorf("seed %d (SPOOL_DIFF_FROM=%d SPOOL_DIFF_SEEDS=1): the backends differ:\n  %s\nsequence:\n  %s",
				seed, seed, strings.Join(head(diffs, 8), "\n  "), strings.Join(opLines(ops), "\n  "))
			if failed == 3 {
				t.Fatalf("stopping after %d failed seeds", failed)
			}
		}
	}
	t.Logf("%d of %d seeds alike", seeds-failed, seeds)
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, s)
	}
	return n
}

var diffVocab = []string{"alpha", "beta", "gamma", "delta"}

// diffOp is one operation; threads are named by the slot of the op that
// made them.
type diffOp struct {
	Kind   string   // start, append, turn, fork, revert, archive, unarchive, rename, delete, purge, search
	Slot   int      // the thread acted on, or (start, fork) the slot made
	Parent int      // fork: the parent's slot
	Legacy bool     // start: a legacy thread
	Items  []string // append: "u:<text>", "a:<text>", "r:<n>" (rollback), "s:<turn>", "c:<turn>"
	Before int      // fork, revert: before user message Before; -1: none
	Turn   string   // turn: its id; fork, revert: before this turn
	Last   string   // fork: through this turn (LastTurnID)
	Mode   string   // fork: "", reference, copy
	Text   string   // turn: prompt; rename, start, fork: name; search: query
	Key    string   // append: an idempotency key, sent twice
}

func (o diffOp) String() string {
	switch o.Kind {
	case "start":
		return fmt.Sprintf("start T%d legacy=%v name=%q spawned by T%d", o.Slot, o.Legacy, o.Text, o.Parent)
	case "append":
		return fmt.Sprintf("append T%d %q key=%q", o.Slot, o.Items, o.Key)
	case "fork":
		return fmt.Sprintf("fork T%d -> T%d before=%d turn=%q last=%q mode=%q name=%q", o.Parent, o.Slot, o.Before, o.Turn, o.Last, o.Mode, o.Text)
	case "revert":
		return fmt.Sprintf("revert T%d before=%d turn=%q", o.Slot, o.Before, o.Turn)
	case "turn", "rename", "search":
		return fmt.Sprintf("%s T%d %q %s", o.Kind, o.Slot, o.Text, o.Turn)
	}
	return fmt.Sprintf("%s T%d", o.Kind, o.Slot)
}

func opLines(ops []diffOp) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = fmt.Sprintf("%2d %s", i, o)
	}
	return out
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), fmt.Sprintf("... (%d more)", len(s)-n))
	}
	return s
}

// diffGenerate returns the sequence of seed: 15 to 40 ops on up to 8
// threads, from a rough model of each thread's message count and turn ids
// so that most fork and revert points are in range.
func diffGenerate(seed uint64) []diffOp {
	r := rand.New(rand.NewPCG(seed, 0xd1ff))
	type model struct {
		msgs   int
		turns  []string
		legacy bool
	}
	var slots []*model
	prompt := func(i int) string {
		p := diffVocab[r.IntN(len(diffVocab))]
		if r.IntN(2) == 0 {
			p += " " + diffVocab[r.IntN(len(diffVocab))]
		}
		return p + fmt.Sprintf(" o%d", i)
	}
	point := func(m *model, o *diffOp, allowWhole bool) {
		o.Before = -1
		switch x := r.IntN(10); {
		case allowWhole && x < 3:
		case x < 8 || len(m.turns) == 0:
			o.Before = r.IntN(m.msgs + 2) // sometimes past the end
		default:
			o.Turn = m.turns[r.IntN(len(m.turns))]
		}
	}
	var ops []diffOp
	for i := range 15 + r.IntN(26) {
		o := diffOp{Before: -1}
		pick := func() int { return r.IntN(len(slots)) }
		switch x := r.IntN(100); {
		case len(slots) == 0 || (x < 10 && len(slots) < 8):
			o = diffOp{Kind: "start", Slot: len(slots), Legacy: r.IntN(3) == 0, Before: -1, Parent: -1}
			if len(slots) > 0 && r.IntN(4) == 0 {
				o.Parent = pick() // a sub-agent the thread in slot Parent spawned
			}
			if r.IntN(4) == 0 {
				o.Text = fmt.Sprintf("%s start %d", diffVocab[r.IntN(len(diffVocab))], i)
			}
			slots = append(slots, &model{legacy: o.Legacy})
		case x < 35:
			o.Kind, o.Slot = "append", pick()
			if r.IntN(5) == 0 {
				o.Key = fmt.Sprintf("key-%d", r.IntN(3)) // now and then one used before
			}
			m := slots[o.Slot]
			for range 1 + r.IntN(4) {
				switch y := r.IntN(20); {
				case y < 9:
					o.Items = append(o.Items, "u:"+prompt(i))
					m.msgs++
				case y < 14:
					o.Items = append(o.Items, "a:answer "+diffVocab[r.IntN(len(diffVocab))])
				case y < 16:
					id := fmt.Sprintf("open-%d", i)
					o.Items = append(o.Items, "s:"+id)
					m.turns = append(m.turns, id)
				case y < 17 && len(m.turns) > 0:
					o.Items = append(o.Items, "c:"+m.turns[len(m.turns)-1])
				case m.legacy:
					k := 1 + r.IntN(2)
					o.Items = append(o.Items, fmt.Sprintf("r:%d", k))
					m.msgs = max(0, m.msgs-k)
				default:
					o.Items = append(o.Items, "a:answer")
				}
			}
		case x < 50:
			o = diffOp{Kind: "turn", Slot: pick(), Turn: fmt.Sprintf("turn-%d", i), Text: prompt(i), Before: -1}
			slots[o.Slot].msgs++
			slots[o.Slot].turns = append(slots[o.Slot].turns, o.Turn)
		case x < 66:
			if len(slots) >= 8 {
				o = diffOp{Kind: "search", Slot: pick(), Text: diffVocab[r.IntN(len(diffVocab))], Before: -1}
				break
			}
			o.Kind, o.Parent, o.Slot = "fork", pick(), len(slots)
			p := slots[o.Parent]
			o.Mode = []string{"", "", manager.ForkReference, manager.ForkCopy}[r.IntN(4)]
			point(p, &o, true)
			if o.Turn != "" && r.IntN(2) == 0 {
				o.Last, o.Turn = o.Turn, ""
			}
			if r.IntN(5) == 0 {
				o.Text = fmt.Sprintf("%s fork %d", diffVocab[r.IntN(len(diffVocab))], i)
			}
			c := &model{legacy: p.legacy, msgs: p.msgs, turns: slices.Clone(p.turns)}
			if o.Before >= 0 && o.Before <= p.msgs {
				c.msgs = o.Before
			}
			slots = append(slots, c)
		case x < 76:
			o.Kind, o.Slot = "revert", pick()
			m := slots[o.Slot]
			point(m, &o, false)
			if o.Before >= 0 && o.Before <= m.msgs {
				m.msgs = o.Before
			}
		case x < 81:
			o.Kind, o.Slot = "archive", pick()
		case x < 85:
			o.Kind, o.Slot = "unarchive", pick()
		case x < 88:
			o.Kind, o.Slot, o.Text = "rename", pick(), fmt.Sprintf("%s name %d", diffVocab[r.IntN(len(diffVocab))], i)
		case x < 93:
			o.Kind, o.Slot = "delete", pick()
		case x < 96:
			o.Kind, o.Slot = "purge", pick()
		default:
			o.Kind, o.Slot, o.Text = "search", pick(), diffVocab[r.IntN(len(diffVocab))]
		}
		ops = append(ops, o)
	}
	return ops
}

// side is one backend under test and the ids of its threads by slot.
type side struct {
	name string
	b    manager.Backend
	ids  map[int]string
	slot map[string]int // id to slot
}

func openSides(t *testing.T) [2]*side {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	local, err := manager.Open(t.Context(), manager.Options{Root: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	bucket, err := objstore.NewCache(disttest.Bucket(t), t.TempDir(), 4<<10)
	if err != nil {
		t.Fatal(err)
	}
	dist, err := pgbackend.Open(t.Context(), pgbackend.Options{DSN: disttest.DSN(t), Bucket: bucket, SealBytes: 1, SealEvery: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dist.Close() })
	return [2]*side{
		{name: "local", b: local, ids: map[int]string{}, slot: map[string]int{}},
		{name: "distributed", b: dist, ids: map[int]string{}, slot: map[string]int{}},
	}
}

var errNoThread = errors.New("no such slot")

// diffRun runs ops on a new pair of backends and returns how they differ.
func diffRun(t *testing.T, ops []diffOp) []string {
	var diffs []string
	t.Run("", func(t *testing.T) {
		sides := openSides(t)
		ctx := t.Context()
		for i, o := range ops {
			var errs [2]error
			for k, s := range sides {
				errs[k] = s.apply(ctx, o)
			}
			if a, b := outcome(errs[0]), outcome(errs[1]); a != b {
				diffs = append(diffs, fmt.Sprintf("op %d %s: local %s (%v), distributed %s (%v)", i, o, a, errs[0], b, errs[1]))
				return // the two have parted; what follows compares nothing
			}
		}
		diffs = append(diffs, compareSides(ctx, sides, ops)...)
	})
	return diffs
}

// outcome names how a call ended: ok, a sentinel of the manager, or
// another error.
func outcome(err error) string {
	if err == nil || errors.Is(err, errNoThread) {
		return "ok"
	}
	for _, s := range []error{manager.ErrNotFound, manager.ErrInvalidArgument, manager.ErrOutOfRange,
		manager.ErrArchived, manager.ErrNotArchived, manager.ErrReferenced, manager.ErrInvalidItem,
		manager.ErrTurnInProgress, manager.ErrNotSupported, manager.ErrSizeMismatch} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "error"
}

func (s *side) apply(ctx context.Context, o diffOp) error {
	b := s.b
	made := func(th manager.Thread, err error) error {
		if err == nil {
			s.ids[o.Slot], s.slot[th.ID] = th.ID, o.Slot
		}
		return err
	}
	switch o.Kind {
	case "start":
		so := manager.StartOptions{Cwd: "/w", Source: "cli", Name: o.Text}
		if pid, ok := s.ids[o.Parent]; ok {
			so.Source = fmt.Sprintf(`{"subagent":{"thread_spawn":{"parent_thread_id":%q,"depth":1}}}`, pid)
		}
		if o.Legacy {
			so.HistoryMode = string(rollout.HistoryLegacy)
		}
		return made(b.Start(ctx, so))
	case "fork":
		pid, ok := s.ids[o.Parent]
		if !ok {
			return errNoThread
		}
		fo := manager.ForkOptions{Mode: o.Mode, BeforeTurnID: o.Turn, LastTurnID: o.Last, Name: o.Text}
		if o.Before >= 0 {
			fo.BeforeUserMessage = &o.Before
		}
		return made(b.Fork(ctx, pid, fo))
	}
	id, ok := s.ids[o.Slot]
	if !ok {
		return errNoThread
	}
	var err error
	switch o.Kind {
	case "append":
		ao := manager.AppendOptions{IdempotencyKey: o.Key}
		var first manager.AppendResult
		if first, err = b.AppendWith(ctx, id, diffItems(o.Items), ao); err != nil || o.Key == "" {
			break
		}
		// The same call again writes nothing and answers as the first.
		again, err := b.AppendWith(ctx, id, diffItems(o.Items), ao)
		if err == nil && !slices.Equal(again.Offsets, first.Offsets) {
			err = fmt.Errorf("the keyed append sent again answered offsets %v, the first %v", again.Offsets, first.Offsets)
		}
		return err
	case "turn":
		_, err = b.(manager.TurnWriter).AppendTurn(ctx, id, manager.TurnOptions{TurnID: o.Turn, Prompt: o.Text, Answer: "answer to " + o.Text})
	case "revert":
		ro := manager.RevertOptions{BeforeTurnID: o.Turn}
		if o.Before >= 0 {
			ro.BeforeUserMessage = &o.Before
		}
		_, err = b.(manager.Reverter).Revert(ctx, id, ro)
	case "archive":
		_, err = b.Archive(ctx, id)
	case "unarchive":
		_, err = b.Unarchive(ctx, id)
	case "rename":
		_, err = b.Rename(ctx, id, o.Text)
	case "delete":
		err = b.Delete(ctx, id)
	case "purge":
		err = b.(manager.Purger).Purge(ctx, id)
	case "search":
		_, err = b.(manager.Searcher).SearchPage(ctx, manager.SearchOptions{Query: o.Text, ThreadID: id})
	default:
		err = fmt.Errorf("unknown op %q", o.Kind)
	}
	return err
}

func diffItems(coded []string) []rollout.Item {
	var items []rollout.Item
	for _, it := range coded {
		k, v, _ := strings.Cut(it, ":")
		var payload []byte
		typ := rollout.TypeEventMsg
		switch k {
		case "u", "a":
			role, part := "user", "input_text"
			if k == "a" {
				role, part = "assistant", "output_text"
			}
			typ = rollout.TypeResponseItem
			payload, _ = json.Marshal(map[string]any{"type": "message", "role": role, "content": []any{map[string]any{"type": part, "text": v}}})
		case "s", "c":
			name := map[string]string{"s": "task_started", "c": "task_complete"}[k]
			payload, _ = json.Marshal(map[string]any{"type": name, "turn_id": v})
		case "r":
			n, _ := strconv.Atoi(v)
			payload, _ = json.Marshal(map[string]any{"type": "thread_rolled_back", "num_turns": n})
		}
		items = append(items, rollout.Item{Type: typ, Payload: payload})
	}
	return items
}

var (
	uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timePattern = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d[-:]\d\d[-:]\d\d(\.\d+)?Z?`)
	basePattern = regexp.MustCompile(`("history_base\\?":\{\\?"thread_id\\?":\\?")<[^>]*>`)
	// Unix times in seconds or milliseconds (started_at, completed_at_ms).
	epochPattern = regexp.MustCompile(`\b1\d{9}(\d{3})?\b`)
)

// normal names s's thread ids by slot and blanks its times.
func (s *side) normal(text string) string {
	text = uuidPattern.ReplaceAllStringFunc(text, func(id string) string {
		if k, ok := s.slot[id]; ok {
			return fmt.Sprintf("<T%d>", k)
		}
		return "<id>"
	})
	// A history_base cut in a reverted thread's later part names that
	// file's segment uuid locally, as Codex does, and the thread in the
	// database, which has no files (docs/DISTRIBUTED.md, Reverts): the
	// base is compared by its row and the base's offsets, not this name.
	text = basePattern.ReplaceAllString(text, `${1}<base>`)
	text = timePattern.ReplaceAllString(text, "<time>")
	return epochPattern.ReplaceAllString(text, "<epoch>")
}

// view is what one backend says of its threads, written so that the two
// can be compared line by line.
func (s *side) view(ctx context.Context, ops []diffOp) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, s.normal(fmt.Sprintf(format, a...))) }
	var turnIDs []string
	for _, o := range ops {
		if o.Kind == "turn" {
			turnIDs = append(turnIDs, o.Turn)
		}
		for _, it := range o.Items {
			if k, v, _ := strings.Cut(it, ":"); k == "s" && !slices.Contains(turnIDs, v) {
				turnIDs = append(turnIDs, v)
			}
		}
	}
	for k := range len(ops) {
		id, ok := s.ids[k]
		if !ok {
			continue
		}
		th, err := s.b.Get(ctx, id)
		if err != nil {
			add("T%d: get: %s", k, outcome(err))
			continue
		}
		add("T%d: archived=%v name=%q preview=%q parent=%s fork_msg=%d fork_offset=%d lines=%d msgs=%d size=%d history=%d mode=%s base=%s base_size=%d",
			k, th.Archived, th.Name, th.Preview, th.ParentID, th.ForkUserMessage, th.ForkOffset, th.LineCount,
			th.UserMessageCount, th.IndexedSize, th.HistorySize(), th.HistoryMode, th.BaseID, th.BaseSize)
		msgs, err := s.b.UserMessages(ctx, id)
		add("T%d: messages: %s", k, outcome(err))
		for _, m := range msgs {
			add("T%d: message %d at %d line %d cut %d turn %q: %q", k, m.Ordinal, m.Offset, m.Line, m.Cut(), m.TurnID, m.Preview)
		}
		add("T%d: history: %s", k, s.read(s.b.ReadFrom(ctx, id, -1)))
		for n := range th.UserMessageCount {
			add("T%d: turn %d: %s", k, n, s.read(s.b.ReadTurn(ctx, id, n)))
		}
		for lo := 0; lo <= th.UserMessageCount; lo += 2 {
			some, count, err := s.b.UserMessagesBetween(ctx, id, lo, lo+3)
			ords := make([]string, 0, len(some))
			for _, m := range some {
				ords = append(ords, fmt.Sprintf("%d@%d", m.Ordinal, m.Offset))
			}
			add("T%d: messages [%d, %d): %v of %d %s", k, lo, lo+3, ords, count, outcome(err))
		}
		for _, turn := range turnIDs {
			rc, span, err := s.b.(manager.TurnReader).ReadTurnByID(ctx, id, turn)
			add("T%d: turn %s: %s %d+%d [%d, %d) %s %s", k, turn, span.ID, span.UserMessage, span.UserMessages, span.Offset, span.End, span.Status, s.read(rc, err))
		}
		lin := s.b.(manager.Lineage)
		anc, err := lin.Ancestors(ctx, id)
		add("T%d: ancestors %s %s", k, relatives(anc), outcome(err))
		desc, err := lin.Descendants(ctx, id)
		add("T%d: descendants %s %s", k, relatives(desc), outcome(err))
		spawns := s.b.(manager.SpawnLineage)
		children, err := spawns.Spawns(ctx, id)
		add("T%d: spawns %s %s", k, relatives(children), outcome(err))
		by, err := spawns.SpawnedBy(ctx, id)
		add("T%d: spawned by %s %s", k, relatives(by), outcome(err))
		add("T%d: source %s", k, th.Source)
	}
	for _, archived := range []bool{false, true} {
		page, err := s.b.List(ctx, manager.ListOptions{Limit: 100, Archived: &archived, SortBy: manager.SortCreated})
		names := make([]string, 0, len(page.Threads))
		for _, th := range page.Threads {
			names = append(names, th.ID)
		}
		slices.Sort(names)
		add("list archived=%v: %v %s", archived, names, outcome(err))
	}
	stats, err := s.b.IndexStats(ctx)
	add("stats: %d threads, %d archived, %d user messages %s", stats.Threads, stats.Archived, stats.UserMessages, outcome(err))
	for _, w := range diffVocab {
		page, err := s.b.List(ctx, manager.ListOptions{Limit: 100, Text: w, SortBy: manager.SortCreated})
		names := make([]string, 0, len(page.Threads))
		for _, th := range page.Threads {
			names = append(names, th.ID)
		}
		slices.Sort(names)
		add("list text %s: %v %s", w, names, outcome(err))
	}
	for _, w := range diffVocab {
		page, err := s.b.(manager.Searcher).SearchPage(ctx, manager.SearchOptions{Query: w, Limit: 100})
		hits := make([]string, 0, len(page.Hits))
		for _, h := range page.Hits {
			hits = append(hits, fmt.Sprintf("%s#%d", h.ThreadID, h.Ordinal))
		}
		slices.Sort(hits)
		add("search %s: %v %s", w, hits, outcome(err))
	}
	return out
}

func relatives(rs []manager.Relative) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s@%d ", r.ID, r.Depth)
	}
	return b.String()
}

func (s *side) read(rc io.ReadCloser, err error) string {
	if err != nil || rc == nil {
		return "error " + outcome(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return "read error " + outcome(err)
	}
	return fmt.Sprintf("%q", b)
}

// compareSides returns the lines where the two views differ.
func compareSides(ctx context.Context, sides [2]*side, ops []diffOp) []string {
	a, b := sides[0].view(ctx, ops), sides[1].view(ctx, ops)
	var diffs []string
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			diffs = append(diffs, fmt.Sprintf("local:       %s\n  distributed: %s", around(x, y), around(y, x)))
		}
	}
	return diffs
}

// around returns the start of x and x around where it first differs from
// y.
func around(x, y string) string {
	at := 0
	for at < len(x) && at < len(y) && x[at] == y[at] {
		at++
	}
	if at < 200 {
		return fmt.Sprintf("%.400s", x)
	}
	return fmt.Sprintf("%.60s ...[%d] %.300s", x, at, x[at-100:])
}
