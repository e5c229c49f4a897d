package rollout

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rolloutfs"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c", "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c", true},
		{"019DAB4F-6B3E-7C21-9A40-5D3E2F1A0B9C", "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c", true},
		{"", "", false},
		{"019dab4f6b3e7c219a405d3e2f1a0b9c", "", false},
		{"{019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c}", "", false},
		{"019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9g", "", false},
		{"019dab4f_6b3e-7c21-9a40-5d3e2f1a0b9c", "", false},
		{"../../../../../../../../../etc/passwd", "", false},
		{"/019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseID(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("ParseID = %q, %v; want %q (ok %v)", got, err, tt.want, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidID) {
				t.Fatalf("error %v does not wrap ErrInvalidID", err)
			}
		})
	}
}

func TestFileNames(t *testing.T) {
	const id = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
	created := time.Date(2026, 4, 20, 12, 15, 30, 999, time.FixedZone("CEST", 2*3600))
	name := FileName(created, id)
	if want := "rollout-2026-04-20T10-15-30-" + id + ".jsonl"; name != want {
		t.Fatalf("FileName = %q, want %q", name, want)
	}
	gotID, gotTime, err := ParseFileName(name)
	if err != nil || gotID != id || !gotTime.Equal(created.Truncate(time.Second)) {
		t.Fatalf("ParseFileName = %q, %v, %v", gotID, gotTime, err)
	}
	p, err := SessionPath(name)
	if want := "sessions/2026/04/20/" + name; err != nil || p != want {
		t.Fatalf("SessionPath = %q, %v; want %q", p, err, want)
	}
	if got, want := ArchivedPath(name), "archived_sessions/"+name; got != want {
		t.Fatalf("ArchivedPath = %q, want %q", got, want)
	}

	bad := []string{
		"",
		"rollout-2026-04-20T10-15-30-" + id + ".json",
		"rollout-2026-04-20T10-15-30-" + id,
		"x/rollout-2026-04-20T10-15-30-" + id + ".jsonl",
		`rollout-2026-04-20T10-15-30-019dab4f-6b3e-7c21-9a40-5d3e2f1a0b\c.jsonl`,
		"rollout-2026-04-20T10-15-30-../../../../../../../../../etc.jsonl",
		"rollout-2026-13-20T10-15-30-" + id + ".jsonl",
		"rollout-2026-04-20T10:15:30-" + id + ".jsonl",
		"rollout-2026-04-20T10-15-30_" + id + ".jsonl",
		"session-2026-04-20T10-15-30-" + id + ".jsonl",
		"rollout-2026-04-20T10-15-30-x" + id + ".jsonl",
	}
	for _, name := range bad {
		if _, _, err := ParseFileName(name); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseFileName(%q) error = %v, want ErrInvalidID", name, err)
		}
		if _, err := SessionPath(name); err == nil {
			t.Errorf("SessionPath(%q) succeeded", name)
		}
	}
}

// TestSessionIndex writes session_index.jsonl as the manager does (one
// encoded entry a record, through rolloutfs) and reads it back.
func TestSessionIndex(t *testing.T) {
	root := t.TempDir()
	ctx := t.Context()
	fsys := rolloutfs.Local{Root: root}
	readNames := func() map[string]NameEntry {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(root, SessionIndexFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		names, err := ReadNames(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	if names := readNames(); len(names) != 0 {
		t.Fatalf("ReadNames of a missing file = %v; want empty", names)
	}
	const a, b = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c", "67e55044-10b1-426f-9247-bb680e5fe0c8"
	entries := []NameEntry{
		{ID: a, ThreadName: "first", UpdatedAt: "2026-04-20T10:00:00Z"},
		{ID: "67E55044-10B1-426F-9247-BB680E5FE0C8", ThreadName: "other", UpdatedAt: "2026-04-20T10:01:00Z"},
		{ID: a, ThreadName: "renamed \"a\"\nwith newline", UpdatedAt: "2026-04-20T10:02:00Z"},
	}
	appendName := func(e NameEntry) error {
		line, err := EncodeNameEntry(e)
		if err != nil {
			return err
		}
		return fsys.AppendRecord(ctx, SessionIndexFile, line)
	}
	for _, e := range entries {
		if err := appendName(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := appendName(NameEntry{ID: "../x"}); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("EncodeNameEntry with a bad id: %v, want ErrInvalidID", err)
	}
	// A torn tail (crash mid-append) must not swallow the next entry.
	path := filepath.Join(root, SessionIndexFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"id":"` + b + `","thread_na`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := appendName(NameEntry{ID: b, ThreadName: "after crash", UpdatedAt: "2026-04-20T10:03:00Z"}); err != nil {
		t.Fatal(err)
	}

	names := readNames()
	want := map[string]NameEntry{
		a: entries[2],
		b: {ID: b, ThreadName: "after crash", UpdatedAt: "2026-04-20T10:03:00Z"},
	}
	if len(names) != len(want) {
		t.Fatalf("ReadNames = %+v, want %+v", names, want)
	}
	for id, e := range want {
		if names[id] != e {
			t.Errorf("name of %s = %+v, want %+v", id, names[id], e)
		}
	}
}

// TestReadNamesAsCodex: Codex 0.169 lists a legacy thread with the name
// of its last line in session_index.jsonl whose name is not blank, trimmed
// of white space. Lines an earlier Codex or spool wrote keep the white
// space they were given; spool showed it, Codex does not. An empty name is
// spool's clear (Codex never writes one) and still clears.
func TestReadNamesAsCodex(t *testing.T) {
	const id = "019dab80-5e6f-7a8b-9c0d-1e2f3a4b5c6d"
	line := func(name string) string {
		b, err := EncodeNameEntry(NameEntry{ID: id, ThreadName: name, UpdatedAt: "2026-04-20T12:06:00Z"})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"padded", []string{line("  repo layout\t")}, "repo layout"},
		{"no-break spaces", []string{line("\u00a0repo layout\u00a0")}, "repo layout"},
		{"inner white space stays", []string{line(" repo  layout ")}, "repo  layout"},
		{"blank after a name", []string{line("repo layout"), line("   ")}, "repo layout"},
		{"empty after a name clears", []string{line("repo layout"), line("")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, err := ReadNames(t.Context(), strings.NewReader(strings.Join(tt.lines, "")))
			if err != nil {
				t.Fatal(err)
			}
			if got := names[id].ThreadName; got != tt.want {
				t.Fatalf("name = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTwinName(t *testing.T) {
	const plain = "sessions/2026/11/27/rollout-2026-11-27T10-00-00-01a21400-0000-7000-8000-000000000001.jsonl"
	tests := []struct{ in, want string }{
		{plain, plain + ".zst"},
		{plain + ".zst", plain},
		{"rollout-x.jsonl", "rollout-x.jsonl.zst"},
	}
	for _, tt := range tests {
		if got := TwinName(tt.in); got != tt.want {
			t.Errorf("TwinName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := TwinName(TwinName(tt.in)); got != tt.in {
			t.Errorf("TwinName(TwinName(%q)) = %q, want it back", tt.in, got)
		}
	}
}
