package storetest_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/store"
)

// TestWriteIsANewIndex: the copy Write makes holds the schema, and only
// the rows, that migrating a new index gives.
func TestWriteIsANewIndex(t *testing.T) {
	dir := t.TempDir()
	migrated := filepath.Join(dir, "migrated.db")
	st, err := store.Open(t.Context(), migrated)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(dir, "copied.db")
	storetest.Write(t, copied)
	if fi, err := os.Stat(copied); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the copy: %v, %v; want a file of mode 0600", fi, err)
	}
	st, err = store.Open(t.Context(), copied)
	if err != nil {
		t.Fatal(err)
	}
	if mig := st.Migrated(); mig.From != mig.To {
		t.Errorf("opening the copy migrated it from %d to %d", mig.From, mig.To)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	want, got := contents(t, migrated), contents(t, copied)
	if !slices.Equal(got, want) {
		t.Fatalf("the copy holds\n%q\nwant what a new index holds\n%q", got, want)
	}
}

// contents lists the schema of the index at path and the number of rows
// of each of its tables.
func contents(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	var out, tables []string
	for rows.Next() {
		var typ, name, def string
		if err := rows.Scan(&typ, &name, &def); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ+" "+name+": "+def)
		if typ == "table" {
			tables = append(tables, name)
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range tables {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+name+`"`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, name+" rows: "+strconv.Itoa(n))
	}
	return out
}

// TestWriteLeavesWhatIsThere: Write changes nothing where a file is, and
// makes no folder.
func TestWriteLeavesWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	there := filepath.Join(dir, "spool.db")
	if err := os.WriteFile(there, []byte("not an index"), 0o600); err != nil {
		t.Fatal(err)
	}
	storetest.Write(t, there)
	if b, err := os.ReadFile(there); err != nil || string(b) != "not an index" {
		t.Fatalf("the file there: %q, %v; want it unchanged", b, err)
	}
	missing := filepath.Join(dir, "missing", "spool.db")
	storetest.Write(t, missing)
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Fatalf("Write made the folder %s: %v", filepath.Dir(missing), err)
	}
}
