package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/buildhint"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/internal/indextest"
	"github.com/spoolhq/spool/internal/shellquote"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/internal/testbin"
	"github.com/spoolhq/spool/lockfile"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// binary is the reindex command built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testbin.Run(m, "github.com/spoolhq/spool/cmd/reindex", &binary))
}

type result struct {
	code           int
	stdout, stderr string
}

// runReindex runs the built command with args and a clean SPOOL_ROOT and
// SPOOL_INDEX.
func runReindex(t *testing.T, args ...string) result {
	t.Helper()
	return runReindexEnv(t, nil, args...)
}

// runReindexEnv is runReindex with the variables env ("K=V") set.
func runReindexEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "SPOOL_ROOT=", "SPOOL_INDEX="), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run reindex: %v", err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// testHome copies testdata/indexer/home into a temporary root.
func testHome(t *testing.T) string {
	t.Helper()
	src := filepath.Join(fixtures.RepoRoot(t), "testdata", "indexer", "home")
	root := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(root, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func decode(t *testing.T, out string) report {
	t.Helper()
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("decode JSON %q: %v", out, err)
	}
	return rep
}

// TestIndexFromEnv: with spoold's variables set for a Codex home served
// with its index elsewhere ($SPOOL_ROOT, $SPOOL_INDEX), reindex works on
// that index, as spoold does, and writes nothing into the home; before,
// it took ROOT/spool.db and built a second index in the home.
func TestIndexFromEnv(t *testing.T) {
	root := testHome(t)
	index := filepath.Join(t.TempDir(), "codex.db")
	env := []string{"SPOOL_ROOT=" + root, "SPOOL_INDEX=" + index}
	res := runReindexEnv(t, env, "--json")
	if rep := decode(t, res.stdout); res.code != exitOK || rep.Index != index || rep.Sync == nil || rep.Sync.Files != 3 {
		t.Fatalf("reindex with $SPOOL_INDEX: exit %d, report %+v, stderr %s; want the 3 files indexed into %s", res.code, rep, res.stderr, index)
	}
	if res := runReindexEnv(t, env, "--verify"); res.code != exitOK {
		t.Fatalf("reindex --verify with $SPOOL_INDEX: exit %d, stderr %s", res.code, res.stderr)
	}
	for _, name := range []string{defaultIndexName, lockfile.FileName} {
		if _, err := os.Stat(filepath.Join(root, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s in the root (%v): the index is %s", name, err, index)
		}
	}
	// --index still wins.
	other := filepath.Join(t.TempDir(), "other.db")
	if rep := decode(t, runReindexEnv(t, env, "--index", other, "--json").stdout); rep.Index != other {
		t.Fatalf("--index beside $SPOOL_INDEX: index %s, want %s", rep.Index, other)
	}
}

func TestJSONOutput(t *testing.T) {
	root := testHome(t)
	res := runReindex(t, "--root", root, "--json")
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
	}
	rep := decode(t, res.stdout)
	if rep.Mode != "sync" || rep.Sync == nil || rep.Sync.Files != 3 || rep.Sync.Scanned != 3 || rep.Sync.UserMessages != 7 {
		t.Fatalf("report = %+v (sync %+v), want 3 files scanned with 7 user messages", rep, rep.Sync)
	}
	if rep.Index != filepath.Join(root, "spool.db") {
		t.Fatalf("index = %s, want the default in the root", rep.Index)
	}

	res = runReindex(t, "--root", root, "--json")
	if rep := decode(t, res.stdout); res.code != exitOK || rep.Sync.Skipped != 3 {
		t.Fatalf("second run: exit %d, report %+v, want 3 skipped", res.code, rep.Sync)
	}
}

// TestVerifyJSONLists: --verify --json gives its drifts and problems as
// lists, empty ones too, as the sync report and spool doctor --json do, so
// a reader can take their length without testing for null.
func TestVerifyJSONLists(t *testing.T) {
	root := testHome(t)
	if res := runReindex(t, "--root", root); res.code != exitOK {
		t.Fatalf("index: exit %d, stderr %s", res.code, res.stderr)
	}
	res := runReindex(t, "--root", root, "--verify", "--json")
	if res.code != exitOK {
		t.Fatalf("verify: exit %d, stderr %s", res.code, res.stderr)
	}
	for _, want := range []string{`"drifts": []`, `"problems": []`} {
		if !strings.Contains(res.stdout, want) {
			t.Fatalf("verify --json on a clean root:\n%s\nwant %s", res.stdout, want)
		}
	}
}

func TestTextOutput(t *testing.T) {
	root := testHome(t)
	path := filepath.Join(root, "sessions/2026/05/01/rollout-2026-05-01T09-00-00-11111111-1111-7111-8111-111111111111.jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"timestamp":"2026-05-01T09:06:00.000Z","type":"resp`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	res := runReindex(t, "--root", root, "--full", "--workers", "1")
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
	}
	for _, want := range []string{"3 files: 3 scanned", "user messages", "MB/s", "torn", "offset 1643"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout %q lacks %q", res.stdout, want)
		}
	}
	if !strings.Contains(res.stderr, "indexed 3/3 files") {
		t.Errorf("stderr %q lacks the final progress line", res.stderr)
	}

	// The line was written just now: its writer may still finish it.
	res = runReindex(t, "--root", root, "--repair")
	if res.code != exitDrift || !strings.Contains(res.stdout, "left the torn tail") || !strings.Contains(res.stdout, "run --repair again in") {
		t.Fatalf("repair of a young tail: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runReindex(t, "--root", root, "--repair", "--torn-grace", "0s")
	if res.code != exitOK || !strings.Contains(res.stdout, "cut 52 torn bytes") {
		t.Fatalf("repair: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}

func TestVerifyExitCodes(t *testing.T) {
	root := testHome(t)
	index := filepath.Join(t.TempDir(), "elsewhere", "index.db")
	// No index yet: say how to build it (it said "stat ...: no such file").
	if res := runReindex(t, "--root", root, "--index", index, "--verify"); res.code != exitError ||
		!strings.Contains(res.stderr, "no index to verify") || !strings.Contains(res.stderr, "--index "+index+" builds one") {
		t.Fatalf("verify without an index: exit %d, stderr %q; want 2 and how to build it", res.code, res.stderr)
	}
	if res := runReindex(t, "--root", root, "--index", index); res.code != exitOK {
		t.Fatalf("sync: exit %d, stderr %s", res.code, res.stderr)
	}
	res := runReindex(t, "--root", root, "--index", index, "--verify")
	if res.code != exitOK || !strings.Contains(res.stdout, "agrees") {
		t.Fatalf("verify clean: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}

	gone := "sessions/2026/05/01/rollout-2026-05-01T11-00-00-33333333-3333-7333-8333-333333333333.jsonl"
	if err := os.Remove(filepath.Join(root, gone)); err != nil {
		t.Fatal(err)
	}
	res = runReindex(t, "--root", root, "--index", index, "--verify")
	if res.code != exitDrift || !strings.Contains(res.stdout, "drift: stale") || !strings.Contains(res.stdout, gone) || !strings.HasSuffix(res.stdout, ": 1 drift\n") {
		t.Fatalf("verify drift: exit %d, stdout %q, stderr %q; want exit 1 naming the stale row, then \"1 drift\"", res.code, res.stdout, res.stderr)
	}
	res = runReindex(t, "--root", root, "--index", index, "--verify", "--json")
	if rep := decode(t, res.stdout); res.code != exitDrift || rep.Verify == nil || len(rep.Verify.Drifts) != 1 || rep.Verify.Drifts[0].Kind != indexer.DriftStale {
		t.Fatalf("verify --json: exit %d, report %+v", res.code, rep.Verify)
	}

	// Drift and a file that cannot be indexed: the last line counts both
	// (it gave "1 drift" alone, as if every file had been checked).
	unreadable := "sessions/2026/05/01/rollout-2026-05-01T12-00-00-44444444-4444-7444-8444-444444444444.jsonl"
	if err := os.WriteFile(filepath.Join(root, unreadable), []byte("not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = runReindex(t, "--root", root, "--index", index, "--verify")
	if res.code != exitDrift || !strings.HasSuffix(res.stdout, ": 1 drift; 1 file could not be read or indexed\n") {
		t.Fatalf("verify drift and an unreadable file: exit %d, stdout %q; want exit 1, then \"1 drift; 1 file could not be read or indexed\"", res.code, res.stdout)
	}
}

// TestLocked: a locked index exits 3 naming the holder, and the advice
// fits the holder: a spoold is serving the root; a spool command or
// another reindex finishes by itself (it asked "is spoold running?" of
// every holder, a spool ls or doctor on the root too).
func TestLocked(t *testing.T) {
	tests := []struct {
		name, holder, advice string
	}{
		{"spoold", "spoold (pid 42) on vm since 2026-11-29T15:00:00Z", "is spoold running?"},
		{"spool", "spool (pid 42) on vm since 2026-11-29T15:00:00Z", "wait for it to finish"},
		{"reindex", "reindex (pid 42) on vm since 2026-11-29T15:00:00Z", "wait for it to finish"},
		{"unknown", "", "is spoold running?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := testHome(t)
			path := filepath.Join(root, lockfile.FileName)
			lock, err := lockfile.Acquire(path)
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Release()
			// The holder as that program records it (the flock stays).
			if err := os.WriteFile(path, []byte(tt.holder), 0o600); err != nil {
				t.Fatal(err)
			}
			res := runReindex(t, "--root", root)
			if res.code != exitLocked || !strings.Contains(res.stderr, "index is locked by ") || !strings.Contains(res.stderr, tt.holder) || !strings.Contains(res.stderr, tt.advice) {
				t.Fatalf("exit %d, stderr %q; want exit 3 naming %q and advising %q", res.code, res.stderr, tt.holder, tt.advice)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	root := testHome(t)
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"--root", root, "--bogus"}},
		{"verify with repair", []string{"--root", root, "--verify", "--repair"}},
		{"missing root", []string{"--root", filepath.Join(root, "missing")}},
		{"bad workers", []string{"--root", root, "--workers", "0"}},
		{"stray argument", []string{"--root", root, "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runReindex(t, tt.args...)
			if res.code != exitError || res.stderr == "" {
				t.Fatalf("exit %d, stderr %q; want exit 2 with a message", res.code, res.stderr)
			}
			// Said once: the flag package prints a flag's error itself.
			if first, _, _ := strings.Cut(strings.TrimPrefix(res.stderr, "reindex: "), "\n"); strings.Count(res.stderr, first) != 1 {
				t.Fatalf("stderr says %q more than once:\n%s", first, res.stderr)
			}
		})
	}
}

// TestRootErrorsSayWhatIsWrong: a root that does not exist is named as
// missing, with the flag and variable that name it, and a file given as the
// root as not a directory; before, both said "is not a directory", which
// sent a user looking for a file where there was nothing.
func TestRootErrorsSayWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"missing --root", []string{"--root", filepath.Join(dir, "missing")}, nil,
			"reindex: no such root: " + filepath.Join(dir, "missing") + " (--root or $SPOOL_ROOT names it)\n"},
		{"missing $SPOOL_ROOT", nil, []string{"SPOOL_ROOT=" + filepath.Join(dir, "gone")},
			"reindex: no such root: " + filepath.Join(dir, "gone") + " (--root or $SPOOL_ROOT names it)\n"},
		{"a file", []string{"--root", file}, nil,
			"reindex: root " + file + " is not a directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runReindexEnv(t, tt.env, tt.args...)
			if res.code != exitError {
				t.Fatalf("exit %d, want %d", res.code, exitError)
			}
			if res.stderr != tt.want {
				t.Fatalf("stderr %q, want %q", res.stderr, tt.want)
			}
		})
	}
}

// TestCodexHomeReadOnly indexes the shared Codex fixtures in place, with the
// index elsewhere, and checks that nothing was written into them.
func TestCodexHomeReadOnly(t *testing.T) {
	home := fixtures.CodexHome(t)
	before := listTree(t, home)
	index := filepath.Join(t.TempDir(), "codex.db")
	res := runReindex(t, "--root", home, "--index", index, "--json")
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
	}
	rep := decode(t, res.stdout)
	if rep.Sync.Scanned != 5 || len(rep.Sync.Problems) != 0 {
		t.Fatalf("sync = %+v, want 5 threads and no problems", rep.Sync)
	}
	if res := runReindex(t, "--root", home, "--index", index, "--verify"); res.code != exitOK {
		t.Fatalf("verify: exit %d, stdout %s, stderr %s", res.code, res.stdout, res.stderr)
	}
	if after := listTree(t, home); after != before {
		t.Fatalf("home changed:\nbefore\n%s\nafter\n%s", before, after)
	}
}

// listTree lists every entry under dir with its size and modification time.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestFullRebuildsCorruptIndex damages the index (garbage, a schema that
// lacks older migrations, or one newer than this binary): a plain run refuses it and says to run
// --full; --full keeps the old file aside, rebuilds, and the result
// verifies clean.
func TestFullRebuildsCorruptIndex(t *testing.T) {
	tests := []struct {
		name   string
		why    string // the aside file's label
		damage func(t *testing.T, index string)
	}{
		{"garbage", "corrupt", func(t *testing.T, index string) {
			garbage := bytes.Repeat([]byte("this is not a SQLite database \x00\xff"), 4096)
			if err := os.WriteFile(index, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Remove(index + "-wal")
			os.Remove(index + "-shm")
		}},
		{"older migrations missing", "old", func(t *testing.T, index string) {
			db, err := sql.Open("sqlite", index)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`DELETE FROM goose_db_version WHERE version_id IN (3, 4)`); err != nil {
				t.Fatal(err)
			}
		}},
		// A newer spool's index, left behind by a downgrade: the error
		// says to rebuild with --full, so --full must do it.
		{"newer schema", "newer", func(t *testing.T, index string) {
			db, err := sql.Open("sqlite", index)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)`); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := testHome(t)
			if res := runReindex(t, "--root", root); res.code != exitOK {
				t.Fatalf("first index: exit %d, stderr %s", res.code, res.stderr)
			}
			index := filepath.Join(root, "spool.db")
			tt.damage(t, index)
			damaged, err := os.ReadFile(index)
			if err != nil {
				t.Fatal(err)
			}

			res := runReindex(t, "--root", root)
			if res.code != exitError || !strings.Contains(res.stderr, "reindex --full") {
				t.Fatalf("incremental run on a damaged index: exit %d, stderr %q; want exit %d saying to run --full", res.code, res.stderr, exitError)
			}
			res = runReindex(t, "--root", root, "--full", "--json")
			if res.code != exitOK {
				t.Fatalf("--full on a damaged index: exit %d, stderr %s", res.code, res.stderr)
			}
			if rep := decode(t, res.stdout); rep.Sync == nil || rep.Sync.Scanned != 3 {
				t.Fatalf("--full report %+v, want 3 files scanned", rep.Sync)
			}
			aside, _ := filepath.Glob(index + "." + tt.why + "-*[0-9]")
			if len(aside) != 1 || !strings.Contains(res.stderr, aside[0]) {
				t.Fatalf("old index kept as %v, stderr %q; want one file, named in stderr", aside, res.stderr)
			}
			if kept, err := os.ReadFile(aside[0]); err != nil || !bytes.Equal(kept, damaged) {
				t.Fatalf("the old index was not kept as it was (%v)", err)
			}
			if res := runReindex(t, "--root", root, "--verify"); res.code != exitOK {
				t.Fatalf("verify after the rebuild: exit %d, stdout %s", res.code, res.stdout)
			}
		})
	}
}

