package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jmoiron/sqlx"
)

func TestOpenCreatesSchemaAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub dir?#%", "index.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		if i == 0 {
			mustInsert(t, s, Record{Thread: newThread("a", 1)})
		}
		if _, err := s.Get(ctx, "a"); err != nil {
			t.Fatalf("Get after open #%d: %v", i, err)
		}
		checkPragmas(t, s)
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i, err)
		}
	}
	// The options must have reached SQLite: the file is in WAL mode and
	// lives at the path given, special characters included.
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("index file: %v", err)
	}
}

func checkPragmas(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	for _, c := range []struct {
		db     *sqlx.DB
		pragma string
		want   string
	}{
		{s.writer, "journal_mode", "wal"},
		{s.writer, "foreign_keys", "1"},
		{s.writer, "synchronous", "1"},
		{s.writer, "busy_timeout", fmt.Sprint(busyTimeoutMs)},
		{s.reader, "query_only", "1"},
		{s.reader, "busy_timeout", fmt.Sprint(busyTimeoutMs)},
		{s.reader, "journal_mode", "wal"},
	} {
		var got string
		if err := c.db.GetContext(ctx, &got, "PRAGMA "+c.pragma); err != nil {
			t.Fatalf("PRAGMA %s: %v", c.pragma, err)
		}
		if got != c.want {
			t.Errorf("PRAGMA %s = %q, want %q", c.pragma, got, c.want)
		}
	}
	if _, err := s.reader.ExecContext(ctx, `DELETE FROM threads`); err == nil {
		t.Error("reader pool accepted a write")
	}
}

