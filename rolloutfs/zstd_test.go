package rolloutfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/spoolhq/spool/rolloutfs"
)

// compress returns data as a zstd stream of one frame per chunk of
// frameSize bytes (Codex's encoder writes one; concatenated frames are a
// valid stream too).
func compress(t testing.TB, data []byte, frameSize int) []byte {
	t.Helper()
	var out bytes.Buffer
	for len(data) > 0 {
		n := min(frameSize, len(data))
		enc, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enc.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	return out.Bytes()
}

func lineData(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"timestamp":"2026-01-02T03:04:05.000Z","type":"event_msg","payload":{"n":%d}}`+"\n", i)
	}
	return b.Bytes()
}

func openCompressed(t *testing.T, compressed []byte) rolloutfs.ReadFile {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f.jsonl.zst"), compressed, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := rolloutfs.Local{Root: root}.Open(t.Context(), "f.jsonl.zst")
	if err != nil {
		t.Fatal(err)
	}
	z := rolloutfs.Decompress(f)
	t.Cleanup(func() { z.Close() })
	return z
}

func TestDecompressReadAt(t *testing.T) {
	data := lineData(5000)
	for _, frame := range []int{len(data), 4096} {
		t.Run(fmt.Sprintf("frames of %d", frame), func(t *testing.T) {
			z := openCompressed(t, compress(t, data, frame))
			// Forward, backward, across frames, and to the end.
			for _, r := range []struct{ off, n int }{{0, 10}, {10, 100}, {5000, 300}, {20, 7}, {len(data) - 50, 50}, {0, len(data)}} {
				got := make([]byte, r.n)
				n, err := z.ReadAt(got, int64(r.off))
				if err != nil || n != r.n {
					t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", r.n, r.off, n, err)
				}
				if want := data[r.off : r.off+r.n]; !bytes.Equal(got, want) {
					t.Fatalf("ReadAt at %d = %q, want %q", r.off, got, want)
				}
			}
			if got, want := z.Size(), int64(len(data)); got != want {
				t.Fatalf("Size = %d, want %d", got, want)
			}
			buf := make([]byte, 100)
			n, err := z.ReadAt(buf, int64(len(data))-40)
			if n != 40 || err != io.EOF {
				t.Fatalf("ReadAt over the end = %d, %v; want 40, io.EOF", n, err)
			}
			if n, err := z.ReadAt(buf, int64(len(data))); n != 0 || err != io.EOF {
				t.Fatalf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
			}
			all, err := io.ReadAll(io.NewSectionReader(z, 0, z.Size()))
			if err != nil || !bytes.Equal(all, data) {
				t.Fatalf("sequential read: %d bytes, %v; want %d", len(all), err, len(data))
			}
		})
	}
}

func TestDecompressConcurrentReaders(t *testing.T) {
	data := lineData(2000)
	z := openCompressed(t, compress(t, data, len(data)))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			off := int64(i * 1000)
			got, err := io.ReadAll(io.NewSectionReader(z, off, int64(len(data))-off))
			if err != nil || !bytes.Equal(got, data[off:]) {
				t.Errorf("reader from %d: %d bytes, %v", off, len(got), err)
			}
		})
	}
	wg.Wait()
}

// A truncated stream is an error, never a clean, shorter file.
func TestDecompressTruncated(t *testing.T) {
	data := lineData(3000)
	compressed := compress(t, data, len(data))
	z := openCompressed(t, compressed[:len(compressed)/2])
	_, err := io.ReadAll(io.NewSectionReader(z, 0, int64(len(data))))
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read of a truncated stream: err = %v, want a decoding error", err)
	}
	if size := z.Size(); size >= int64(len(data)) {
		t.Fatalf("Size of a truncated stream = %d, want less than %d", size, len(data))
	}
	if _, err := z.ReadAt(make([]byte, 10), int64(len(data))-10); err == nil || err == io.EOF {
		t.Fatalf("ReadAt past what decodes: err = %v, want a decoding error", err)
	}
}

func TestDecompressGarbage(t *testing.T) {
	z := openCompressed(t, []byte("{\"not\":\"zstd\"}\n"))
	if _, err := z.ReadAt(make([]byte, 4), 0); err == nil || err == io.EOF {
		t.Fatalf("ReadAt of a plain file: err = %v, want a decoding error", err)
	}
}
