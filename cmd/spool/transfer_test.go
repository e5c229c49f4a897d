package main

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/manager"
)

// TestTransferBetweenRoots: spool transfer copies a fork, named by a
// suffix of its id, with its parent from a root that spoold served to a
// new root, which it makes and which then shows the fork; a second
// transfer finds both present.
func TestTransferBetweenRoots(t *testing.T) {
	s := startSpoold(t, "")
	ctx := t.Context()
	base, err := s.c.Create(ctx, client.CreateOptions{Cwd: "/work/project", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Append(ctx, base.ID, item("user", "prompt one"), item("assistant", "answer one"), item("user", "prompt two")); err != nil {
		t.Fatal(err)
	}
	one := 1
	fork, err := s.c.Fork(ctx, base.ID, client.ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatal(err)
	}
	// The transfer opens the root directly: its server goes first.
	s.close(t)
	target := filepath.Join(t.TempDir(), "new-root") // made by the transfer
	cli := newCLI(t, map[string]string{})
	// The fork named by a unique suffix, as every command takes it.
	out := cli.ok("transfer", fork.ID[len(fork.ID)-8:], "--from", s.root, "--to", target)
	if !strings.Contains(out, "copied "+base.ID) || !strings.Contains(out, "copied "+fork.ID) || strings.Index(out, base.ID) > strings.Index(out, fork.ID) {
		t.Fatalf("transfer printed %q; want the parent copied, then the fork", out)
	}
	shown := cli.ok("--local", "--root", target, "show", fork.ID)
	if !strings.Contains(shown, "prompt one") || strings.Contains(shown, "prompt two") {
		t.Fatalf("the copied fork shows %q", shown)
	}
	if again := cli.ok("transfer", fork.ID, "--from", s.root, "--to", target); !strings.Contains(again, "present "+fork.ID) {
		t.Fatalf("second transfer printed %q", again)
	}
	if r := cli.run("transfer", fork.ID, "--from", s.root); r.code == 0 {
		t.Fatal("transfer without --to succeeded")
	}
}

// TestTransferRefusesBadRoots: a --from root that does not exist is
// refused, not made (a mistyped path would otherwise be an empty source),
// and so is the same root on both sides, however it is spelled; nothing
// is opened or made.
func TestTransferRefusesBadRoots(t *testing.T) {
	root, _, fork := seedRoot(t)
	missing := filepath.Join(t.TempDir(), "mistyped")
	target := filepath.Join(t.TempDir(), "target")
	// notRoot is a directory of other things, named by mistake.
	notRoot := t.TempDir()
	if err := os.WriteFile(filepath.Join(notRoot, "notes.txt"), []byte("mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		from, to string
		code     int
		want     string
	}{
		{"missing source", missing, target, exitError, "no such root: " + missing},
		{"source not a root", notRoot, target, exitError, "--from: neither a spool root nor a Codex home: " + notRoot},
		{"target not a root", root, notRoot, exitError, "--to: neither a spool root nor a Codex home: " + notRoot},
		{"same root", root, root, exitUsage, "--from and --to are the same root"},
		{"same root spelled otherwise", root, root + string(filepath.Separator) + ".", exitUsage, "--from and --to are the same root"},
	}
	cli := newCLI(t, map[string]string{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := cli.run("transfer", fork.ID, "--from", tc.from, "--to", tc.to)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
			for _, dir := range []string{missing, target} {
				if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("%s was made: %v", dir, err)
				}
			}
			if entries, _ := os.ReadDir(notRoot); len(entries) != 1 {
				t.Fatalf("%s holds %v, want only notes.txt", notRoot, entries)
			}
		})
	}
}

// TestTransferFromARootSpooldServes: transfer opens its roots directly,
// never through spoold, so a root a spoold holds is refused with the advice
// to stop it, not with the other commands' advice to set SPOOL_ADDR, which
// transfer does not read.
func TestTransferFromARootSpooldServes(t *testing.T) {
	root, _, fork := seedRoot(t)
	m, err := manager.Open(t.Context(), manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	// The holder a spoold records; the lock is the open manager's.
	if err := os.WriteFile(filepath.Join(root, "spool.lock"), []byte("spoold (pid 7) on vm since 2026-11-26T10:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := newCLI(t, map[string]string{})
	r := cli.run("transfer", fork.ID, "--from", root, "--to", filepath.Join(t.TempDir(), "target"))
	if r.code != exitError || !strings.Contains(r.stderr, "is in use by spoold (pid 7)") || strings.Contains(r.stderr, "SPOOL_ADDR") || !strings.Contains(r.stderr, "stop it") {
		t.Fatalf("transfer from a root spoold holds: exit %d, stderr %q; want %d, naming spoold and saying to stop it, not SPOOL_ADDR", r.code, r.stderr, exitError)
	}
}

// TestTransferNamesTheSideThatFailed: a backend transfer cannot open is
// named by its flag, and a postgres:// URL by itself too, its password
// shown as xxxxx wherever the URL holds it: the driver's dial error
// names neither (which side? which database?), and spool printed it bare.
func TestTransferNamesTheSideThatFailed(t *testing.T) {
	root, _, fork := seedRoot(t)
	closed := fixtures.ClosedAddr(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		from, to string
		want     string
	}{
		{"--to database down", root, "postgres://me:s3cret@" + closed + "/spool", "--to postgres://me:xxxxx@" + closed + "/spool: "},
		{"--from database down", "postgres://me:s3cret@" + closed + "/spool", filepath.Join(t.TempDir(), "target"), "--from postgres://me:xxxxx@" + closed + "/spool: "},
		{"password as a parameter", root, "postgres://me@" + closed + "/spool?password=s3cret", "--to postgres://me@" + closed + "/spool?password=xxxxx: "},
		{"URL that does not parse", root, "postgres://me:s3cret@" + closed + ":x/spool", "--to postgres://xxxxx@" + closed + ":x/spool: "},
		{"--to root under a file", root, filepath.Join(file, "target"), "--to: "},
	}
	cli := newCLI(t, map[string]string{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := cli.run("transfer", fork.ID, "--from", tc.from, "--to", tc.to)
			if r.code != exitError || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitError, tc.want)
			}
			if strings.Contains(r.stderr, "s3cret") {
				t.Fatalf("stderr shows the password: %q", r.stderr)
			}
		})
	}
}

// TestTransferUsesTheRootsIndex: a root whose index lives elsewhere (a
// Codex home served with spoold -index) is opened, as --from or --to, with
// the index --index or $SPOOL_INDEX gives when the side names the root
// --root or $SPOOL_ROOT does, so nothing is written into it and a spoold
// holding its lock is seen; transfer opened ROOT/spool.db, writing a second
// index and lock into the home. An index given for another root is not
// used for this one.
func TestTransferUsesTheRootsIndex(t *testing.T) {
	home := t.TempDir()
	index := filepath.Join(t.TempDir(), "state", "codex.db")
	m, err := manager.Open(t.Context(), manager.Options{Root: home, IndexPath: index, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	th, err := m.Start(t.Context(), manager.StartOptions{Name: "in a home"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"flags", map[string]string{}, []string{"--root", home, "--index", index}},
		{"environment", map[string]string{"SPOOL_ROOT": home, "SPOOL_INDEX": index}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "target")
			cli := newCLI(t, tt.env)
			if out := cli.ok(append(tt.args, "transfer", th.ID, "--from", home, "--to", target)...); !strings.Contains(out, "copied "+th.ID) {
				t.Fatalf("transfer printed %q", out)
			}
			for _, name := range []string{manager.IndexFile, "spool.lock"} {
				if _, err := os.Stat(filepath.Join(home, name)); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("%s written into the home: %v", name, err)
				}
			}
			// Back again: the home as --to is opened with its index too.
			if out := cli.ok(append(tt.args, "transfer", th.ID, "--from", target, "--to", home)...); !strings.Contains(out, "present "+th.ID) {
				t.Fatalf("transfer back printed %q; want the thread present in the home's index", out)
			}
		})
	}
	// Given with another --root, the index is that root's: the home is
	// opened with its own, ROOT/spool.db.
	other := t.TempDir()
	if out := newCLI(t, map[string]string{}).ok("--root", other, "--index", index, "transfer", th.ID, "--from", home, "--to", filepath.Join(other, "t")); !strings.Contains(out, "copied "+th.ID) {
		t.Fatalf("transfer with another root's index printed %q", out)
	}
	if _, err := os.Stat(filepath.Join(home, manager.IndexFile)); err != nil {
		t.Fatalf("the home was opened with another root's index: %v", err)
	}
}
