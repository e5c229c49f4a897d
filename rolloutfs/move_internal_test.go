package rolloutfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestMoveAcrossFileSystems: a Move whose link fails with EXDEV (the two
// directories on two file systems) copies the file with its modification
// time and removes the source, as a rename would have.
func TestMoveAcrossFileSystems(t *testing.T) {
	l := Local{Root: t.TempDir()}
	data := []byte("{\"type\":\"a\"}\n{\"type\":\"b\"}\n")
	if _, err := l.Create(t.Context(), "sessions/2026/01/05/r.jsonl", []Part{Bytes(data)}, true); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1767600000, 0)
	if err := l.SetModTime(t.Context(), "sessions/2026/01/05/r.jsonl", mtime); err != nil {
		t.Fatal(err)
	}
	real := link
	link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
	t.Cleanup(func() { link = real })

	if err := l.Move(t.Context(), "sessions/2026/01/05/r.jsonl", "archived_sessions/r.jsonl"); err != nil {
		t.Fatalf("Move across file systems: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(l.Root, "archived_sessions", "r.jsonl"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("moved file: %q, %v; want %q", got, err, data)
	}
	if info, err := l.Stat(t.Context(), "archived_sessions/r.jsonl"); err != nil || !info.ModTime.Equal(mtime) {
		t.Fatalf("moved file's mtime: %v, %v; want %v", info.ModTime, err, mtime)
	}
	if _, err := os.Stat(filepath.Join(l.Root, "sessions", "2026", "01", "05", "r.jsonl")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the source after the move: %v, want it gone", err)
	}
	// An existing target fails, as a link would.
	if _, err := l.Create(t.Context(), "sessions/2026/01/05/s.jsonl", []Part{Bytes(data)}, true); err != nil {
		t.Fatal(err)
	}
	if err := l.Move(t.Context(), "sessions/2026/01/05/s.jsonl", "archived_sessions/r.jsonl"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Move onto an existing file across file systems: %v, want fs.ErrExist", err)
	}
}

// TestMoveSourceNotRemovable: a Move whose source cannot be removed (its
// directory made read-only; found by archiving a thread whose day folder
// was chmod 0500 under a running spoold, which left the rollout in both
// sessions/ and archived_sessions/) fails and leaves the file under its
// old name only, on one file system or across two.
func TestMoveSourceNotRemovable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		across bool
	}{
		{"same file system", false},
		{"across file systems", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Local{Root: t.TempDir()}
			data := []byte("{\"type\":\"a\"}\n")
			const from, to = "sessions/2026/01/05/r.jsonl", "archived_sessions/r.jsonl"
			if _, err := l.Create(t.Context(), from, []Part{Bytes(data)}, true); err != nil {
				t.Fatal(err)
			}
			realLink, realRemove := link, remove
			if tc.across {
				link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
			}
			remove = func(name string) error { return &os.PathError{Op: "remove", Path: name, Err: syscall.EACCES} }
			t.Cleanup(func() { link, remove = realLink, realRemove })

			if err := l.Move(t.Context(), from, to); !errors.Is(err, fs.ErrPermission) {
				t.Fatalf("Move with a read-only source directory: %v, want fs.ErrPermission", err)
			}
			if got, err := os.ReadFile(filepath.Join(l.Root, filepath.FromSlash(from))); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("the source after the failed move: %q, %v; want %q", got, err, data)
			}
			if _, err := os.Lstat(filepath.Join(l.Root, filepath.FromSlash(to))); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the target after the failed move: %v, want it absent", err)
			}
		})
	}
}

// TestMoveFinishesAMoveCutShort: a Move that a crash stopped between its
// link and its remove leaves the file under both names (found by make
// crash: a SIGKILL during an archive, and the thread's next archive failed
// with "file exists", a 500). Moving it again finishes the move: the file
// is at to only, with its bytes. A different file at to still fails with
// fs.ErrExist and is left alone, and so is a Move of a file onto itself.
func TestMoveFinishesAMoveCutShort(t *testing.T) {
	l := Local{Root: t.TempDir()}
	data := []byte("{\"type\":\"a\"}\n")
	const from, to = "sessions/2026/01/05/r.jsonl", "archived_sessions/r.jsonl"
	if _, err := l.Create(t.Context(), from, []Part{Bytes(data)}, true); err != nil {
		t.Fatal(err)
	}
	abs := func(rel string) string { return filepath.Join(l.Root, filepath.FromSlash(rel)) }
	// What the crashed Move did: the link, not the remove.
	if err := os.MkdirAll(filepath.Dir(abs(to)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(abs(from), abs(to)); err != nil {
		t.Fatal(err)
	}
	if err := l.Move(t.Context(), from, to); err != nil {
		t.Fatalf("Move of a file already linked at its target: %v", err)
	}
	if got, err := os.ReadFile(abs(to)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("moved file: %q, %v; want %q", got, err, data)
	}
	if _, err := os.Lstat(abs(from)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the source after the move: %v, want it gone", err)
	}

	// Another file in the way is not the source's: the Move fails.
	const other = "sessions/2026/01/05/s.jsonl"
	otherData := []byte("{\"type\":\"b\"}\n")
	if _, err := l.Create(t.Context(), other, []Part{Bytes(otherData)}, true); err != nil {
		t.Fatal(err)
	}
	if err := l.Move(t.Context(), other, to); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Move onto another file: %v, want fs.ErrExist", err)
	}
	if got, err := os.ReadFile(abs(other)); err != nil || !bytes.Equal(got, otherData) {
		t.Fatalf("the source after the failed move: %q, %v; want %q", got, err, otherData)
	}
	if got, err := os.ReadFile(abs(to)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the target after the failed move: %q, %v; want %q", got, err, data)
	}
	if err := l.Move(t.Context(), other, other); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Move of a file onto itself: %v, want fs.ErrExist", err)
	}
	if got, err := os.ReadFile(abs(other)); err != nil || !bytes.Equal(got, otherData) {
		t.Fatalf("the file after a Move onto itself: %q, %v; want %q", got, err, otherData)
	}
}

