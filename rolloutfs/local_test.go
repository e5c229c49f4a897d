package rolloutfs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/rolloutfs"
)

// newLocal returns a Local on a fresh directory.
func newLocal(t *testing.T) rolloutfs.Local {
	t.Helper()
	return rolloutfs.Local{Root: t.TempDir()}
}

// put writes a file under root, creating its directories.
func put(t *testing.T, root, name string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// get reads a file under root.
func get(t *testing.T, root, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// absent fails the test unless name does not exist under root (not even as
// a dangling link).
func absent(t *testing.T, root, name string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(name))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: Lstat error = %v, want fs.ErrNotExist", name, err)
	}
}

// noTemps fails the test if dir under root holds a temporary file of
// Create.
func noTemps(t *testing.T, root, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if rolloutfs.IsTemp(e.Name()) {
			t.Fatalf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

// pattern returns n bytes that differ at every offset of a small period,
// so a copy from the wrong offset shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%251%26)
		if i%97 == 96 {
			b[i] = '\n'
		}
	}
	return b
}

// memFile is a ReadFile that is not a Local file, so Create copies it
// through user space.
type memFile struct{ *bytes.Reader }

func (m memFile) Close() error { return nil }

func openLocal(t *testing.T, l rolloutfs.Local, name string) rolloutfs.ReadFile {
	t.Helper()
	rf, err := l.Open(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rf.Close() })
	return rf
}

func TestLocalCreate(t *testing.T) {
	l := newLocal(t)
	src := pattern(300 << 10)
	put(t, l.Root, "src.jsonl", src)
	local := openLocal(t, l, "src.jsonl")
	mem := memFile{bytes.NewReader(src)}
	head, tail := []byte("{\"type\":\"session_meta\"}\n"), []byte("{\"type\":\"tail\"}\n")

	tests := []struct {
		name  string
		parts []rolloutfs.Part
		want  []byte
	}{
		{"no parts", nil, nil},
		{"bytes", []rolloutfs.Part{rolloutfs.Bytes(head), rolloutfs.Bytes(tail)}, cat(head, tail)},
		{"local range after bytes", []rolloutfs.Part{rolloutfs.Bytes(head), rolloutfs.Range(local, 1234, 100<<10)},
			cat(head, src[1234:1234+100<<10])},
		{"bytes after local range", []rolloutfs.Part{rolloutfs.Bytes(head), rolloutfs.Range(local, 1234, 100<<10), rolloutfs.Bytes(tail)},
			cat(head, src[1234:1234+100<<10], tail)},
		{"two local ranges", []rolloutfs.Part{rolloutfs.Range(local, 70<<10, 90<<10), rolloutfs.Range(local, 7, 65<<10+3)},
			cat(src[70<<10:160<<10], src[7:7+65<<10+3])},
		{"memory range between bytes", []rolloutfs.Part{rolloutfs.Bytes(head), rolloutfs.Range(mem, 999, 80<<10), rolloutfs.Bytes(tail)},
			cat(head, src[999:999+80<<10], tail)},
		{"empty range", []rolloutfs.Part{rolloutfs.Bytes(head), rolloutfs.Range(local, 5, 0), rolloutfs.Bytes(tail)}, cat(head, tail)},
	}
	for i, tt := range tests {
		for _, durable := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/durable=%v", tt.name, durable), func(t *testing.T) {
				name := fmt.Sprintf("sessions/2026/%02d/%v/r.jsonl", i, durable)
				info, err := l.Create(t.Context(), name, tt.parts, durable)
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				got := get(t, l.Root, name)
				if !bytes.Equal(got, tt.want) {
					t.Fatalf("content: %d bytes, want %d bytes; differ from byte %d", len(got), len(tt.want), firstDiff(got, tt.want))
				}
				if got, want := info.Size, int64(len(tt.want)); got != want {
					t.Errorf("FileInfo.Size = %d, want %d", got, want)
				}
				noTemps(t, l.Root, path.Dir(name))
			})
		}
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestLocalCreateConcurrentSameName checks that Creates racing for one
// name each write their own temporary file: exactly one wins with its
// whole content, the others fail with fs.ErrExist.
func TestLocalCreateConcurrentSameName(t *testing.T) {
	const writers, size = 6, 1 << 20
	for round := range 10 {
		l := newLocal(t)
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for w := range writers {
			wg.Go(func() {
				data := bytes.Repeat([]byte{'a' + byte(w)}, size)
				_, errs[w] = l.Create(t.Context(), "r.jsonl", []rolloutfs.Part{rolloutfs.Bytes(data)}, false)
			})
		}
		wg.Wait()
		winners := 0
		for w, err := range errs {
			switch {
			case err == nil:
				winners++
			case !errors.Is(err, fs.ErrExist):
				t.Errorf("round %d, writer %d: error %v, want nil or fs.ErrExist", round, w, err)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d Creates succeeded, want 1", round, winners)
		}
		if got := get(t, l.Root, "r.jsonl"); len(got) != size || bytes.Count(got, got[:1]) != size {
			t.Fatalf("round %d: file of %d bytes is not one writer's whole content", round, len(got))
		}
		noTemps(t, l.Root, ".")
	}
}

func TestLocalCreateFails(t *testing.T) {
	l := newLocal(t)
	src := pattern(100 << 10)
	put(t, l.Root, "src.jsonl", src)
	put(t, l.Root, "exists.jsonl", []byte("old\n"))
	local := openLocal(t, l, "src.jsonl")
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		file    string
		parts   []rolloutfs.Part
		wantErr error
	}{
		{"existing name", t.Context(), "exists.jsonl", []rolloutfs.Part{rolloutfs.Bytes([]byte("new\n"))}, fs.ErrExist},
		{"local range past the end", t.Context(), "short.jsonl", []rolloutfs.Part{rolloutfs.Bytes([]byte("x\n")), rolloutfs.Range(local, 90<<10, 20<<10)}, io.ErrUnexpectedEOF},
		{"memory range past the end", t.Context(), "short2.jsonl", []rolloutfs.Part{rolloutfs.Range(memFile{bytes.NewReader(src)}, 90<<10, 20<<10)}, io.ErrUnexpectedEOF},
		{"cancelled", cancelled, "cancelled.jsonl", []rolloutfs.Part{rolloutfs.Bytes([]byte("x\n"))}, context.Canceled},
		{"invalid name", t.Context(), "../escape.jsonl", []rolloutfs.Part{rolloutfs.Bytes([]byte("x\n"))}, rolloutfs.ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Create(tt.ctx, tt.file, tt.parts, true); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Create error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == rolloutfs.ErrInvalidName {
				absent(t, filepath.Dir(l.Root), "escape.jsonl")
				noTemps(t, filepath.Dir(l.Root), ".")
				return
			}
			noTemps(t, l.Root, ".")
			if tt.file == "exists.jsonl" {
				if got, want := string(get(t, l.Root, tt.file)), "old\n"; got != want {
					t.Fatalf("existing file = %q, want %q", got, want)
				}
				return
			}
			absent(t, l.Root, tt.file)
		})
	}
}