// TestRepairTakesTheRootLock runs --repair with the index outside the root
// while another process holds the root's lock: the repair must not cut
// anything in a root someone else writes.
func TestRepairTakesTheRootLock(t *testing.T) {
	root := testHome(t)
	lock, err := lockfile.Acquire(filepath.Join(root, lockfile.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	index := filepath.Join(t.TempDir(), "elsewhere.db")
	res := runReindex(t, "--root", root, "--index", index, "--repair")
	if res.code != exitLocked || !strings.Contains(res.stderr, "root is locked") {
		t.Fatalf("--repair with the root locked: exit %d, stderr %q; want exit %d", res.code, res.stderr, exitLocked)
	}
}

// tree maps every file under dir (but SQLite's shared-memory file, whose
// read marks every reader takes) to its size and mtime.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "-shm") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files[p] = fmt.Sprintf("%d bytes, mtime %d", fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestVerifyBesideServer (issue #13): --verify runs while a manager (as in
// spoold) holds the root's lock and the index open, and after it closed;
// it takes no lock and writes nothing, in the root or beside the index.
func TestVerifyBesideServer(t *testing.T) {
	root := testHome(t)
	if res := runReindex(t, "--root", root); res.code != exitOK {
		t.Fatalf("sync: exit %d, stderr %s", res.code, res.stderr)
	}
	for _, running := range []bool{true, false} {
		t.Run(fmt.Sprintf("server running %v", running), func(t *testing.T) {
			if running {
				m, err := manager.Open(t.Context(), manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
			}
			before := tree(t, root)
			res := runReindex(t, "--root", root, "--verify")
			if res.code != exitOK || !strings.Contains(res.stdout, "agrees") {
				t.Fatalf("verify: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
			}
			after := tree(t, root)
			for p, was := range before {
				if now, ok := after[p]; !ok || now != was {
					t.Errorf("%s: %s before verify, %q after", p, was, now)
				}
			}
			for p := range after {
				if _, ok := before[p]; !ok {
					t.Errorf("verify created %s", p)
				}
			}
		})
	}
}

// TestUnindexableFileExitsOne: a file named like a rollout that is not a
// thread (not JSON) is named and makes every mode exit 1, the incremental
// run, --full and --verify alike, rather than 0 with the file dropped; an
// empty one is named and is no failure.
func TestUnindexableFileExitsOne(t *testing.T) {
	root := testHome(t)
	bad := filepath.Join(root, "sessions", "2026", "05", "02", "rollout-2026-05-02T09-00-00-019dab90-0000-7000-8000-00000000b001.jsonl")
	if err := os.MkdirAll(filepath.Dir(bad), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("this is not a rollout\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"--full"}, {"--verify"}} {
		res := runReindex(t, append([]string{"--root", root}, args...)...)
		if res.code != exitDrift || !strings.Contains(res.stdout, filepath.Base(bad)) {
			t.Errorf("reindex %v: exit %d, stdout %q; want exit %d naming the file", args, res.code, res.stdout, exitDrift)
		}
	}

	// An empty one is a file its writer is creating (Codex makes a revert
	// segment before it writes it): named, but no failure.
	if err := os.Truncate(bad, 0); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"--full"}, {"--verify"}} {
		res := runReindex(t, append([]string{"--root", root}, args...)...)
		if res.code != exitOK || !strings.Contains(res.stdout, filepath.Base(bad)) || !strings.Contains(res.stdout, "empty") {
			t.Errorf("reindex %v with an empty rollout: exit %d, stdout %q; want exit 0 naming it empty", args, res.code, res.stdout)
		}
	}
}

// TestBrokenBaseExitsOne: a reference fork whose chain of bases ends at a
// thread that is not there is a file reindex cannot index; it is named, and
// every mode exits 1, as for any file that could not be indexed. Before,
// the incremental run and --full printed "1 failed" and exited 0, and
// --verify printed the problem, then "index agrees with the files", and
// exited 0.
func TestBrokenBaseExitsOne(t *testing.T) {
	const (
		fork    = "019dab90-0000-7000-8000-00000000f001"
		missing = "019dab90-0000-7000-8000-00000000dead"
	)
	root := testHome(t)
	rel := filepath.Join("sessions", "2026", "05", "02", "rollout-2026-05-02T09-00-00-"+fork+".jsonl")
	meta := fmt.Sprintf(`{"timestamp":"2026-05-02T09:00:00.000Z","ordinal":0,"type":"session_meta","payload":`+
		`{"id":%q,"forked_from_id":%q,"timestamp":"2026-05-02T09:00:00.000Z","cwd":"/src","originator":"","cli_version":"",`+
		`"source":"cli","model_provider":"openai","history_mode":"paginated","forked_from_ordinal_exclusive":1,`+
		`"history_base":{"thread_id":%q,"end_ordinal_exclusive":1,"end_byte_offset":100}}}`+"\n", fork, missing, missing)
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(rel)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, rel), []byte(meta), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"--full"}, {"--verify"}, {"--json"}, {"--verify", "--json"}} {
		res := runReindex(t, append([]string{"--root", root}, args...)...)
		if res.code != exitDrift {
			t.Errorf("reindex %v: exit %d, want %d\n%s", args, res.code, exitDrift, res.stdout)
		}
		if !strings.Contains(res.stdout, filepath.Base(rel)) || !strings.Contains(res.stdout, indexer.ProblemDanglingBase) {
			t.Errorf("reindex %v: stdout %q does not name %s as %s", args, res.stdout, filepath.Base(rel), indexer.ProblemDanglingBase)
		}
		if strings.HasSuffix(res.stdout, ": index agrees with the files\n") {
			t.Errorf("reindex %v: stdout %q says the index agrees with the files, without a word of the one it could not index", args, res.stdout)
		}
	}
}

