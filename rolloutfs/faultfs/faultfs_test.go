package faultfs_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
)

var errInjected = errors.New("injected fault")

// newFS returns a faultfs.FS on a fresh directory, and the directory.
func newFS(t *testing.T) (*faultfs.FS, string) {
	t.Helper()
	root := t.TempDir()
	return faultfs.New(rolloutfs.Local{Root: root}), root
}

func put(t *testing.T, root, name, data string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, root, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// want checks name's content under root.
func want(t *testing.T, root, name, content string) {
	t.Helper()
	if got := get(t, root, name); got != content {
		t.Fatalf("%s = %q, want %q", name, got, content)
	}
}

func absent(t *testing.T, root, name string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(name))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: Lstat error = %v, want fs.ErrNotExist", name, err)
	}
}

// failOp makes every point of op fail with errInjected.
func failOp(fsys *faultfs.FS, op faultfs.Op) {
	fsys.Inject(func(p faultfs.Point) error {
		if p.Op == op {
			return errInjected
		}
		return nil
	})
}

func isInjected(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, errInjected) {
		t.Fatalf("%s: error = %v, want the injected fault", what, err)
	}
}

const (
	line1 = "{\"type\":\"a\"}\n"
	line2 = "{\"type\":\"b\"}\n"
	torn  = "{\"type\":\"c"
)

func bytesOf(s string) []rolloutfs.Part { return []rolloutfs.Part{rolloutfs.Bytes([]byte(s))} }

