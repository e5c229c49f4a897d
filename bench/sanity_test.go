package bench

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/bench/corpus"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
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
// same work as spool's fork: after the first line, the files are equal.
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
		_, spoolRest, _ := bytes.Cut(spoolFork, []byte{'\n'})
		_, codexRest, _ := bytes.Cut(codexFork, []byte{'\n'})
		if !bytes.Equal(spoolRest, codexRest) {
			t.Fatalf("fork before %d: after the meta line, spool wrote %d bytes and the Codex way %d, and they differ",
				before, len(spoolRest), len(codexRest))
		}
	}
}

// TestParseLastTurnMatchesReadTurn checks that the resume baseline reads
// the same last turn as manager.ReadTurn.
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
	if int64(lines) != threads[0].Lines {
		t.Fatalf("parsed %d lines, want %d", lines, threads[0].Lines)
	}
	if got := bytes.Join(turn, nil); !bytes.Equal(got, spoolTurn) {
		t.Fatalf("last turn: baseline read %d bytes, ReadTurn %d, and they differ", len(got), len(spoolTurn))
	}
}

func TestScanNewest(t *testing.T) {
	_, threads, root := smallRoot(t, 8)
	page, err := ScanNewest(root, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 5 {
		t.Fatalf("scan returned %d threads, want 5", len(page))
	}
	known := make(map[string]bool)
	for _, th := range threads {
		known[th.ID] = true
	}
	for i, e := range page {
		if !known[e.ID] {
			t.Fatalf("entry %d: unknown id %q", i, e.ID)
		}
		if i > 0 && e.Updated > page[i-1].Updated {
			t.Fatalf("entry %d is newer than entry %d", i, i-1)
		}
	}
}