// TestMoveSyncsTargetBeforeRemovingSource: a Move makes the file's new name
// durable (its directory, and the parent of each directory it created,
// fsynced) before it removes the old one. It removed first and synced
// after, the source's directory before the target's: a power loss between
// those fsyncs could keep the removal and lose the new name, and with it
// the thread's file (across two file systems, whose journals are not
// ordered with each other, the new directory's own entry was synced last).
func TestMoveSyncsTargetBeforeRemovingSource(t *testing.T) {
	for _, tc := range []struct {
		name     string
		across   bool
		from, to string
		want     []string // directories to sync before the source is removed
	}{
		{"archive", false, "sessions/2026/01/05/r.jsonl", "archived_sessions/r.jsonl",
			[]string{"archived_sessions", "."}},
		{"archive across file systems", true, "sessions/2026/01/05/r.jsonl", "archived_sessions/r.jsonl",
			[]string{"archived_sessions", "."}},
		{"unarchive", false, "archived_sessions/r.jsonl", "sessions/2026/01/05/r.jsonl",
			[]string{"sessions/2026/01/05", "sessions/2026/01", "sessions/2026", "sessions", "."}},
		{"unarchive across file systems", true, "archived_sessions/r.jsonl", "sessions/2026/01/05/r.jsonl",
			[]string{"sessions/2026/01/05", "sessions/2026/01", "sessions/2026", "sessions", "."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Local{Root: t.TempDir()}
			if _, err := l.Create(t.Context(), tc.from, []Part{Bytes([]byte("{\"type\":\"a\"}\n"))}, true); err != nil {
				t.Fatal(err)
			}
			var synced, beforeRemove []string // directories fsynced, relative to the root
			realLink, realRemove, realSyncDir := link, remove, syncDir
			if tc.across {
				link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
			}
			syncDir = func(p string) error {
				rel, err := filepath.Rel(l.Root, p)
				if err != nil {
					return err
				}
				synced = append(synced, filepath.ToSlash(rel))
				return realSyncDir(p)
			}
			remove = func(name string) error {
				beforeRemove = slices.Clone(synced)
				return realRemove(name)
			}
			t.Cleanup(func() { link, remove, syncDir = realLink, realRemove, realSyncDir })

			if err := l.Move(t.Context(), tc.from, tc.to); err != nil {
				t.Fatalf("Move: %v", err)
			}
			for _, d := range tc.want {
				if !slices.Contains(beforeRemove, d) {
					t.Errorf("directory %q not synced before the source was removed (synced then: %q)", d, beforeRemove)
				}
			}
			if i := slices.Index(synced, path.Dir(tc.from)); i < len(beforeRemove) {
				t.Errorf("the source's directory %q not synced after the source was removed (synced: %q, %d of them before)", path.Dir(tc.from), synced, len(beforeRemove))
			}
		})
	}
}

// TestMoveAcrossFailingAfterCopyLeavesSource: a Move across two file
// systems that fails after its copy is written (its modification time
// cannot be set, a directory cannot be synced) leaves the file at from
// only. The copy stayed: the thread's file under both names, on two file
// systems where no later Move recognises it as the same file, so moving
// the file back failed too.
func TestMoveAcrossFailingAfterCopyLeavesSource(t *testing.T) {
	l := Local{Root: t.TempDir()}
	data := []byte("{\"type\":\"a\"}\n")
	const from, to = "sessions/2026/01/05/r.jsonl", "archived_sessions/r.jsonl"
	if _, err := l.Create(t.Context(), from, []Part{Bytes(data)}, true); err != nil {
		t.Fatal(err)
	}
	realLink, realSyncDir := link, syncDir
	link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
	syncDir = func(p string) error {
		if p == l.Root { // the entry of archived_sessions/, which the Move created
			return &fs.PathError{Op: "fsync", Path: p, Err: syscall.EIO}
		}
		return realSyncDir(p)
	}
	t.Cleanup(func() { link, syncDir = realLink, realSyncDir })

	if err := l.Move(t.Context(), from, to); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Move whose directory sync fails: %v, want EIO", err)
	}
	if got, err := os.ReadFile(filepath.Join(l.Root, filepath.FromSlash(from))); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the source after the failed move: %q, %v; want %q", got, err, data)
	}
	if _, err := os.Lstat(filepath.Join(l.Root, filepath.FromSlash(to))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the copy after the failed move: %v, want it absent", err)
	}
}
