package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/spoolhq/spool/bench/corpus"
	"github.com/spoolhq/spool/internal/indextest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// small is a corpus shape quick enough for plain go test, images included.
var small = corpus.Options{Seed: 7, Turns: 6, TextBytes: 512, ImageEvery: 2, ImageBytes: 2048}

func TestGenerateDeterministic(t *testing.T) {
	var first, second, other bytes.Buffer
	t1, err := corpus.WriteThread(&first, small, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := corpus.WriteThread(&second, small, 3); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatal("same options and index gave different bytes")
	}
	reseeded := small
	reseeded.Seed++
	if _, err := corpus.WriteThread(&other, reseeded, 3); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first.Bytes(), other.Bytes()) {
		t.Fatal("another seed gave the same bytes")
	}

	if t1.Size != int64(first.Len()) {
		t.Fatalf("Size = %d, want %d", t1.Size, first.Len())
	}
	id, err := rollout.ParseID(t1.ID)
	if err != nil || id != t1.ID || id[14] != '7' {
		t.Fatalf("id %q is not a canonical v7-shaped UUID (%v)", t1.ID, err)
	}
	nameID, _, err := rollout.ParseFileName(filepath.Base(t1.Path))
	if err != nil || nameID != t1.ID {
		t.Fatalf("path %q: id %q, %v; want id %q", t1.Path, nameID, err, t1.ID)
	}
	meta, err := rollout.ParseSessionMeta(bytes.SplitN(first.Bytes(), []byte{'\n'}, 2)[0])
	if err != nil || meta.ID != t1.ID {
		t.Fatalf("first line: meta id %q, %v; want %q", meta.ID, err, t1.ID)
	}
	msgs, err := rollout.CountUserMessages(bytes.NewReader(first.Bytes()))
	if err != nil || len(msgs) != small.Turns || t1.UserMessages != small.Turns {
		t.Fatalf("counted %d user messages (%v), reported %d, want %d", len(msgs), err, t1.UserMessages, small.Turns)
	}
}

// smallRoot generates n threads of small into a temporary root and opens a
// manager on it.
func smallRoot(t *testing.T, n int) (*manager.Manager, []corpus.Thread, string) {
	t.Helper()
	root := t.TempDir()
	threads, err := corpus.Generate(context.Background(), root, n, small)
	if err != nil {
		t.Fatal(err)
	}
	return openManager(t, root, rolloutfs.SyncNone), threads, root
}

// TestCodexForkMatchesSpool checks that the Codex-way baseline does the
// same work as spool's fork: after the first line, both files hold the
// same lines (compared as JSON values: the baseline re-encodes them), but
// for the start lines of the cut turn (task_started, turn_context), which
// the Codex way cuts before and spool may keep.
func TestCodexForkMatchesSpool(t *testing.T) {
	ctx := context.Background()
	m, threads, root := smallRoot(t, 2)
	parent := threads[1]
	for _, before := range []int{0, 3, small.Turns - 1} {
		child, err := m.Fork(ctx, parent.ID, manager.ForkOptions{BeforeUserMessage: &before})
		if err != nil {
			t.Fatal(err)
		}
		spoolFork, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(child.RolloutPath)))
		if err != nil {
			t.Fatal(err)
		}
		parentRow, err := m.Get(ctx, parent.ID)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "codex.jsonl")
		if _, err := CodexFork(filepath.Join(root, filepath.FromSlash(parent.Path)), dst, forkMeta(t, parentRow), before); err != nil {
			t.Fatal(err)
		}
		codexFork, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		spoolLines, codexLines := jsonLines(t, spoolFork)[1:], jsonLines(t, codexFork)[1:]
		if len(spoolLines) < len(codexLines) {
			t.Fatalf("fork before %d: spool kept %d lines after its meta, the Codex way %d", before, len(spoolLines), len(codexLines))
		}
		for i, want := range codexLines {
			if !reflect.DeepEqual(spoolLines[i], want) {
				t.Fatalf("fork before %d: line %d after the meta differs:\nspool: %v\ncodex: %v", before, i+1, spoolLines[i], want)
			}
		}
		for _, extra := range spoolLines[len(codexLines):] {
			if typ := lineKind(extra); typ != "task_started" && typ != "turn_context" {
				t.Fatalf("fork before %d: spool keeps a %s line the Codex way cuts", before, typ)
			}
		}
	}
}

// jsonLines decodes every line of data into generic JSON values, without
// the members whose value is null, empty or zero-length (the typed
// structs of the baseline leave those out).
func jsonLines(t *testing.T, data []byte) []any {
	t.Helper()
	var out []any
	for line := range bytes.Lines(data) {
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, dropEmpty(v))
	}
	return out
}