// umask returns the process's umask as /proc reports it, without changing
// it, or skips the test.
func umask(t *testing.T) fs.FileMode {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("umask unknown: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return fs.FileMode(m)
		}
	}
	t.Skip("umask unknown: no Umask line in /proc/self/status")
	return 0
}

func TestLocalPermissions(t *testing.T) {
	mask := umask(t)
	tests := []struct {
		name               string
		filePerm, dirPerm  fs.FileMode // configured; 0 is the default
		wantFile, wantDirs fs.FileMode // before the umask
	}{
		{"default", 0, 0, 0o600, 0o700},
		{"configured", 0o640, 0o750, 0o640, 0o750},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := rolloutfs.Local{Root: t.TempDir(), FilePerm: tt.filePerm, DirPerm: tt.dirPerm}
			ctx := t.Context()
			if _, err := l.Create(ctx, "c1/c2/r.jsonl", []rolloutfs.Part{rolloutfs.Bytes([]byte("a\n"))}, true); err != nil {
				t.Fatal(err)
			}
			if err := l.AppendRecord(ctx, "r1/r2/index.jsonl", []byte("a\n")); err != nil {
				t.Fatal(err)
			}
			if err := l.Move(ctx, "c1/c2/r.jsonl", "m1/m2/r.jsonl"); err != nil {
				t.Fatal(err)
			}
			check := func(name string, want fs.FileMode) {
				t.Helper()
				st, err := os.Lstat(filepath.Join(l.Root, filepath.FromSlash(name)))
				if err != nil {
					t.Fatal(err)
				}
				got := st.Mode().Perm()
				if got&^want != 0 {
					t.Errorf("%s: mode %v has bits beyond the requested %v", name, got, want)
				}
				if tt.filePerm == 0 && got&0o077 != 0 {
					t.Errorf("%s: mode %v has group or other bits by default", name, got)
				}
				if want := want &^ mask; got != want {
					t.Errorf("%s: mode %v, want %v (umask %03o)", name, got, want, mask)
				}
			}
			for _, name := range []string{"m1/m2/r.jsonl", "r1/r2/index.jsonl"} {
				check(name, tt.wantFile)
			}
			for _, name := range []string{"c1", "c1/c2", "r1", "r1/r2", "m1", "m1/m2"} {
				check(name, tt.wantDirs)
			}
		})
	}
}