// TestIndexElsewhereLeavesTheRootsTemps: reindex with its index outside
// the root writes nothing into the root, as it promises for a read-only
// Codex home: a leftover temporary file there stays (the removal would
// fail on a read-only home and exit 1). With the index in the root (the
// root's lock held) it is removed.
func TestIndexElsewhereLeavesTheRootsTemps(t *testing.T) {
	root := testHome(t)
	leftover := filepath.Join(root, "sessions", "2026", "05", "01", "rollout-x.jsonl.a1.spool-tmp")
	if err := os.WriteFile(leftover, []byte(`{"half":`), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runReindex(t, "--root", root, "--index", filepath.Join(t.TempDir(), "elsewhere.db"), "--json")
	if rep := decode(t, res.stdout); res.code != exitOK || rep.Sync == nil || rep.Sync.TempsRemoved != 0 {
		t.Fatalf("index elsewhere: exit %d, report %+v, stderr %s; want 0 with no temporary file removed", res.code, rep.Sync, res.stderr)
	}
	if _, err := os.Stat(leftover); err != nil {
		t.Fatalf("the root's temporary file after a reindex with the index elsewhere: %v, want it kept", err)
	}
	res = runReindex(t, "--root", root, "--json")
	if rep := decode(t, res.stdout); res.code != exitOK || rep.Sync == nil || rep.Sync.TempsRemoved != 1 {
		t.Fatalf("index in the root: exit %d, report %+v, stderr %s; want 0 with the temporary file removed", res.code, rep.Sync, res.stderr)
	}
}

// startThread opens a manager on root and starts a thread in it; the
// caller closes the manager.
func startThread(t *testing.T, root string) (*manager.Manager, manager.Thread) {
	t.Helper()
	m, err := manager.Open(t.Context(), manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	th, err := m.Start(t.Context(), manager.StartOptions{Cwd: "/work", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	return m, th
}

// TestRepairMendsLostSegments: --verify reported a reverted thread whose
// thread_segments rows were deleted by hand (the sqlite3 shell), but
// --repair exited 1 on it ("reindex --full reads them again") and left it
// as it was; only --full mended it. --repair mends it now, and --verify
// finds nothing after.
func TestRepairMendsLostSegments(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m, th := startThread(t, root)
	var items []rollout.Item
	for _, text := range []string{"alpha", "bravo", "charlie"} {
		payload, err := json.Marshal(map[string]any{"type": "message", "role": "user",
			"content": []map[string]string{{"type": "input_text", "text": text}}})
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, rollout.Item{Type: rollout.TypeResponseItem, Payload: payload})
	}
	if _, err := m.Append(ctx, th.ID, items); err != nil {
		t.Fatal(err)
	}
	second := 1
	if _, err := m.Revert(ctx, th.ID, manager.RevertOptions{BeforeUserMessage: &second}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if res := runReindex(t, "--root", root, "--verify"); res.code != exitOK {
		t.Fatalf("verify before: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}

	db, err := sql.Open("sqlite", filepath.Join(root, manager.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`DELETE FROM thread_segments`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	res := runReindex(t, "--root", root, "--verify")
	if res.code != exitDrift || !strings.Contains(res.stdout, "drift: segments") || !strings.Contains(res.stdout, "reindex --repair") {
		t.Fatalf("verify after the delete: exit %d, stdout %q; want exit 1, a segments drift saying to run --repair", res.code, res.stdout)
	}
	if res := runReindex(t, "--root", root, "--repair"); res.code != exitOK {
		t.Fatalf("repair: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if res := runReindex(t, "--root", root, "--verify"); res.code != exitOK || !strings.Contains(res.stdout, "agrees") {
		t.Fatalf("verify after --repair: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}

// TestProgressAgreesWithSummary: the last progress line gives the bytes
// the summary gives. Forks whose base was not yet indexed are read again
// at the end of the sync, after the last progress update, so the progress
// said 478 bytes where the summary said 1.7 KiB.
func TestProgressAgreesWithSummary(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m, th := startThread(t, root)
	payload, err := json.Marshal(map[string]any{"type": "message", "role": "user",
		"content": []map[string]string{{"type": "input_text", "text": "alpha"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, th.ID, []rollout.Item{{Type: rollout.TypeResponseItem, Payload: payload}}); err != nil {
		t.Fatal(err)
	}
	fork, err := m.Fork(ctx, th.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fork(ctx, fork.ID, manager.ForkOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	progressRE := regexp.MustCompile(`indexed \d+/\d+ files, (.+) read\n$`)
	summaryRE := regexp.MustCompile(`user messages?, (.+) in `)
	for _, args := range [][]string{{"--full", "--workers", "1"}, {"--full"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			res := runReindex(t, append([]string{"--root", root}, args...)...)
			if res.code != exitOK {
				t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
			}
			progress, summary := progressRE.FindStringSubmatch(res.stderr), summaryRE.FindStringSubmatch(res.stdout)
			if progress == nil || summary == nil {
				t.Fatalf("no progress line in %q or no summary in %q", res.stderr, res.stdout)
			}
			if progress[1] != summary[1] {
				t.Fatalf("last progress line read %s, summary read %s\nstderr %s\nstdout %s", progress[1], summary[1], res.stderr, res.stdout)
			}
		})
	}
}

// TestEnvironmentSettingsNamedAsGiven: a setting that came from the
// environment (exported for spoold, say) is named as the variable when it
// makes the command line wrong; it was named as a flag nobody typed
// ("--collect and --s3 go with --pg" for reindex --full with SPOOL_S3 set).
func TestEnvironmentSettingsNamedAsGiven(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"SPOOL_PG with --full", []string{"SPOOL_PG=postgres://127.0.0.1:1/none"}, []string{"--full"}, "SPOOL_PG "},
		{"SPOOL_PG without a mode", []string{"SPOOL_PG=postgres://127.0.0.1:1/none"}, nil, "SPOOL_PG "},
		{"--pg with --full", nil, []string{"--pg", "postgres://127.0.0.1:1/none", "--full"}, "--pg "},
		{"SPOOL_S3 without --pg", []string{"SPOOL_S3=http://127.0.0.1:1"}, []string{"--full"}, "SPOOL_S3 "},
		{"--s3 without --pg", nil, []string{"--s3", "http://127.0.0.1:1"}, "--s3 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runReindexEnv(t, tt.env, append([]string{"--root", root}, tt.args...)...)
			if res.code != exitError || !strings.Contains(res.stderr, "reindex: "+tt.want) {
				t.Fatalf("reindex %v with %v: exit %d, stderr %q; want exit %d naming %s", tt.args, tt.env, res.code, res.stderr, exitError, strings.TrimSpace(tt.want))
			}
		})
	}
}

// TestRootNamedByMistakeIsRefused: a --root that is neither empty, nor a
// spool root, nor a Codex home (~/Documents typed for ~/.codex) is refused
// in every mode, with why and what to do, and gets nothing written into
// it, nor an index elsewhere; an empty directory or a Codex home that has
// never held a thread is indexed.
func TestRootNamedByMistakeIsRefused(t *testing.T) {
	tests := []struct {
		name    string
		files   []string // made in the root first; a trailing / makes a directory
		args    []string
		wantErr bool
	}{
		{name: "empty directory"},
		{name: "codex home never used", files: []string{"config.toml"}},
		{name: "codex home with sessions", files: []string{"sessions/", "notes.txt"}},
		{name: "other files", files: []string{"notes.txt", "photos/"}, wantErr: true},
		{name: "other files, full", files: []string{"notes.txt"}, args: []string{"--full"}, wantErr: true},
		{name: "other files, repair", files: []string{"notes.txt"}, args: []string{"--repair"}, wantErr: true},
		{name: "other files, verify", files: []string{"notes.txt"}, args: []string{"--verify"}, wantErr: true},
		{name: "other files, index elsewhere", files: []string{"notes.txt"}, args: []string{"--index", "ELSEWHERE"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			fixtures.MakeTree(t, root, tc.files...)
			elsewhere := filepath.Join(t.TempDir(), "state", "codex.db")
			args := []string{"--root", root}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "ELSEWHERE", elsewhere))
			}
			before := listTree(t, root)
			res := runReindex(t, args...)
			if !tc.wantErr {
				if res.code != exitOK {
					t.Fatalf("exit %d, stderr %q; want %d", res.code, res.stderr, exitOK)
				}
				if _, err := os.Stat(filepath.Join(root, "spool.db")); err != nil {
					t.Fatalf("no index made: %v", err)
				}
				return
			}
			if res.code != exitError {
				t.Fatalf("exit %d, stderr %q; want %d", res.code, res.stderr, exitError)
			}
			for _, want := range []string{"neither a spool root nor a Codex home", root, "--root", "mkdir"} {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr %q does not say %q", res.stderr, want)
				}
			}
			if after := listTree(t, root); after != before {
				t.Errorf("the refused root changed:\nbefore\n%s\nafter\n%s", before, after)
			}
			if _, err := os.Stat(filepath.Dir(elsewhere)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the index's directory was made: %v", err)
			}
		})
	}
}

// TestVerifyWithoutIndexSaysHowToBuildIt: --verify without an index gives
// the reindex command that builds the index it verifies, as a shell reads
// it back (a root with a space and a quote in its name; the hint was
// unquoted), and for a Codex home one that writes nothing into it.
func TestVerifyWithoutIndexSaysHowToBuildIt(t *testing.T) {
	tests := []struct {
		name    string
		files   []string // in the root; a trailing / makes a directory
		index   string   // --index under a temporary directory, "" for none
		outside bool     // the index is built in the state directory
	}{
		{name: "spool root whose index went", files: []string{"sessions/", "spool.lock"}},
		{name: "index elsewhere", files: []string{"sessions/"}, index: "state dir/codex.db"},
		{name: "codex home", files: []string{"sessions/", "config.toml"}, outside: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "my 'codex")
			fixtures.MakeTree(t, root, tc.files...)
			stateHome := t.TempDir()
			args := []string{"--root", root, "--verify"}
			wantArgs := []string{"--root", root}
			switch {
			case tc.index != "":
				index := filepath.Join(t.TempDir(), tc.index)
				args = append(args, "--index", index)
				wantArgs = append(wantArgs, "--index", index)
			case tc.outside:
				wantArgs = append(wantArgs, "--index", buildhint.StateIndex(root, stateHome))
			}
			before := listTree(t, root)
			res := runReindexEnv(t, []string{"XDG_STATE_HOME=" + stateHome}, args...)
			if res.code != exitError || !strings.Contains(res.stderr, "no index to verify") {
				t.Fatalf("exit %d, stderr %q; want %d and no index to verify", res.code, res.stderr, exitError)
			}
			if after := listTree(t, root); after != before {
				t.Errorf("verify wrote into the root:\nbefore\n%s\nafter\n%s", before, after)
			}
			m := regexp.MustCompile(`\(reindex (.*?) builds one`).FindStringSubmatch(res.stderr)
			if m == nil {
				t.Fatalf("stderr %q gives no reindex command", res.stderr)
			}
			out, err := exec.Command("sh", "-c", `for a in `+m[1]+`; do printf '%s\0' "$a"; done`).Output()
			if err != nil {
				t.Fatalf("sh on %q: %v", m[1], err)
			}
			if got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"); !slices.Equal(got, wantArgs) {
				t.Errorf("the hint's reindex takes %q, want %q", got, wantArgs)
			}
			if tc.outside {
				if then := shellquote.Join(append(append([]string{"reindex"}, wantArgs...), "--verify")...); !strings.Contains(res.stderr, "then "+then+" checks it") {
					t.Errorf("stderr %q does not say %q", res.stderr, then)
				}
			}
		})
	}
}

// TestSaysItMigrated runs reindex on an index an older release wrote
// (schema version 14): stderr says the schema was migrated, from which
// version to which, as spoold's log does. It said nothing of it, so an
// operator upgrading with reindex saw only the rescan a migration asked
// for. An index already up to date says nothing.
func TestSaysItMigrated(t *testing.T) {
	const older = 14
	root := testHome(t)
	if res := runReindex(t, "--root", root); res.code != exitOK {
		t.Fatalf("first reindex: exit %d, stderr %s", res.code, res.stderr)
	}
	newest := indextest.DownTo(t, filepath.Join(root, "spool.db"), older)
	res := runReindex(t, "--root", root)
	want := fmt.Sprintf("reindex: migrated the index schema from version %d to %d in ", older, newest)
	if res.code != exitOK || !strings.Contains(res.stderr, want) {
		t.Fatalf("reindex of an older index: exit %d, stderr %q; want it to say %q", res.code, res.stderr, want)
	}
	if res := runReindex(t, "--root", root); strings.Contains(res.stderr, "migrated") {
		t.Fatalf("reindex of an index up to date says %q", res.stderr)
	}
}

func TestCountSaysOneInTheSingular(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "0 lines"},
		{1, "1 line"},
		{2, "2 lines"},
	} {
		if got := count(tc.n, "line"); got != tc.want {
			t.Errorf("count(%d, line) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := count(int64(1), "torn byte"); got != "1 torn byte" {
		t.Errorf("count(int64(1), torn byte) = %q", got)
	}
}

// TestAnotherProgramsDatabaseLeavesNothing: reindex given another
// program's SQLite database as --index refuses it and leaves nothing it
// created: no spool.lock beside it, nor in the root with --repair. Before,
// both locks it took stayed behind.
func TestAnotherProgramsDatabaseLeavesNothing(t *testing.T) {
	for _, args := range [][]string{nil, {"--full"}, {"--repair"}} {
		t.Run(strings.Join(append([]string{"reindex"}, args...), " "), func(t *testing.T) {
			root, dir := testHome(t), t.TempDir()
			index := filepath.Join(dir, "state_5.sqlite")
			storetest.WriteForeign(t, index)
			names := func(dir string) []string {
				entries, err := os.ReadDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				return names
			}
			beforeDir, beforeRoot := names(dir), names(root)
			res := runReindex(t, append([]string{"--root", root, "--index", index}, args...)...)
			if res.code != exitError || !strings.Contains(res.stderr, "another program") {
				t.Fatalf("exit %d, stderr %q; want %d naming another program's database", res.code, res.stderr, exitError)
			}
			if after := names(dir); !slices.Equal(after, beforeDir) {
				t.Fatalf("the database's directory holds %q, want %q as before", after, beforeDir)
			}
			if after := names(root); !slices.Equal(after, beforeRoot) {
				t.Fatalf("the root holds %q, want %q as before", after, beforeRoot)
			}
		})
	}
}
