package rolloutfs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestDurableFillHandsChunksToTheDisk: a durable Create of a large copy
// starts the writeback of each writebackChunk bytes as it writes them, in
// order and without gaps, so that its fsync finds little left to write;
// one that is not durable starts none. The copy is whole either way.
func TestDurableFillHandsChunksToTheDisk(t *testing.T) {
	type span struct{ off, n int64 }
	var started []span
	startWriteback = func(_ *os.File, off, n int64) { started = append(started, span{off, n}) }
	defer func() { startWriteback = startFileWriteback }()

	l := Local{Root: t.TempDir()}
	parent := make([]byte, 2*writebackChunk+12345)
	rand.NewChaCha8([32]byte{}).Read(parent)
	if err := os.WriteFile(filepath.Join(l.Root, "parent.jsonl"), parent, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := l.Open(t.Context(), "parent.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	meta := []byte("meta\n")
	want := append(append([]byte(nil), meta...), parent...)

	for _, tc := range []struct {
		name    string
		copied  Part
		durable bool
	}{
		{"range", Range(src, 0, int64(len(parent))), true},
		{"segments", Range(Concat(
			Segment{File: src, Offset: 0, Length: writebackChunk + 777},
			Segment{File: src, Offset: writebackChunk + 777, Length: int64(len(parent)) - writebackChunk - 777},
		), 0, int64(len(parent))), true},
		{"stream", Stream(bytes.NewReader(parent)), true},
		{"range, not durable", Range(src, 0, int64(len(parent))), false},
		{"stream, not durable", Stream(bytes.NewReader(parent)), false},
	} {
		started = nil
		name, durable := tc.name+".jsonl", tc.durable
		if _, err := l.Create(t.Context(), name, []Part{Bytes(meta), tc.copied}, durable); err != nil {
			t.Fatalf("Create %s: %v", tc.name, err)
		}
		got, err := os.ReadFile(filepath.Join(l.Root, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: the copy is %d bytes (%v), want the %d written, equal", tc.name, len(got), err, len(want))
		}
		if !durable {
			if len(started) != 0 {
				t.Fatalf("%s: a fill that is not synced started writeback %v", tc.name, started)
			}
			continue
		}
		var next int64
		for _, s := range started {
			if s.off != next || s.n < writebackChunk {
				t.Fatalf("%s: writeback %v: want contiguous spans of at least %d bytes from 0", tc.name, started, writebackChunk)
			}
			next = s.off + s.n
		}
		if left := int64(len(want)) - next; left < 0 || left >= writebackChunk {
			t.Fatalf("%s: writeback %v left %d of %d bytes to the fsync, want under %d", tc.name, started, left, len(want), writebackChunk)
		}
	}
}