var invalidNames = []string{"../x", "/abs", "a//b", "", "./a", "a/..", "a/", "."}

func TestLocalInvalidNames(t *testing.T) {
	l := newLocal(t)
	put(t, l.Root, "ok.jsonl", []byte("a\n"))
	ops := []struct {
		name string
		call func(ctx context.Context, bad string) error
	}{
		{"Create", func(ctx context.Context, bad string) error {
			_, err := l.Create(ctx, bad, []rolloutfs.Part{rolloutfs.Bytes([]byte("a\n"))}, true)
			return err
		}},
		{"OpenAppend", func(ctx context.Context, bad string) error { _, err := l.OpenAppend(ctx, bad); return err }},
		{"Open", func(ctx context.Context, bad string) error { _, err := l.Open(ctx, bad); return err }},
		{"Stat", func(ctx context.Context, bad string) error { _, err := l.Stat(ctx, bad); return err }},
		{"Move from", func(ctx context.Context, bad string) error { return l.Move(ctx, bad, "moved.jsonl") }},
		{"Move to", func(ctx context.Context, bad string) error { return l.Move(ctx, "ok.jsonl", bad) }},
		{"Remove", func(ctx context.Context, bad string) error { return l.Remove(ctx, bad) }},
		{"CutTornTail name", func(ctx context.Context, bad string) error { _, err := l.CutTornTail(ctx, bad, "side"); return err }},
		{"AppendRecord", func(ctx context.Context, bad string) error { return l.AppendRecord(ctx, bad, []byte("a\n")) }},
		{"SetModTime", func(ctx context.Context, bad string) error { return l.SetModTime(ctx, bad, time.Unix(1, 0)) }},
	}
	for _, op := range ops {
		for _, bad := range invalidNames {
			t.Run(fmt.Sprintf("%s/%q", op.name, bad), func(t *testing.T) {
				if err := op.call(t.Context(), bad); !errors.Is(err, rolloutfs.ErrInvalidName) {
					t.Fatalf("error = %v, want ErrInvalidName", err)
				}
			})
		}
	}
	// ReadDir takes "" and "." for the root.
	for _, bad := range []string{"../x", "/abs", "a//b", "a/"} {
		t.Run(fmt.Sprintf("ReadDir/%q", bad), func(t *testing.T) {
			if _, err := l.ReadDir(t.Context(), bad); !errors.Is(err, rolloutfs.ErrInvalidName) {
				t.Fatalf("error = %v, want ErrInvalidName", err)
			}
		})
	}
	if got, want := string(get(t, l.Root, "ok.jsonl")), "a\n"; got != want {
		t.Fatalf("ok.jsonl = %q, want %q", got, want)
	}
}

