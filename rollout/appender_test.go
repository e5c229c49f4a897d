package rollout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSyncPolicyNames(t *testing.T) {
	for _, p := range []SyncPolicy{SyncAlways, SyncBatch, SyncNone} {
		got, err := ParseSyncPolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParseSyncPolicy(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	if _, err := ParseSyncPolicy("sometimes"); err == nil {
		t.Error("ParseSyncPolicy accepted \"sometimes\"")
	}
}

func TestCutTornTail(t *testing.T) {
	bigTorn := `{"type":"x","data":"` + strings.Repeat("A", 3*cutChunk)
	tests := []struct {
		name     string
		content  string
		wantKeep string
		wantCut  string // "" means no TornTail
	}{
		{"empty", "", "", ""},
		{"clean", "{\"type\":\"a\"}\n", "{\"type\":\"a\"}\n", ""},
		{"torn", "{\"type\":\"a\"}\n{\"ty", "{\"type\":\"a\"}\n", "{\"ty"},
		{"no newline at all", "{\"ty", "", "{\"ty"},
		{"big torn tail", "{\"type\":\"a\"}\n" + bigTorn, "{\"type\":\"a\"}\n", bigTorn},
		{"blank torn tail", "{\"type\":\"a\"}\n  ", "{\"type\":\"a\"}\n", "  "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "r.jsonl", []byte(tt.content))
			torn, err := CutTornTail(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantCut == "" {
				if torn != nil {
					t.Fatalf("TornTail = %+v, want nil", torn)
				}
			} else if torn == nil || torn.Offset != int64(len(tt.wantKeep)) || string(torn.Data) != tt.wantCut {
				t.Fatalf("TornTail = %+v, want offset %d and %d bytes", torn, len(tt.wantKeep), len(tt.wantCut))
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.wantKeep {
				t.Fatalf("file after cut = %q, want %q", got, tt.wantKeep)
			}
		})
	}
	if _, err := CutTornTail(t.Context(), filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("CutTornTail of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestOpenAppenderCutsTornTail(t *testing.T) {
	path := writeTemp(t, "r.jsonl", []byte("{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":\"c"))
	a, torn, err := OpenAppender(t.Context(), path, AppenderOptions{Policy: SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if torn == nil || torn.Offset != 26 || string(torn.Data) != `{"type":"c` {
		t.Fatalf("TornTail = %+v, want offset 26 and {\"type\":\"c", torn)
	}
	if a.Size() != 26 {
		t.Fatalf("Size = %d, want 26", a.Size())
	}
	offsets, err := a.Append(t.Context(), [][]byte{[]byte("{\"type\":\"d\"}\n"), []byte("{\"type\":\"e\"}\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(offsets) != 2 || offsets[0] != 26 || offsets[1] != 39 || a.Size() != 52 {
		t.Fatalf("offsets = %v, size %d; want [26 39], 52", offsets, a.Size())
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":\"d\"}\n{\"type\":\"e\"}\n"; string(got) != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if _, _, err := OpenAppender(t.Context(), filepath.Join(t.TempDir(), "missing"), AppenderOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenAppender of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestAppendRejects(t *testing.T) {
	good := []byte("{\"type\":\"ok\"}\n")
	tests := []struct {
		name  string
		lines [][]byte
	}{
		{"no trailing newline", [][]byte{[]byte(`{"type":"a"}`)}},
		{"inner newline", [][]byte{[]byte("{\"type\":\n\"a\"}\n")}},
		{"empty line", [][]byte{{}}},
		{"bad second line", [][]byte{good, []byte("{\"type\":\"b\"}\n\n")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "r.jsonl", good)
			a, _, err := OpenAppender(t.Context(), path, AppenderOptions{Policy: SyncNone})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if _, err := a.Append(t.Context(), tt.lines); !errors.Is(err, ErrRawNewline) {
				t.Fatalf("Append error = %v, want ErrRawNewline", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, good) || a.Size() != int64(len(good)) {
				t.Fatalf("file changed to %q (size %d)", got, a.Size())
			}
		})
	}
}

func TestAppendAfterClose(t *testing.T) {
	path := writeTemp(t, "r.jsonl", nil)
	a, _, err := OpenAppender(t.Context(), path, AppenderOptions{Policy: SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Append(t.Context(), [][]byte{[]byte("{\"type\":\"a\"}\n")}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Append after Close: %v, want os.ErrClosed", err)
	}
}

func TestAppendConcurrent(t *testing.T) {
	const (
		files      = 8
		perFile    = 8 // goroutines per file
		perWriter  = 25
		batchEvery = 5 // every 5th append writes 3 lines at once
	)
	group := NewGroupSyncer()
	t.Cleanup(func() { group.Close() })
	tests := []struct {
		name string
		opts AppenderOptions
	}{
		{"batch shared syncer", AppenderOptions{Policy: SyncBatch, Group: group}},
		{"batch without syncer", AppenderOptions{Policy: SyncBatch}},
		{"always", AppenderOptions{Policy: SyncAlways}},
		{"none", AppenderOptions{Policy: SyncNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			appenders := make([]*Appender, files)
			for i := range appenders {
				path := filepath.Join(dir, fmt.Sprintf("f%d.jsonl", i))
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				a, _, err := OpenAppender(t.Context(), path, tt.opts)
				if err != nil {
					t.Fatal(err)
				}
				appenders[i] = a
			}
			type written struct {
				offset int64
				line   string
			}
			var mu sync.Mutex
			acked := make(map[int][]written) // file -> lines acknowledged
			var wg sync.WaitGroup
			errs := make(chan error, files*perFile)
			for fi := range appenders {
				for w := range perFile {
					wg.Go(func() {
						for seq := range perWriter {
							n := 1
							if seq%batchEvery == 0 {
								n = 3
							}
							lines := make([][]byte, n)
							for k := range lines {
								lines[k] = fmt.Appendf(nil, `{"type":"event_msg","payload":{"type":"test","writer":%d,"seq":%d,"part":%d,"pad":%q}}`+"\n",
									w, seq, k, strings.Repeat("x", (w*seq+k)%200))
							}
							offsets, err := appenders[fi].Append(t.Context(), lines)
							if err != nil {
								errs <- err
								return
							}
							mu.Lock()
							for k, off := range offsets {
								acked[fi] = append(acked[fi], written{off, string(lines[k])})
							}
							mu.Unlock()
						}
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for fi, a := range appenders {
				if err := a.Close(); err != nil {
					t.Fatal(err)
				}
				data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("f%d.jsonl", fi)))
				if err != nil {
					t.Fatal(err)
				}
				want := perFile * (perWriter + 2*((perWriter+batchEvery-1)/batchEvery))
				if len(acked[fi]) != want {
					t.Fatalf("file %d: %d acknowledged lines, want %d", fi, len(acked[fi]), want)
				}
				seen := make(map[string]bool)
				var total int
				for _, wl := range acked[fi] {
					end := wl.offset + int64(len(wl.line))
					if end > int64(len(data)) || string(data[wl.offset:end]) != wl.line {
						t.Fatalf("file %d: line acknowledged at offset %d is not there whole", fi, wl.offset)
					}
					if seen[wl.line] {
						t.Fatalf("file %d: line %q acknowledged twice", fi, wl.line)
					}
					seen[wl.line] = true
					total += len(wl.line)
				}
				if total != len(data) {
					t.Fatalf("file %d: %d bytes, acknowledged lines make %d", fi, len(data), total)
				}
				r := NewReader(bytes.NewReader(data), 0, 0)
				count := 0
				for r.Next() {
					if r.Line().Err != nil {
						t.Fatalf("file %d: %v", fi, r.Line().Err)
					}
					count++
				}
				if _, torn := r.Torn(); count != want || torn != 0 {
					t.Fatalf("file %d: read %d lines (torn %d), want %d", fi, count, torn, want)
				}
			}
		})
	}
}

func TestGroupSyncer(t *testing.T) {
	dir := t.TempDir()
	var files []*os.File
	for i := range 3 {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("g%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if _, err := f.WriteString("x\n"); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	g := NewGroupSyncer()
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Go(func() { errs <- g.Sync(t.Context(), files[i%len(files)]) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
	// A batch of several files on one filesystem and a batch of one file.
	for _, batch := range [][]*os.File{files, files[:1]} {
		reqs := make([]syncRequest, 0, len(batch))
		for _, f := range batch {
			reqs = append(reqs, syncRequest{f: f, result: make(chan error, 1)})
		}
		syncBatch(reqs)
		for _, r := range reqs {
			if err := <-r.result; err != nil {
				t.Fatalf("syncBatch of %d files: %v", len(batch), err)
			}
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.done:
	default:
		t.Fatal("GroupSyncer goroutine still running after Close")
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := g.Sync(t.Context(), files[0]); err != nil {
		t.Fatalf("Sync after Close: %v", err)
	}
	closed, err := os.Create(filepath.Join(dir, "closed"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if err := g.Sync(t.Context(), closed); err == nil {
		t.Fatal("Sync of a closed file succeeded")
	}
}

func TestCreateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sessions", "2026", "04", "20", "r.jsonl")
	first := []byte("{\"type\":\"session_meta\"}\n")
	f, err := CreateFile(path, first)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_APPEND != 0 {
		t.Fatal("CreateFile returned a file opened with O_APPEND")
	}
	src := writeTemp(t, "src", []byte("{\"type\":\"copied\"}\n"))
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := io.Copy(f, in); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"type\":\"session_meta\"}\n{\"type\":\"copied\"}\n"; string(got) != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if _, err := CreateFile(path, first); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second CreateFile: %v, want fs.ErrExist", err)
	}
	other := filepath.Join(dir, "other.jsonl")
	if _, err := CreateFile(other, []byte(`{"type":"x"}`)); !errors.Is(err, ErrRawNewline) {
		t.Fatalf("CreateFile without newline: %v, want ErrRawNewline", err)
	}
	if _, err := os.Stat(other); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("rejected CreateFile left a file: %v", err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing dir: %v, want fs.ErrNotExist", err)
	}
}