func TestMigrationsUpDownUp(t *testing.T) {
	ctx := context.Background()
	db, p := migratorAt(t, closedIndex(t))
	tables := func() int {
		var n int
		const q = `SELECT COUNT(*) FROM sqlite_master WHERE name NOT LIKE 'goose%' AND name NOT LIKE 'sqlite%'`
		if err := db.GetContext(ctx, &n, q); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := tables()
	if before == 0 {
		t.Fatal("no schema objects after Open")
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("DownTo(0): %v", err)
	}
	if n := tables(); n != 0 {
		t.Fatalf("%d schema objects left after DownTo(0), want 0", n)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("Up again: %v", err)
	}
	if n := tables(); n != before {
		t.Fatalf("%d schema objects after Up again, want %d", n, before)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v < 1 {
		t.Fatalf("db version %d after Up, want >= 1", v)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.ExecContext(ctx,
		`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, 1)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of newer schema: err = %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenRefusesCorruptFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"short garbage", []byte("not a database")},
		{"long garbage", func() []byte {
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(i*7 + 3)
			}
			return b
		}()},
		{"text file", []byte(`{"timestamp":"2026-04-20T10:15:30.118Z","type":"session_meta","payload":{}}` + "\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "index.db")
			if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Open(context.Background(), path)
			if err == nil {
				s.Close()
				t.Fatal("Open of a corrupt file succeeded")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	s := openTest(t)
	mustInsert(t, s, Record{Thread: newThread("a", 1), Messages: messages(0, 3, "hello")})
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check of a healthy index: %v", err)
	}
}

// TestConcurrentReadersNeverBusy reads from several goroutines while a
// writer commits; under WAL no read may fail with SQLITE_BUSY.
func TestConcurrentReadersNeverBusy(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	const writes = 200
	readers := 6
	mustInsert(t, s, Record{Thread: newThread("seed", 0)})

	done := make(chan struct{})
	errs := make(chan error, readers+1)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.List(ctx, ListOptions{Limit: 20}); err != nil {
					errs <- fmt.Errorf("reader %d List: %w", r, err)
					return
				}
				if _, err := s.Get(ctx, "seed"); err != nil {
					errs <- fmt.Errorf("reader %d Get: %w", r, err)
					return
				}
			}
		}()
	}
	for i := range writes {
		id := fmt.Sprintf("t%04d", i)
		if err := s.Insert(ctx, Record{Thread: newThread(id, int64(i)), Messages: messages(0, 2, "w")}); err != nil {
			errs <- fmt.Errorf("writer: %w", err)
			break
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Threads != writes+1 {
		t.Fatalf("threads = %d, want %d", st.Threads, writes+1)
	}
}

// TestOpenRefusesIndexLackingOlderMigrations: an index that lacks
// migrations older than its version (made by a build between two of
// them, whose migrations were numbered before ones it had) cannot be
// brought up to date; both opens say so with ErrUnmigratable, which
// `reindex --full` takes to rebuild.
func TestOpenRefusesIndexLackingOlderMigrations(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM goose_db_version WHERE version_id IN (3, 4)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path); !errors.Is(err, ErrUnmigratable) {
		t.Fatalf("Open: %v, want ErrUnmigratable", err)
	}
	if _, err := OpenReadOnly(ctx, path); !errors.Is(err, ErrUnmigratable) || !strings.Contains(err.Error(), "reindex --full") {
		t.Fatalf("OpenReadOnly: %v, want ErrUnmigratable saying to rebuild", err)
	}
}

// TestOpenRefusesReadOnlyIndex: an index this process may not write is
// refused before SQLite opens it, so no read-only -wal or -shm file is
// left to keep it unusable once it is writable again. The kernel's answer
// is faked (tests may run as root, whom no mode stops), and taken for
// real too when they do not.
func TestOpenRefusesReadOnlyIndex(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	noSidecars := func() {
		t.Helper()
		for _, suffix := range []string{"-wal", "-shm"} {
			if _, err := os.Stat(path + suffix); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s%s after a refused open: %v, want none", path, suffix, err)
			}
		}
	}
	noSidecars()

	real := writable
	writable = func(p string) error {
		if p == path {
			return &fs.PathError{Op: "access", Path: p, Err: syscall.EACCES}
		}
		return real(p)
	}
	_, err = Open(ctx, path)
	writable = real
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "reindex --verify") {
		t.Fatalf("Open of a read-only index: %v, want a permission error that says what reads it", err)
	}
	noSidecars()

	// A read-only -wal left by an earlier open (before this check): named.
	if err := os.WriteFile(path+"-wal", nil, 0o444); err != nil {
		t.Fatal(err)
	}
	writable = func(p string) error {
		if p == path+"-wal" {
			return &fs.PathError{Op: "access", Path: p, Err: syscall.EACCES}
		}
		return real(p)
	}
	_, err = Open(ctx, path)
	writable = real
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), path+"-wal is not writable") {
		t.Fatalf("Open beside a read-only -wal: %v, want a permission error naming it", err)
	}
	if err := os.Remove(path + "-wal"); err != nil {
		t.Fatal(err)
	}

	if os.Getuid() != 0 { // the kernel says no too
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, path); !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("Open of a 0444 index: %v, want a permission error", err)
		}
		noSidecars()
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, path); err != nil {
		t.Fatalf("Open once writable again: %v", err)
	}
	s.Close()
}

// TestOpenRefusesAnotherProgramsDatabase: an index path naming another
// program's SQLite database (a Codex home's state_5.sqlite, given as
// -index by mistake) is refused with ErrNotIndex by Open, OpenReadOnly and
// SetFileMode, and the file is left byte for byte as it was, its mode and
// journal mode too. Before, Open switched it to WAL and added goose's
// version table to it, then failed on a table of the same name as one of
// spool's ("partial migration error ... table threads already exists"),
// and reindex --full could not tell it from an index of its own.
func TestOpenRefusesAnotherProgramsDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state_5.sqlite")
	db, err := sqlx.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE threads (id TEXT PRIMARY KEY, rollout_path TEXT NOT NULL)`,
		`CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY)`,
		`INSERT INTO threads VALUES ('t', '/home/me/.codex/sessions/x.jsonl')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrNotIndex) || !strings.Contains(err.Error(), "threads") {
			t.Fatalf("%s: err = %v, want ErrNotIndex naming its tables", what, err)
		}
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnmigratable) {
			t.Fatalf("%s: err = %v: reindex --full would move the file aside", what, err)
		}
		after, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		fi, serr := os.Stat(path)
		if serr != nil {
			t.Fatal(serr)
		}
		if string(after) != string(before) || fi.Mode().Perm() != 0o644 {
			t.Fatalf("%s changed the other program's database (mode %v)", what, fi.Mode().Perm())
		}
		for _, suffix := range []string{"-wal", "-shm"} {
			if _, err := os.Stat(path + suffix); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s left %s%s (%v)", what, path, suffix, err)
			}
		}
	}
	s, err := Open(ctx, path)
	if err == nil {
		s.Close()
	}
	check("Open", err)
	s, err = OpenReadOnly(ctx, path)
	if err == nil {
		s.Close()
	}
	check("OpenReadOnly", err)
	check("SetFileMode", SetFileMode(path, 0o600))

	// An empty file is still an index to create.
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, empty); err != nil {
		t.Fatalf("Open of an empty file: %v", err)
	} else if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenReadOnlyEmptyFileIsNoIndex: an index file that holds no table
// (empty, as a reindex on a full disk leaves the file it created before
// its first write failed) is no index to read: OpenReadOnly says so with
// fs.ErrNotExist, so that reindex --verify and doctor say how to build
// one. Before, they failed with "read schema version: SQL logic error:
// no such table: goose_db_version".
func TestOpenReadOnlyEmptyFileIsNoIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenReadOnly(t.Context(), path)
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReadOnly of an empty file: %v, want an error wrapping fs.ErrNotExist", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "empty") || strings.Contains(msg, "does not exist") {
		t.Fatalf("OpenReadOnly of an empty file: %q, want it to say the file is empty, not missing", msg)
	}
}