// TestLocalNotRegular checks that a FIFO, a directory or a symbolic link
// named like a rollout (in a directory of the root) fails at once with
// ErrNotRegular, never blocks and never reaches the link's target.
func TestLocalNotRegular(t *testing.T) {
	kinds := []struct {
		name string
		make func(t *testing.T, root, p string)
	}{
		{"fifo", func(t *testing.T, root, p string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}},
		{"directory", func(t *testing.T, root, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink outside", func(t *testing.T, root, p string) {
			if err := os.Symlink(filepath.Join(filepath.Dir(root), "outside", "secret.jsonl"), p); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink inside", func(t *testing.T, root, p string) {
			if err := os.Symlink("../real.jsonl", p); err != nil {
				t.Fatal(err)
			}
		}},
	}
	ops := []struct {
		name string
		call func(ctx context.Context, l rolloutfs.Local) error
	}{
		{"Open", func(ctx context.Context, l rolloutfs.Local) error {
			f, err := l.Open(ctx, "d/x.jsonl")
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"OpenAppend", func(ctx context.Context, l rolloutfs.Local) error {
			f, err := l.OpenAppend(ctx, "d/x.jsonl")
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"Stat", func(ctx context.Context, l rolloutfs.Local) error { _, err := l.Stat(ctx, "d/x.jsonl"); return err }},
		{"CutTornTail", func(ctx context.Context, l rolloutfs.Local) error {
			_, err := l.CutTornTail(ctx, "d/x.jsonl", "d/side.jsonl")
			return err
		}},
		{"AppendRecord", func(ctx context.Context, l rolloutfs.Local) error {
			return l.AppendRecord(ctx, "d/x.jsonl", []byte("rec\n"))
		}},
		{"SetModTime", func(ctx context.Context, l rolloutfs.Local) error {
			return l.SetModTime(ctx, "d/x.jsonl", time.Unix(1e9, 0))
		}},
	}
	const targetContent = "{\"type\":\"a\"}\n{\"type\":\"torn"
	for _, kind := range kinds {
		for _, op := range ops {
			t.Run(kind.name+"/"+op.name, func(t *testing.T) {
				top := t.TempDir()
				root := filepath.Join(top, "root")
				l := rolloutfs.Local{Root: root}
				put(t, top, "outside/secret.jsonl", []byte(targetContent))
				put(t, root, "real.jsonl", []byte(targetContent))
				mtime := time.Unix(1234567890, 0)
				for _, target := range []string{filepath.Join(top, "outside", "secret.jsonl"), filepath.Join(root, "real.jsonl")} {
					if err := os.Chtimes(target, mtime, mtime); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Mkdir(filepath.Join(root, "d"), 0o700); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(root, "d", "x.jsonl")
				kind.make(t, root, p)

				done := make(chan error, 1)
				go func() { done <- op.call(t.Context(), l) }()
				timer := time.NewTimer(10 * time.Second)
				defer timer.Stop()
				select {
				case err := <-done:
					if !errors.Is(err, rolloutfs.ErrNotRegular) {
						t.Errorf("error = %v, want ErrNotRegular", err)
					}
				case <-timer.C:
					// Open the FIFO's other end so the stuck call returns.
					if f, err := os.OpenFile(p, os.O_RDWR, 0); err == nil {
						f.Close()
					}
					t.Fatal("call blocked for 10s")
				}
				for _, target := range []string{filepath.Join(top, "outside", "secret.jsonl"), filepath.Join(root, "real.jsonl")} {
					st, err := os.Stat(target)
					if err != nil {
						t.Fatal(err)
					}
					if got, want := string(get(t, "/", target)), targetContent; got != want {
						t.Errorf("link target %s = %q, want %q", target, got, want)
					}
					if !st.ModTime().Equal(mtime) {
						t.Errorf("link target %s: mtime %v, want %v", target, st.ModTime(), mtime)
					}
				}
				absent(t, root, "d/side.jsonl")
				if st, err := os.Lstat(p); err != nil || st.Mode().IsRegular() {
					t.Errorf("d/x.jsonl after the call: %v, %v; want it still not regular", st, err)
				}
			})
		}
	}
}

func TestLocalMove(t *testing.T) {
	tests := []struct {
		name    string
		from    string
		to      string
		setup   map[string]string
		wantErr error
		want    map[string]string // files after, by name; "" means absent
	}{
		{"same directory", "a.jsonl", "b.jsonl", map[string]string{"a.jsonl": "a\n"}, nil,
			map[string]string{"a.jsonl": "", "b.jsonl": "a\n"}},
		{"creates directories", "a.jsonl", "archived/2026/01/a.jsonl", map[string]string{"a.jsonl": "a\n"}, nil,
			map[string]string{"a.jsonl": "", "archived/2026/01/a.jsonl": "a\n"}},
		{"existing target", "a.jsonl", "d/b.jsonl", map[string]string{"a.jsonl": "a\n", "d/b.jsonl": "b\n"}, fs.ErrExist,
			map[string]string{"a.jsonl": "a\n", "d/b.jsonl": "b\n"}},
		{"missing source", "a.jsonl", "b.jsonl", nil, fs.ErrNotExist,
			map[string]string{"a.jsonl": "", "b.jsonl": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLocal(t)
			for name, data := range tt.setup {
				put(t, l.Root, name, []byte(data))
			}
			err := l.Move(t.Context(), tt.from, tt.to)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Move error = %v, want %v", err, tt.wantErr)
			}
			for name, want := range tt.want {
				if want == "" {
					absent(t, l.Root, name)
					continue
				}
				if got := string(get(t, l.Root, name)); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestLocalRemove(t *testing.T) {
	l := newLocal(t)
	put(t, l.Root, "d/a.jsonl", []byte("a\n"))
	if err := l.Remove(t.Context(), "d/a.jsonl"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	absent(t, l.Root, "d/a.jsonl")
	if err := l.Remove(t.Context(), "d/a.jsonl"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Remove error = %v, want fs.ErrNotExist", err)
	}
	if err := l.Remove(t.Context(), "missing/a.jsonl"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Remove in a missing directory: error = %v, want fs.ErrNotExist", err)
	}
}

func TestLocalCutTornTail(t *testing.T) {
	first := "{\"type\":\"a\"}\n"
	bigTorn := `{"type":"x","data":"` + strings.Repeat("A", 3*64<<10)
	bigKeep := strings.Repeat(first, 8000) // > 64 KiB of whole lines
	second := "{\"type\":\"b\",\"payload\":{\"text\":\"}\"}}"
	tests := []struct {
		name     string
		content  string
		wantKeep string
		ended    bool // the tail is a whole record: ended with a newline, not cut
	}{
		{"empty", "", "", false},
		{"clean", first, first, false},
		{"torn", first + "{\"ty", first, false},
		{"no newline at all", "{\"ty", "", false},
		{"torn tail longer than 64 KiB", first + bigTorn, first, false},
		{"torn tail of exactly 64 KiB", bigKeep + strings.Repeat("B", 64<<10), bigKeep, false},
		{"blank torn tail", first + "  ", first, false},
		{"torn where a brace ends a string", first + second[:len(second)-3], first, false},
		{"a brace after a whole record", first + second + "}", first, false},
		{"a whole record without its newline", first + second, first + second + "\n", true},
		{"a whole first record without its newline", second, second + "\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLocal(t)
			put(t, l.Root, "s/r.jsonl", []byte(tt.content))
			cut, err := l.CutTornTail(t.Context(), "s/r.jsonl", "torn/r.jsonl.torn")
			if err != nil {
				t.Fatalf("CutTornTail: %v", err)
			}
			wantCut := rolloutfs.Cut{Offset: int64(len(tt.wantKeep)), Length: int64(len(tt.content) - len(tt.wantKeep))}
			if tt.ended {
				wantCut = rolloutfs.Cut{Offset: int64(len(tt.wantKeep)), Ended: true}
			}
			if cut != wantCut {
				t.Fatalf("Cut = %+v, want %+v", cut, wantCut)
			}
			if got := string(get(t, l.Root, "s/r.jsonl")); got != tt.wantKeep {
				t.Fatalf("file after cut: %d bytes, want %d", len(got), len(tt.wantKeep))
			}
			if wantCut.Length == 0 || tt.ended {
				absent(t, l.Root, "torn/r.jsonl.torn")
				return
			}
			if got, want := string(get(t, l.Root, "torn/r.jsonl.torn")), tt.content[len(tt.wantKeep):]; got != want {
				t.Fatalf("side file: %d bytes %.20q..., want %d bytes %.20q...", len(got), got, len(want), want)
			}
			noTemps(t, l.Root, "torn")
		})
	}
}

func TestLocalCutTornTailFails(t *testing.T) {
	l := newLocal(t)
	const torn = "{\"type\":\"a\"}\n{\"ty"
	put(t, l.Root, "r.jsonl", []byte(torn))
	put(t, l.Root, "side.jsonl", []byte("older side\n"))
	if _, err := l.CutTornTail(t.Context(), "r.jsonl", "side.jsonl"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("cut into an existing side file: error = %v, want fs.ErrExist", err)
	}
	if got := string(get(t, l.Root, "r.jsonl")); got != torn {
		t.Fatalf("file after a failed cut = %q, want %q", got, torn)
	}
	if got, want := string(get(t, l.Root, "side.jsonl")), "older side\n"; got != want {
		t.Fatalf("side file = %q, want %q", got, want)
	}
	if _, err := l.CutTornTail(t.Context(), "missing.jsonl", "side2.jsonl"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("cut of a missing file: error = %v, want fs.ErrNotExist", err)
	}
	if _, err := l.CutTornTail(t.Context(), "r.jsonl", "../side.jsonl"); !errors.Is(err, rolloutfs.ErrInvalidName) {
		t.Fatalf("cut into an invalid side name: error = %v, want ErrInvalidName", err)
	}
	if got := string(get(t, l.Root, "r.jsonl")); got != torn {
		t.Fatalf("file after a failed cut = %q, want %q", got, torn)
	}
}

func TestLocalAppendRecord(t *testing.T) {
	const rec = "{\"id\":\"r\"}\n"
	tests := []struct {
		name    string
		before  *string // nil: no file
		line    string
		wantErr error
		want    *string // nil: no file
	}{
		{"creates file and directories", nil, rec, nil, ptr(rec)},
		{"appends", ptr("{\"id\":\"a\"}\n"), rec, nil, ptr("{\"id\":\"a\"}\n" + rec)},
		{"empty file", ptr(""), rec, nil, ptr(rec)},
		{"closes a torn line first", ptr("{\"id\":\"a\"}\n{\"id\""), rec, nil, ptr("{\"id\":\"a\"}\n{\"id\"\n" + rec)},
		{"no newline", ptr("{\"id\":\"a\"}\n"), "{\"id\":\"r\"}", rolloutfs.ErrNotLine, ptr("{\"id\":\"a\"}\n")},
		{"two lines", ptr("{\"id\":\"a\"}\n"), "a\nb\n", rolloutfs.ErrNotLine, ptr("{\"id\":\"a\"}\n")},
		{"empty line", ptr("{\"id\":\"a\"}\n"), "", rolloutfs.ErrNotLine, ptr("{\"id\":\"a\"}\n")},
		{"refused creates nothing", nil, "no newline", rolloutfs.ErrNotLine, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLocal(t)
			const name = "idx/sub/session_index.jsonl"
			if tt.before != nil {
				put(t, l.Root, name, []byte(*tt.before))
			}
			err := l.AppendRecord(t.Context(), name, []byte(tt.line))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("AppendRecord error = %v, want %v", err, tt.wantErr)
			}
			if tt.want == nil {
				absent(t, l.Root, name)
				return
			}
			if got := string(get(t, l.Root, name)); got != *tt.want {
				t.Fatalf("file = %q, want %q", got, *tt.want)
			}
		})
	}
}

// TestLocalAppendRecordTakesCodexLock: Codex 0.169 holds an exclusive
// flock(2) on session_index.jsonl.lock while it appends a name and while
// its thread/delete replaces the file without the thread's lines; a line
// appended meanwhile to the file it replaces is lost. AppendRecord waits
// for that lock (until its context ends, at most LockWait) and releases it
// when done.
func TestLocalAppendRecordTakesCodexLock(t *testing.T) {
	l := newLocal(t)
	const name = "session_index.jsonl"
	put(t, l.Root, name, []byte("one\n"))
	held := fixtures.LockFile(t, filepath.Join(l.Root, name+".lock"))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := l.AppendRecord(ctx, name, []byte("two\n")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AppendRecord while Codex holds the lock: error = %v, want context.DeadlineExceeded", err)
	}
	if got := string(get(t, l.Root, name)); got != "one\n" {
		t.Fatalf("file after an append that found the lock held = %q, want it unchanged", got)
	}
	bounded := l
	bounded.LockWait = 50 * time.Millisecond
	if err := bounded.AppendRecord(t.Context(), name, []byte("two\n")); !errors.Is(err, rolloutfs.ErrJournalLocked) {
		t.Fatalf("AppendRecord waiting longer than LockWait: error = %v, want ErrJournalLocked", err)
	}
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendRecord(t.Context(), name, []byte("two\n")); err != nil {
		t.Fatalf("AppendRecord after the lock was released: %v", err)
	}
	if got := string(get(t, l.Root, name)); got != "one\ntwo\n" {
		t.Fatalf("file = %q, want both lines", got)
	}
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("the lock after AppendRecord returned: %v, want it free", err)
	}
}

func ptr(s string) *string { return &s }

func TestLocalReadDir(t *testing.T) {
	l := newLocal(t)
	put(t, l.Root, "s/b.jsonl", []byte("b\n"))
	put(t, l.Root, "s/a.jsonl", []byte("a\n"))
	put(t, l.Root, "s/d/x.jsonl", []byte("x\n"))
	if err := os.Symlink("a.jsonl", filepath.Join(l.Root, "s", "c.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d", filepath.Join(l.Root, "s", "e")); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		name         string
		dir, regular bool
		symlink      bool
	}
	want := []entry{
		{"a.jsonl", false, true, false},
		{"b.jsonl", false, true, false},
		{"c.jsonl", false, false, true},
		{"d", true, false, false},
		{"e", false, false, true},
	}
	entries, err := l.ReadDir(t.Context(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(entries), len(want); got != want {
		t.Fatalf("%d entries %v, want %d", got, entries, want)
	}
	for i, e := range entries {
		got := entry{e.Name, e.IsDir(), e.IsRegular(), e.Type&fs.ModeSymlink != 0}
		if got != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got, want[i])
		}
	}
	for _, root := range []string{".", ""} {
		entries, err := l.ReadDir(t.Context(), root)
		if err != nil {
			t.Fatalf("ReadDir(%q): %v", root, err)
		}
		if len(entries) != 1 || entries[0].Name != "s" || !entries[0].IsDir() {
			t.Fatalf("ReadDir(%q) = %v, want [s/]", root, entries)
		}
	}
	if _, err := l.ReadDir(t.Context(), "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadDir of a missing directory: error = %v, want fs.ErrNotExist", err)
	}
}

func TestLocalReadDirSortsManyEntries(t *testing.T) {
	// More than one batch of the underlying directory read.
	l := newLocal(t)
	const n = 1200
	for i := range n {
		put(t, l.Root, fmt.Sprintf("d/%d.jsonl", (i*7919)%n), nil)
	}
	entries, err := l.ReadDir(t.Context(), "d")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(entries), n; got != want {
		t.Fatalf("%d entries, want %d", got, want)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i-1].Name >= entries[i].Name {
			t.Fatalf("entries %d and %d out of order: %q, %q", i-1, i, entries[i-1].Name, entries[i].Name)
		}
	}
}

func TestLocalOpenAndStat(t *testing.T) {
	l := newLocal(t)
	put(t, l.Root, "r.jsonl", []byte("a\nb\n"))
	rf := openLocal(t, l, "r.jsonl")
	if got, want := rf.Size(), int64(4); got != want {
		t.Fatalf("Size = %d, want %d", got, want)
	}
	buf := make([]byte, 2)
	if _, err := rf.ReadAt(buf, 2); err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf), "b\n"; got != want {
		t.Fatalf("ReadAt(2) = %q, want %q", got, want)
	}
	if n, err := rf.ReadAt(buf, 3); n != 1 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt(3) past the end = %d, %v; want 1, io.EOF", n, err)
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rf.ReadAt(buf, 0); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("ReadAt after Close: %v, want fs.ErrClosed", err)
	}
	if err := rf.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("second Close: %v, want fs.ErrClosed", err)
	}
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	if err := l.SetModTime(t.Context(), "r.jsonl", mtime); err != nil {
		t.Fatal(err)
	}
	info, err := l.Stat(t.Context(), "r.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 4 || !info.ModTime.Equal(mtime) {
		t.Fatalf("Stat = %+v, want size 4, mtime %v", info, mtime)
	}
	for _, op := range []struct {
		name string
		call func() error
	}{
		{"Open", func() error { _, err := l.Open(t.Context(), "missing.jsonl"); return err }},
		{"OpenAppend", func() error { _, err := l.OpenAppend(t.Context(), "missing.jsonl"); return err }},
		{"Stat", func() error { _, err := l.Stat(t.Context(), "missing.jsonl"); return err }},
		{"SetModTime", func() error { return l.SetModTime(t.Context(), "missing.jsonl", mtime) }},
	} {
		t.Run(op.name+" missing", func(t *testing.T) {
			if err := op.call(); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("error = %v, want fs.ErrNotExist", err)
			}
		})
	}
}

