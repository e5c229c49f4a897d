package rolloutfs_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
)

// TestLocalRemoveTemp: RemoveTemp removes a temporary file no writer
// holds (a crash's leftover), a link named like one without following it,
// and nothing else.
func TestLocalRemoveTemp(t *testing.T) {
	l := newLocal(t)
	ctx := t.Context()
	const leftover = "d/a.jsonl.x1" + rolloutfs.TempSuffix
	put(t, l.Root, leftover, []byte(`{"half":`))
	if err := l.RemoveTemp(ctx, leftover); err != nil {
		t.Fatalf("RemoveTemp of a leftover: %v", err)
	}
	absent(t, l.Root, leftover)

	outside := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(outside, []byte("kept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const link = "d/b.jsonl.x2" + rolloutfs.TempSuffix
	if err := os.Symlink(outside, filepath.Join(l.Root, "d", "b.jsonl.x2"+rolloutfs.TempSuffix)); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoveTemp(ctx, link); err != nil {
		t.Fatalf("RemoveTemp of a link: %v", err)
	}
	absent(t, l.Root, link)
	if data, err := os.ReadFile(outside); err != nil || string(data) != "kept\n" {
		t.Fatalf("the link's target: %q, %v", data, err)
	}

	put(t, l.Root, "d/c.jsonl", []byte("c\n"))
	if err := l.RemoveTemp(ctx, "d/c.jsonl"); !errors.Is(err, rolloutfs.ErrInvalidName) {
		t.Fatalf("RemoveTemp of a rollout: %v, want ErrInvalidName", err)
	}
	if err := l.RemoveTemp(ctx, leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("RemoveTemp of a missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestRemoveTempLeavesAWriter: while a Create or a Replace writes its
// temporary file, RemoveTemp (here from the same process; the lock is
// the open file's, so another process is refused alike) fails with
// ErrInUse and removes nothing, and the write then completes.
func TestRemoveTempLeavesAWriter(t *testing.T) {
	for _, op := range []string{"create", "replace"} {
		t.Run(op, func(t *testing.T) {
			l := newLocal(t)
			ctx := t.Context()
			const name = "d/a.jsonl"
			if op == "replace" {
				put(t, l.Root, name, []byte("old\n"))
			} else if err := os.MkdirAll(filepath.Join(l.Root, "d"), 0o700); err != nil {
				t.Fatal(err)
			}
			pr, pw := io.Pipe()
			src := &signalReader{r: pr, reading: make(chan struct{})}
			done := make(chan error, 1)
			go func() {
				parts := []rolloutfs.Part{rolloutfs.Bytes([]byte("new ")), rolloutfs.Stream(src)}
				var err error
				if op == "create" {
					_, err = l.Create(ctx, name, parts, true)
				} else {
					_, err = l.Replace(ctx, name, parts, true)
				}
				done <- err
			}()
			<-src.reading // the temporary file exists and is being written
			temps := tempsIn(t, filepath.Join(l.Root, "d"))
			if len(temps) != 1 {
				t.Fatalf("temporary files %v, want one", temps)
			}
			temp := "d/" + temps[0]
			if err := l.RemoveTemp(ctx, temp); !errors.Is(err, rolloutfs.ErrInUse) {
				t.Fatalf("RemoveTemp while it is written: %v, want ErrInUse", err)
			}
			if _, err := os.Lstat(filepath.Join(l.Root, filepath.FromSlash(temp))); err != nil {
				t.Fatalf("the writer's temporary file: %v", err)
			}
			if _, err := pw.Write([]byte("line\n")); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			if err := <-done; err != nil {
				t.Fatalf("%s: %v", op, err)
			}
			if got := string(get(t, l.Root, name)); got != "new line\n" {
				t.Fatalf("%s wrote %q", op, got)
			}
			if temps := tempsIn(t, filepath.Join(l.Root, "d")); len(temps) != 0 {
				t.Fatalf("temporary files left: %v", temps)
			}
		})
	}
}

// signalReader reads r, closing reading at its first Read.
type signalReader struct {
	r       io.Reader
	once    sync.Once
	reading chan struct{}
}

func (s *signalReader) Read(p []byte) (int, error) {
	s.once.Do(func() { close(s.reading) })
	return s.r.Read(p)
}

// tempsIn returns the names of the temporary files in dir.
func tempsIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var temps []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), rolloutfs.TempSuffix) {
			temps = append(temps, e.Name())
		}
	}
	return temps
}