func dropEmpty(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			e = dropEmpty(e)
			if e == nil || e == "" {
				delete(x, k)
				continue
			}
			if a, ok := e.([]any); ok && len(a) == 0 {
				delete(x, k)
				continue
			}
			x[k] = e
		}
	case []any:
		for i := range x {
			x[i] = dropEmpty(x[i])
		}
	}
	return v
}

// lineKind names a decoded line: its payload type, or the line type.
func lineKind(v any) string {
	line, _ := v.(map[string]any)
	if p, ok := line["payload"].(map[string]any); ok {
		if typ, ok := p["type"].(string); ok && line["type"] == "event_msg" {
			return typ
		}
	}
	typ, _ := line["type"].(string)
	return typ
}

// TestParseLastTurnMatchesReadTurn checks that the resume baseline reads
// the same last turn as manager.ReadTurn, and decodes only its lines.
func TestParseLastTurnMatchesReadTurn(t *testing.T) {
	ctx := context.Background()
	m, threads, root := smallRoot(t, 1)
	rc, err := m.ReadTurn(ctx, threads[0].ID, small.Turns-1)
	if err != nil {
		t.Fatal(err)
	}
	spoolTurn, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	turn, lines, err := ParseLastTurn(filepath.Join(root, filepath.FromSlash(threads[0].Path)))
	if err != nil {
		t.Fatal(err)
	}
	if lines != len(turn) || int64(lines) >= threads[0].Lines {
		t.Fatalf("decoded %d lines for a last turn of %d lines in a file of %d: want only the turn's", lines, len(turn), threads[0].Lines)
	}
	if got := bytes.Join(turn, nil); !bytes.Equal(got, spoolTurn) {
		t.Fatalf("last turn: baseline read %d bytes, ReadTurn %d, and they differ", len(got), len(spoolTurn))
	}
}

// TestParseLastTurnAcrossBlocks reads backwards in blocks smaller than a
// line, so lines span blocks.
func TestParseLastTurnAcrossBlocks(t *testing.T) {
	_, threads, root := smallRoot(t, 1)
	path := filepath.Join(root, filepath.FromSlash(threads[0].Path))
	want, _, err := ParseLastTurn(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func(n int) { lastTurnBlock = n }(lastTurnBlock)
	for _, block := range []int{1, 7, 100, 4096} {
		lastTurnBlock = block
		got, _, err := ParseLastTurn(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.Join(got, nil), bytes.Join(want, nil)) {
			t.Fatalf("block %d: read %d lines of the last turn, want %d, or other bytes", block, len(got), len(want))
		}
	}
}

// TestScanNewest: the listing baseline returns the newest threads by
// creation time, newest first, and stops at the page size.
func TestScanNewest(t *testing.T) {
	_, threads, root := smallRoot(t, 8)
	page, err := ScanNewest(root, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 5 {
		t.Fatalf("scan returned %d threads, want 5", len(page))
	}
	for i, e := range page {
		if want := threads[len(threads)-1-i].ID; e.ID != want {
			t.Fatalf("entry %d: id %s, want %s (the %d-th newest)", i, e.ID, want, i+1)
		}
	}
}

// TestForkCorpus checks the reference forks of the full-reindex figure on
// a small corpus: each link of a chain is a reference fork of the one
// before, holding its own turns, and a full rebuild from the files gives
// the index the manager that made them kept.
func TestForkCorpus(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	const bases, forks, depth = 3, 5, 3
	if err := makeForks(ctx, root, bases, forks, depth, paginated(small), paginated(small)); err != nil {
		t.Fatal(err)
	}
	live, err := store.Open(ctx, filepath.Join(root, manager.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	page, err := live.List(ctx, store.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(page.Threads); got != bases+forks {
		t.Fatalf("index lists %d threads, want %d", got, bases+forks)
	}
	maxDepth := 0
	for _, th := range page.Threads {
		if th.BaseID == "" {
			continue
		}
		if th.LineCount < 2 {
			t.Errorf("fork %s: %d lines, want its own turns after its meta", th.ID, th.LineCount)
		}
		ancestors, err := live.Ancestors(ctx, th.ID)
		if err != nil {
			t.Fatal(err)
		}
		maxDepth = max(maxDepth, len(ancestors))
	}
	if maxDepth != depth {
		t.Errorf("deepest fork has %d ancestors, want %d", maxDepth, depth)
	}
	indextest.CompareRebuilds(t, live, root)
}