func TestTornStart(t *testing.T) {
	const chunk = 64 << 10
	line := "{\"type\":\"a\"}\n"
	lines := strings.Repeat(line, 2*chunk/len(line)+1) // > 2 chunks
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		data    string
		size    int64 // -1: len(data)
		want    int64
		wantErr error
	}{
		{"empty", t.Context(), "", -1, 0, nil},
		{"clean", t.Context(), line + line, -1, int64(2 * len(line)), nil},
		{"torn", t.Context(), line + "{\"ty", -1, int64(len(line)), nil},
		{"no newline", t.Context(), "{\"ty", -1, 0, nil},
		{"only a newline", t.Context(), "\n", -1, 1, nil},
		{"newline first", t.Context(), "\nabc", -1, 1, nil},
		{"newline just before a chunk boundary", t.Context(), strings.Repeat("x", chunk-1) + "\n" + strings.Repeat("y", chunk), -1, chunk, nil},
		{"newline just after a chunk boundary", t.Context(), strings.Repeat("x", chunk) + "\n" + strings.Repeat("y", chunk-1), -1, chunk + 1, nil},
		{"torn tail over two chunks", t.Context(), lines + strings.Repeat("z", 2*chunk+5), -1, int64(len(lines)), nil},
		{"no newline over three chunks", t.Context(), strings.Repeat("z", 3*chunk+5), -1, 0, nil},
		{"only the first size bytes", t.Context(), line + "{\"ty" + "\n", int64(len(line) + 4), int64(len(line)), nil},
		{"cancelled", cancelled, line + "x", -1, 0, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.size
			if size < 0 {
				size = int64(len(tt.data))
			}
			got, err := rolloutfs.TornStart(tt.ctx, strings.NewReader(tt.data), size)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("TornStart error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("TornStart = %d, want %d", got, tt.want)
			}
		})
	}
	if _, err := rolloutfs.TornStart(t.Context(), strings.NewReader("ab"), 5); !errors.Is(err, io.EOF) {
		t.Fatalf("TornStart past the end: error = %v, want io.EOF", err)
	}
}