// TestFaultPoints checks each fault point where its doc says it fails and
// the state it says it leaves.
func TestFaultPoints(t *testing.T) {
	tests := []struct {
		name string
		op   faultfs.Op
		run  func(t *testing.T, fsys *faultfs.FS, root string)
	}{
		{"Create creates nothing", faultfs.OpCreate, func(t *testing.T, fsys *faultfs.FS, root string) {
			_, err := fsys.Create(t.Context(), "d/new.jsonl", bytesOf(line1), true)
			isInjected(t, "Create", err)
			absent(t, root, "d/new.jsonl")
			if entries, err := os.ReadDir(filepath.Join(root, "d")); err == nil && len(entries) > 0 {
				t.Fatalf("d holds %v after a failed Create", entries)
			}
		}},
		{"File.Write writes half", faultfs.OpWrite, func(t *testing.T, fsys *faultfs.FS, root string) {
			f, err := fsys.OpenAppend(t.Context(), "r.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			n, err := f.Write([]byte(line2 + line2))
			isInjected(t, "Write", err)
			if got, want := n, len(line2); got != want {
				t.Fatalf("Write wrote %d bytes, want %d", got, want)
			}
			want(t, root, "r.jsonl", line1+line2)
		}},
		{"Append after a failed write truncates back and refuses more", faultfs.OpWrite, func(t *testing.T, fsys *faultfs.FS, root string) {
			a, err := rolloutfs.OpenAppender(t.Context(), fsys, "r.jsonl", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncAlways})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			_, err = a.Append(t.Context(), [][]byte{[]byte(line2), []byte(line2)})
			isInjected(t, "Append", err)
			want(t, root, "r.jsonl", line1)
			if got, want := a.Size(), int64(len(line1)); got != want {
				t.Fatalf("Size = %d, want %d", got, want)
			}
			fsys.Inject(nil)
			_, err = a.Append(t.Context(), [][]byte{[]byte(line2)})
			isInjected(t, "Append after the failure", err)
			want(t, root, "r.jsonl", line1)
		}},
		{"File.Sync leaves the data volatile", faultfs.OpSync, func(t *testing.T, fsys *faultfs.FS, root string) {
			f, err := fsys.OpenAppend(t.Context(), "r.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte(line2)); err != nil {
				t.Fatal(err)
			}
			isInjected(t, "Sync", f.Sync())
			if err := fsys.PowerLoss(); err != nil {
				t.Fatal(err)
			}
			want(t, root, "r.jsonl", line1)
		}},
		{"Append after a failed sync keeps nothing of it", faultfs.OpSync, func(t *testing.T, fsys *faultfs.FS, root string) {
			for _, opts := range []rolloutfs.AppenderOptions{
				{Policy: rolloutfs.SyncAlways},
				{Policy: rolloutfs.SyncBatch},
			} {
				a, err := rolloutfs.OpenAppender(t.Context(), fsys, "r.jsonl", opts)
				if err != nil {
					t.Fatal(err)
				}
				_, err = a.Append(t.Context(), [][]byte{[]byte(line2)})
				isInjected(t, "Append "+opts.Policy.String(), err)
				want(t, root, "r.jsonl", line1)
				if got, want := a.Size(), int64(len(line1)); got != want {
					t.Fatalf("%v: Size = %d, want %d", opts.Policy, got, want)
				}
				_, err = a.Append(t.Context(), [][]byte{[]byte(line2)})
				isInjected(t, "Append after the failure", err)
				want(t, root, "r.jsonl", line1)
				if err := a.Close(); err != nil {
					t.Fatalf("Close after a failed sync: %v", err)
				}
			}
		}},
		{"Truncate cuts nothing", faultfs.OpTruncate, func(t *testing.T, fsys *faultfs.FS, root string) {
			f, err := fsys.OpenAppend(t.Context(), "r.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			isInjected(t, "Truncate", f.Truncate(0))
			want(t, root, "r.jsonl", line1)
		}},
		{"Move moves nothing", faultfs.OpRename, func(t *testing.T, fsys *faultfs.FS, root string) {
			isInjected(t, "Move", fsys.Move(t.Context(), "r.jsonl", "archive/r.jsonl"))
			want(t, root, "r.jsonl", line1)
			absent(t, root, "archive/r.jsonl")
		}},
		{"Move moves, then fails its directory sync", faultfs.OpDirSync, func(t *testing.T, fsys *faultfs.FS, root string) {
			isInjected(t, "Move", fsys.Move(t.Context(), "r.jsonl", "archive/r.jsonl"))
			absent(t, root, "r.jsonl")
			want(t, root, "archive/r.jsonl", line1)
		}},
		{"Replace replaces, then fails its directory sync", faultfs.OpReplaceSync, func(t *testing.T, fsys *faultfs.FS, root string) {
			_, err := fsys.Replace(t.Context(), "r.jsonl", []rolloutfs.Part{rolloutfs.Bytes([]byte(line2))}, true)
			isInjected(t, "Replace", err)
			want(t, root, "r.jsonl", line2)
		}},
		{"Remove removes nothing", faultfs.OpRemove, func(t *testing.T, fsys *faultfs.FS, root string) {
			isInjected(t, "Remove", fsys.Remove(t.Context(), "r.jsonl"))
			want(t, root, "r.jsonl", line1)
		}},
		{"CutTornTail side: nothing cut, no side", faultfs.OpCutSide, func(t *testing.T, fsys *faultfs.FS, root string) {
			put(t, root, "t.jsonl", line1+torn)
			_, err := fsys.CutTornTail(t.Context(), "t.jsonl", "t.jsonl.torn")
			isInjected(t, "CutTornTail", err)
			want(t, root, "t.jsonl", line1+torn)
			absent(t, root, "t.jsonl.torn")
		}},
		{"CutTornTail truncate: side written, nothing cut", faultfs.OpCutTruncate, func(t *testing.T, fsys *faultfs.FS, root string) {
			put(t, root, "t.jsonl", line1+torn)
			_, err := fsys.CutTornTail(t.Context(), "t.jsonl", "t.jsonl.torn")
			isInjected(t, "CutTornTail", err)
			want(t, root, "t.jsonl", line1+torn)
			want(t, root, "t.jsonl.torn", torn)
		}},
		{"AppendRecord appends nothing", faultfs.OpRecord, func(t *testing.T, fsys *faultfs.FS, root string) {
			isInjected(t, "AppendRecord", fsys.AppendRecord(t.Context(), "r.jsonl", []byte(line2)))
			want(t, root, "r.jsonl", line1)
			isInjected(t, "AppendRecord of a new file", fsys.AppendRecord(t.Context(), "idx/new.jsonl", []byte(line2)))
			absent(t, root, "idx/new.jsonl")
		}},
		{"SetModTime changes nothing", faultfs.OpSetTime, func(t *testing.T, fsys *faultfs.FS, root string) {
			before, err := fsys.Stat(t.Context(), "r.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			isInjected(t, "SetModTime", fsys.SetModTime(t.Context(), "r.jsonl", time.Unix(1e9, 0)))
			after, err := fsys.Stat(t.Context(), "r.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			if !after.ModTime.Equal(before.ModTime) {
				t.Fatalf("mtime changed from %v to %v", before.ModTime, after.ModTime)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys, root := newFS(t)
			put(t, root, "r.jsonl", line1)
			failOp(fsys, tt.op)
			tt.run(t, fsys, root)
			if !slices.ContainsFunc(fsys.Points(), func(p faultfs.Point) bool { return p.Op == tt.op }) {
				t.Fatalf("point %s never consulted; points %v", tt.op, fsys.Points())
			}
		})
	}
}

// TestFailedWriteAndTruncate checks an append whose write and truncation
// back both fail: the half-written bytes stay, the error names both, and
// the appender refuses further appends.
func TestFailedWriteAndTruncate(t *testing.T) {
	fsys, root := newFS(t)
	put(t, root, "r.jsonl", line1)
	errTruncate := errors.New("truncate failed")
	fsys.Inject(func(p faultfs.Point) error {
		switch p.Op {
		case faultfs.OpWrite:
			return errInjected
		case faultfs.OpTruncate:
			return errTruncate
		}
		return nil
	})
	a, err := rolloutfs.OpenAppender(t.Context(), fsys, "r.jsonl", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = a.Append(t.Context(), [][]byte{[]byte(line2)})
	isInjected(t, "Append", err)
	if !errors.Is(err, errTruncate) {
		t.Fatalf("Append error = %v, want it to report the failed truncation too", err)
	}
	want(t, root, "r.jsonl", line1+line2[:len(line2)/2])
	fsys.Reset()
	_, err = a.Append(t.Context(), [][]byte{[]byte(line2)})
	isInjected(t, "Append after the failure", err)
	if got := fsys.Points(); len(got) != 0 {
		t.Fatalf("refused Append consulted points %v", got)
	}
}

// TestAppendIsOneWrite: an append of several lines, one of them long,
// reaches the file in one write, so that it cannot interleave with
// another process's append (a writer that does not take Codex's lock); a
// version that wrote a long line apart from the short ones took two.
func TestAppendIsOneWrite(t *testing.T) {
	fsys, root := newFS(t)
	put(t, root, "r.jsonl", line1)
	long := `{"type":"long","text":"` + strings.Repeat("x", 128<<10) + "\"}\n"
	a, err := rolloutfs.OpenAppender(t.Context(), fsys, "r.jsonl", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fsys.Reset()
	if _, err := a.Append(t.Context(), [][]byte{[]byte(line2), []byte(long), []byte(line2)}); err != nil {
		t.Fatal(err)
	}
	writes := 0
	for _, p := range fsys.Points() {
		if p.Op == faultfs.OpWrite {
			writes++
		}
	}
	if writes != 1 {
		t.Fatalf("an append of three lines took %d writes, want 1", writes)
	}
	want(t, root, "r.jsonl", line1+line2+long+line2)
}

func TestPoints(t *testing.T) {
	fsys, root := newFS(t)
	put(t, root, "t.jsonl", line1+torn)
	ctx := t.Context()
	steps := []func() error{
		func() error { _, err := fsys.Create(ctx, "r.jsonl", bytesOf(line1), true); return err },
		func() error {
			f, err := fsys.OpenAppend(ctx, "r.jsonl")
			if err != nil {
				return err
			}
			_, werr := f.Write([]byte(line2))
			return errors.Join(werr, f.Sync(), f.Truncate(int64(len(line1))), f.Close())
		},
		func() error { return fsys.Move(ctx, "r.jsonl", "a/r.jsonl") },
		func() error { _, err := fsys.CutTornTail(ctx, "t.jsonl", "t.torn"); return err },
		func() error { _, err := fsys.CutTornTail(ctx, "t.jsonl", "t.torn2"); return err }, // clean now
		func() error { return fsys.AppendRecord(ctx, "idx.jsonl", []byte(line1)) },
		func() error { return fsys.SetModTime(ctx, "idx.jsonl", time.Unix(1e9, 0)) },
		func() error { return fsys.Remove(ctx, "idx.jsonl") },
		// Reads consult no point.
		func() error { _, err := fsys.Stat(ctx, "a/r.jsonl"); return err },
		func() error { _, err := fsys.ReadDir(ctx, "a"); return err },
		func() error {
			f, err := fsys.Open(ctx, "a/r.jsonl")
			if err != nil {
				return err
			}
			return f.Close()
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	wantPoints := []faultfs.Point{
		{Seq: 1, Op: faultfs.OpCreate, Name: "r.jsonl"},
		{Seq: 2, Op: faultfs.OpWrite, Name: "r.jsonl"},
		{Seq: 3, Op: faultfs.OpSync, Name: "r.jsonl"},
		{Seq: 4, Op: faultfs.OpTruncate, Name: "r.jsonl"},
		{Seq: 5, Op: faultfs.OpRename, Name: "r.jsonl"},
		{Seq: 6, Op: faultfs.OpDirSync, Name: "a/r.jsonl"},
		{Seq: 7, Op: faultfs.OpCutSide, Name: "t.jsonl"},
		{Seq: 8, Op: faultfs.OpCreate, Name: "t.torn"},
		{Seq: 9, Op: faultfs.OpCutTruncate, Name: "t.jsonl"},
		{Seq: 10, Op: faultfs.OpCutSide, Name: "t.jsonl"},
		{Seq: 11, Op: faultfs.OpRecord, Name: "idx.jsonl"},
		{Seq: 12, Op: faultfs.OpSetTime, Name: "idx.jsonl"},
		{Seq: 13, Op: faultfs.OpRemove, Name: "idx.jsonl"},
	}
	if got := fsys.Points(); !slices.Equal(got, wantPoints) {
		t.Fatalf("Points() =\n%v\nwant\n%v", got, wantPoints)
	}
	// Points returns a copy.
	fsys.Points()[0].Op = "changed"
	if got := fsys.Points()[0]; got != wantPoints[0] {
		t.Fatalf("Points()[0] = %v after changing a returned slice, want %v", got, wantPoints[0])
	}

	fsys.Reset()
	if got := fsys.Points(); len(got) != 0 {
		t.Fatalf("Points() after Reset = %v, want none", got)
	}
	if err := fsys.SetModTime(ctx, "a/r.jsonl", time.Unix(1e9, 0)); err != nil {
		t.Fatal(err)
	}
	if got, want := fsys.Points(), []faultfs.Point{{Seq: 1, Op: faultfs.OpSetTime, Name: "a/r.jsonl"}}; !slices.Equal(got, want) {
		t.Fatalf("Points() after Reset and one call = %v, want %v", got, want)
	}
}

func TestFailAt(t *testing.T) {
	const calls = 5
	for n := 1; n <= calls; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			fsys, root := newFS(t)
			put(t, root, "r.jsonl", line1)
			fsys.FailAt(n, errInjected)
			for i := 1; i <= calls; i++ {
				err := fsys.AppendRecord(t.Context(), "r.jsonl", fmt.Appendf(nil, "{\"n\":%d}\n", i))
				if i == n {
					isInjected(t, fmt.Sprintf("call %d", i), err)
				} else if err != nil {
					t.Fatalf("call %d: %v, want success", i, err)
				}
			}
			var wantContent strings.Builder
			wantContent.WriteString(line1)
			for i := 1; i <= calls; i++ {
				if i != n {
					fmt.Fprintf(&wantContent, "{\"n\":%d}\n", i)
				}
			}
			want(t, root, "r.jsonl", wantContent.String())
		})
	}
	// FailAt counts every point, including those of one call: the second
	// point of a Move is its directory sync.
	fsys, root := newFS(t)
	put(t, root, "r.jsonl", line1)
	fsys.FailAt(2, errInjected)
	isInjected(t, "Move", fsys.Move(t.Context(), "r.jsonl", "a/r.jsonl"))
	want(t, root, "a/r.jsonl", line1)
	// Reset clears the fault and the numbering: point 2 passes now.
	fsys.Reset()
	if err := fsys.Move(t.Context(), "a/r.jsonl", "b/r.jsonl"); err != nil {
		t.Fatalf("Move after Reset: %v", err)
	}
}

func TestReset(t *testing.T) {
	fsys, root := newFS(t)
	put(t, root, "r.jsonl", line1)
	fsys.Inject(func(faultfs.Point) error { return errInjected })
	isInjected(t, "Remove", fsys.Remove(t.Context(), "r.jsonl"))
	fsys.Reset()
	if err := fsys.Remove(t.Context(), "r.jsonl"); err != nil {
		t.Fatalf("Remove after Reset: %v", err)
	}
	absent(t, root, "r.jsonl")
}

// TestCreateRange checks that a range of a faultfs handle copies like one
// of the base FS, and that Create leaves the caller's parts alone.
func TestCreateRange(t *testing.T) {
	fsys, root := newFS(t)
	src := strings.Repeat(line1, 10000)
	put(t, root, "src.jsonl", src)
	rf, err := fsys.Open(t.Context(), "src.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	parts := []rolloutfs.Part{rolloutfs.Bytes([]byte(line2)), rolloutfs.Range(rf, 13, 90000), rolloutfs.Bytes([]byte(line2))}
	if _, err := fsys.Create(t.Context(), "copy.jsonl", parts, true); err != nil {
		t.Fatal(err)
	}
	want(t, root, "copy.jsonl", line2+src[13:13+90000]+line2)
	if parts[1].File != rf {
		t.Fatalf("Create changed the caller's part to %T", parts[1].File)
	}
}

// TestPowerLoss sets up a state through the FS, loses power, and checks
// what survived.
func TestPowerLoss(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, fsys *faultfs.FS, root string)
		check func(t *testing.T, root string)
	}{
		{"create without durable disappears", func(t *testing.T, fsys *faultfs.FS, root string) {
			if _, err := fsys.Create(t.Context(), "s/new.jsonl", bytesOf(line1), false); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, root string) {
			absent(t, root, "s/new.jsonl")
		}},
		{"durable create survives", func(t *testing.T, fsys *faultfs.FS, root string) {
			if _, err := fsys.Create(t.Context(), "s/new.jsonl", bytesOf(line1+line2), true); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, root string) {
			want(t, root, "s/new.jsonl", line1+line2)
		}},
		{"writes after the last sync are lost", func(t *testing.T, fsys *faultfs.FS, root string) {
			if _, err := fsys.Create(t.Context(), "r.jsonl", bytesOf(line1), true); err != nil {
				t.Fatal(err)
			}
			f, err := fsys.OpenAppend(t.Context(), "r.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte(line2)); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte(torn)); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, root string) {
			want(t, root, "r.jsonl", line1+line2)
		}},
		{"a synced file created without durable still disappears", func(t *testing.T, fsys *faultfs.FS, root string) {
			if _, err := fsys.Create(t.Context(), "r.jsonl", bytesOf(line1), false); err != nil {
				t.Fatal(err)
			}
			f, err := fsys.OpenAppend(t.Context(), "r.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, root string) {
			absent(t, root, "r.jsonl")
		}},
		{"moved file survives at its new name only", func(t *testing.T, fsys *faultfs.FS, root string) {
			if _, err := fsys.Create(t.Context(), "s/r.jsonl", bytesOf(line1), true); err != nil {
				t.Fatal(err)
			}
			if err := fsys.Move(t.Context(), "s/r.jsonl", "archived/2026/r.jsonl"); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, root string) {
			absent(t, root, "s/r.jsonl")
			want(t, root, "archived/2026/r.jsonl", line1)
		}},
		{"moved file never seen before survives at its new name", func(t *testing.T, fsys *faultfs.FS, root string) {
			put(t, root, "old.jsonl", line1)
			if err := fsys.Move(t.Context(), "old.jsonl", "new.jsonl"); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, root string) {
			absent(t, root, "old.jsonl")
			want(t, root, "new.jsonl", line1)
		}},
		{"failed move of a missing file leaves no file", func(t *testing.T, fsys *faultfs.FS, root string) {
			if err := fsys.Move(t.Context(), "missing.jsonl", "new.jsonl"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Move of a missing file: %v, want fs.ErrNotExist", err)
			}
		}, func(t *testing.T, root string) {
			absent(t, root, "missing.jsonl")
			absent(t, root, "new.jsonl")
		}},
		{"removed file stays removed", func(t *testing.T, fsys *faultfs.FS, root string) {
			if _, err := fsys.Create(t.Context(), "r.jsonl", bytesOf(line1), true); err != nil {
				t.Fatal(err)
			}
			put(t, root, "untouched.jsonl", line1)
			for _, name := range []string{"r.jsonl", "untouched.jsonl"} {
				if err := fsys.Remove(t.Context(), name); err != nil {
					t.Fatal(err)
				}
			}
		}, func(t *testing.T, root string) {
			absent(t, root, "r.jsonl")
			absent(t, root, "untouched.jsonl")
		}},
		{"cut and side file survive", func(t *testing.T, fsys *faultfs.FS, root string) {
			put(t, root, "t.jsonl", line1+torn)
			cut, err := fsys.CutTornTail(t.Context(), "t.jsonl", "torn/t.jsonl.torn")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := cut, (rolloutfs.Cut{Offset: int64(len(line1)), Length: int64(len(torn))}); got != want {
				t.Fatalf("Cut = %+v, want %+v", got, want)
			}
		}, func(t *testing.T, root string) {
			want(t, root, "t.jsonl", line1)
			want(t, root, "torn/t.jsonl.torn", torn)
		}},
		{"cut keeps unsynced whole lines of an open file", func(t *testing.T, fsys *faultfs.FS, root string) {
			if _, err := fsys.Create(t.Context(), "t.jsonl", bytesOf(line1), true); err != nil {
				t.Fatal(err)
			}
			f, err := fsys.OpenAppend(t.Context(), "t.jsonl")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte(line2 + torn)); err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.CutTornTail(t.Context(), "t.jsonl", "t.jsonl.torn"); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, root string) {
			want(t, root, "t.jsonl", line1+line2)
			want(t, root, "t.jsonl.torn", torn)
		}},
		{"records survive", func(t *testing.T, fsys *faultfs.FS, root string) {
			for _, line := range []string{line1, line2} {
				if err := fsys.AppendRecord(t.Context(), "idx/session_index.jsonl", []byte(line)); err != nil {
					t.Fatal(err)
				}
			}
		}, func(t *testing.T, root string) {
			want(t, root, "idx/session_index.jsonl", line1+line2)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys, root := newFS(t)
			tt.setup(t, fsys, root)
			if err := fsys.PowerLoss(); err != nil {
				t.Fatalf("PowerLoss: %v", err)
			}
			tt.check(t, root)
		})
	}
}

// TestPowerLossAppends checks the sync policies against a power loss: an
// acknowledged append survives unless the policy is SyncNone.
func TestPowerLossAppends(t *testing.T) {
	group := rolloutfs.NewGroupSyncer()
	t.Cleanup(func() { group.Close() })
	tests := []struct {
		name    string
		opts    rolloutfs.AppenderOptions
		durable bool
	}{
		{"always", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncAlways}, true},
		{"batch with group", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncBatch, Group: group}, true},
		{"batch alone", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncBatch}, true},
		{"none", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncNone}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys, root := newFS(t)
			// Two files, so a group batch may hold both.
			names := []string{"s/a.jsonl", "s/b.jsonl"}
			var appenders []*rolloutfs.Appender
			for _, name := range names {
				if _, err := fsys.Create(t.Context(), name, bytesOf(line1), true); err != nil {
					t.Fatal(err)
				}
				a, err := rolloutfs.OpenAppender(t.Context(), fsys, name, tt.opts)
				if err != nil {
					t.Fatal(err)
				}
				appenders = append(appenders, a)
			}
			for _, a := range appenders {
				for range 3 {
					if _, err := a.Append(t.Context(), [][]byte{[]byte(line2)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := fsys.PowerLoss(); err != nil {
				t.Fatal(err)
			}
			wantContent := line1
			if tt.durable {
				wantContent += strings.Repeat(line2, 3)
			}
			for i, name := range names {
				want(t, root, name, wantContent)
				if _, err := appenders[i].Append(t.Context(), [][]byte{[]byte(line2)}); !errors.Is(err, faultfs.ErrPowerLost) {
					t.Fatalf("Append after PowerLoss: %v, want ErrPowerLost", err)
				}
				if err := appenders[i].Close(); err != nil && !errors.Is(err, faultfs.ErrPowerLost) {
					t.Fatalf("Close after PowerLoss: %v, want nil or ErrPowerLost", err)
				}
				want(t, root, name, wantContent)
			}
		})
	}
}

func TestPowerLossKillsHandles(t *testing.T) {
	fsys, root := newFS(t)
	put(t, root, "r.jsonl", line1)
	f, err := fsys.OpenAppend(t.Context(), "r.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	rf, err := fsys.Open(t.Context(), "r.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	calls := []struct {
		name string
		call func() error
	}{
		{"Write", func() error { _, err := f.Write([]byte(line2)); return err }},
		{"Sync", f.Sync},
		{"Truncate", func() error { return f.Truncate(0) }},
		{"ReadAt", func() error { _, err := rf.ReadAt(buf, 0); return err }},
		{"Create from a Range", func() error {
			_, err := fsys.Create(t.Context(), "copy.jsonl", []rolloutfs.Part{rolloutfs.Range(rf, 0, 4)}, true)
			return err
		}},
		{"Close", f.Close},
		{"Close reader", rf.Close},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, faultfs.ErrPowerLost) {
				t.Fatalf("%s after PowerLoss: %v, want ErrPowerLost", c.name, err)
			}
		})
	}
	want(t, root, "r.jsonl", line1)
	absent(t, root, "copy.jsonl")

	// Handles opened after the power loss work.
	f2, err := fsys.OpenAppend(t.Context(), "r.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f2.Write([]byte(line2)); err != nil {
		t.Fatalf("Write on a new handle: %v", err)
	}
	if err := errors.Join(f2.Sync(), f2.Close()); err != nil {
		t.Fatalf("Sync and Close of a new handle: %v", err)
	}
	rf2, err := fsys.Open(t.Context(), "r.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer rf2.Close()
	if _, err := rf2.ReadAt(buf, 0); err != nil {
		t.Fatalf("ReadAt on a new handle: %v", err)
	}
	want(t, root, "r.jsonl", line1+line2)
}

// TestPowerLossLeavesUntouchedFiles checks that files the FS never wrote,
// moved or removed keep their content and modification time, even those
// it read.
func TestPowerLossLeavesUntouchedFiles(t *testing.T) {
	fsys, root := newFS(t)
	mtime := time.Unix(1234567890, 0)
	untouched := map[string]string{
		"s/never.jsonl": line1 + torn,
		"s/read.jsonl":  line1 + line2,
		"s/dir/x.jsonl": "",
	}
	for name, data := range untouched {
		put(t, root, name, data)
		if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(name)), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// Work on other files, and only read the untouched ones.
	if _, err := fsys.Create(t.Context(), "s/other.jsonl", bytesOf(line1), false); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat(t.Context(), "s/read.jsonl"); err != nil {
		t.Fatal(err)
	}
	rf, err := fsys.Open(t.Context(), "s/read.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	rf.Close()
	if _, err := fsys.ReadDir(t.Context(), "s"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	for name, data := range untouched {
		want(t, root, name, data)
		st, err := os.Stat(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", name, st.ModTime(), mtime)
		}
	}
	absent(t, root, "s/other.jsonl")
}

// TestPowerLossTwice checks that the model goes on after a power loss:
// a second one keeps what was made durable in between.
func TestPowerLossTwice(t *testing.T) {
	fsys, root := newFS(t)
	if _, err := fsys.Create(t.Context(), "r.jsonl", bytesOf(line1), true); err != nil {
		t.Fatal(err)
	}
	if err := fsys.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	a, err := rolloutfs.OpenAppender(t.Context(), fsys, "r.jsonl", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Append(t.Context(), [][]byte{[]byte(line2)}); err != nil {
		t.Fatal(err)
	}
	if err := fsys.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	want(t, root, "r.jsonl", line1+line2)
}

// TestPowerLossAfterNonDurableReplace: a power loss after a Replace that
// was not made durable leaves the file as it was durable before (the
// rename of the new file over it is lost), never no file, whether the
// old file was written through the FS or was there before it.
func TestPowerLossAfterNonDurableReplace(t *testing.T) {
	fsys, root := newFS(t)
	put(t, root, "s/untracked.jsonl", line1)
	if _, err := fsys.Create(t.Context(), "s/tracked.jsonl", bytesOf(line1), true); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"s/untracked.jsonl", "s/tracked.jsonl"} {
		if _, err := fsys.Replace(t.Context(), name, bytesOf(line2), false); err != nil {
			t.Fatal(err)
		}
		want(t, root, name, line2)
	}
	if err := fsys.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	want(t, root, "s/untracked.jsonl", line1)
	want(t, root, "s/tracked.jsonl", line1)
}