func TestIsTemp(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"temp", "s/r.jsonl" + rolloutfs.TempSuffix, true},
		{"rollout", "s/r.jsonl", false},
		{"suffix inside", "s/r" + rolloutfs.TempSuffix + ".jsonl", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rolloutfs.IsTemp(tt.in); got != tt.want {
				t.Fatalf("IsTemp(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestLocalLinkInRoot: a link directly in the root to a directory is taken
// for that directory (listed as one, described, created into); a link to a
// directory further down is not followed.
func TestLocalLinkInRoot(t *testing.T) {
	ctx := t.Context()
	l, elsewhere := newLocal(t), t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(l.Root, "s")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(elsewhere, "deeper")); err != nil {
		t.Fatal(err)
	}
	entries, err := l.ReadDir(ctx, ".")
	if err != nil || len(entries) != 1 || !entries[0].IsDir() {
		t.Fatalf("ReadDir(.) = %+v, %v; want s as a directory", entries, err)
	}
	if _, err := l.StatDir(ctx, "s"); err != nil {
		t.Fatalf("StatDir(s): %v", err)
	}
	if _, err := l.Create(ctx, "s/2026/r.jsonl", []rolloutfs.Part{rolloutfs.Bytes([]byte("{}\n"))}, true); err != nil {
		t.Fatalf("Create under the link: %v", err)
	}
	get(t, elsewhere, "2026/r.jsonl")

	entries, err = l.ReadDir(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name == "deeper" && e.IsDir() {
			t.Fatalf("a link below the root is listed as a directory")
		}
	}
	if _, err := l.StatDir(ctx, "s/deeper"); !errors.Is(err, rolloutfs.ErrNotRegular) {
		t.Fatalf("StatDir of a link below the root: %v, want ErrNotRegular", err)
	}
	if _, err := l.Create(ctx, "s/deeper/r.jsonl", []rolloutfs.Part{rolloutfs.Bytes([]byte("{}\n"))}, true); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("Create through a link below the root: %v, want ENOTDIR", err)
	}
}

// TestLocalFileLinkInRoot: a link directly in the root to a regular file
// (session_index.jsonl kept elsewhere) is read, described and appended to
// as its target, and stays a link; a dangling one is missing; one to a
// directory or a FIFO is not a regular file, and never blocks.
func TestLocalFileLinkInRoot(t *testing.T) {
	ctx := t.Context()
	l, elsewhere := newLocal(t), t.TempDir()
	target := filepath.Join(elsewhere, "names.jsonl")
	put(t, elsewhere, "names.jsonl", []byte("one\n"))
	link := filepath.Join(l.Root, "session_index.jsonl")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendRecord(ctx, "session_index.jsonl", []byte("two\n")); err != nil {
		t.Fatalf("AppendRecord through the link: %v", err)
	}
	f, err := l.Open(ctx, "session_index.jsonl")
	if err != nil {
		t.Fatalf("Open through the link: %v", err)
	}
	got, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	f.Close()
	if err != nil || string(got) != "one\ntwo\n" {
		t.Fatalf("read through the link: %q, %v; want %q", got, err, "one\ntwo\n")
	}
	if info, err := l.Stat(ctx, "session_index.jsonl"); err != nil || info.Size != int64(len("one\ntwo\n")) {
		t.Fatalf("Stat through the link: %+v, %v; want the target's size", info, err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("session_index.jsonl after the calls: %v, %v; want still a link", st, err)
	}

	if err := os.Symlink(filepath.Join(elsewhere, "gone.jsonl"), filepath.Join(l.Root, "dangling.jsonl")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(ctx, "dangling.jsonl"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a dangling link: %v, want ErrNotExist", err)
	}
	if _, err := l.Stat(ctx, "dangling.jsonl"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a dangling link: %v, want ErrNotExist", err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(l.Root, "dir.jsonl")); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(elsewhere, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fifo, filepath.Join(l.Root, "fifo.jsonl")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dir.jsonl", "fifo.jsonl"} {
		if _, err := l.Open(ctx, name); !errors.Is(err, rolloutfs.ErrNotRegular) {
			t.Errorf("Open of a link to a %s: %v, want ErrNotRegular", name, err)
		}
		if err := l.AppendRecord(ctx, name, []byte("x\n")); !errors.Is(err, rolloutfs.ErrNotRegular) {
			t.Errorf("AppendRecord to a link to a %s: %v, want ErrNotRegular", name, err)
		}
	}
}
