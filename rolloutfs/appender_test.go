package rolloutfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
)

func TestSyncPolicyNames(t *testing.T) {
	tests := []struct {
		name string
		want rolloutfs.SyncPolicy
	}{
		{"always", rolloutfs.SyncAlways},
		{"batch", rolloutfs.SyncBatch},
		{"none", rolloutfs.SyncNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rolloutfs.ParseSyncPolicy(tt.name)
			if err != nil {
				t.Fatalf("ParseSyncPolicy(%q): %v", tt.name, err)
			}
			if got != tt.want {
				t.Fatalf("ParseSyncPolicy(%q) = %v, want %v", tt.name, got, tt.want)
			}
			if got, want := tt.want.String(), tt.name; got != want {
				t.Fatalf("String() = %q, want %q", got, want)
			}
			if got, want := tt.want.Durable(), tt.want != rolloutfs.SyncNone; got != want {
				t.Fatalf("Durable() = %v, want %v", got, want)
			}
		})
	}
	for _, bad := range []string{"sometimes", "", "Always"} {
		if _, err := rolloutfs.ParseSyncPolicy(bad); err == nil {
			t.Errorf("ParseSyncPolicy(%q) succeeded", bad)
		}
	}
	if got, want := rolloutfs.SyncPolicy(7).String(), "SyncPolicy(7)"; got != want {
		t.Errorf("SyncPolicy(7).String() = %q, want %q", got, want)
	}
}

// openAppender opens name in l, created with content, and closes it at
// the end of the test.
func openAppender(t *testing.T, l rolloutfs.Local, name string, content []byte, opts rolloutfs.AppenderOptions) *rolloutfs.Appender {
	t.Helper()
	put(t, l.Root, name, content)
	a, err := rolloutfs.OpenAppender(t.Context(), l, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func TestOpenAppender(t *testing.T) {
	l := newLocal(t)
	a := openAppender(t, l, "r.jsonl", []byte("{\"type\":\"a\"}\n{\"type\":\"b\"}\n"), rolloutfs.AppenderOptions{Policy: rolloutfs.SyncAlways})
	if got, want := a.Size(), int64(26); got != want {
		t.Fatalf("Size = %d, want %d", got, want)
	}
	offsets, err := a.Append(t.Context(), [][]byte{[]byte("{\"type\":\"d\"}\n"), []byte("{\"type\":\"e\"}\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(offsets) != 2 || offsets[0] != 26 || offsets[1] != 39 || a.Size() != 52 {
		t.Fatalf("offsets = %v, size %d; want [26 39], 52", offsets, a.Size())
	}
	if got, want := string(get(t, l.Root, "r.jsonl")), "{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":\"d\"}\n{\"type\":\"e\"}\n"; got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if offsets, err := a.Append(t.Context(), nil); err != nil || offsets != nil {
		t.Fatalf("Append of no lines = %v, %v; want nil, nil", offsets, err)
	}
	if _, err := rolloutfs.OpenAppender(t.Context(), l, "missing.jsonl", rolloutfs.AppenderOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenAppender of a missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestAppenderHolds: an Appender tells a Stat of its own file from one of
// a file renamed over its name (whose appends it would lose), and a
// released Appender, which reopens the name, holds any.
func TestAppenderHolds(t *testing.T) {
	ctx := t.Context()
	l := newLocal(t)
	line := []byte("{\"type\":\"a\"}\n")
	a := openAppender(t, l, "r.jsonl", line, rolloutfs.AppenderOptions{})
	own, err := l.Stat(ctx, "r.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Holds(own) {
		t.Fatal("Holds(own file) = false")
	}
	put(t, l.Root, "r.jsonl.new", line)
	if err := os.Rename(filepath.Join(l.Root, "r.jsonl.new"), filepath.Join(l.Root, "r.jsonl")); err != nil {
		t.Fatal(err)
	}
	other, err := l.Stat(ctx, "r.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if a.Holds(other) {
		t.Fatal("Holds(a file renamed over its name) = true")
	}
	if !a.Release() {
		t.Fatal("Release of an idle appender = false")
	}
	if !a.Holds(other) {
		t.Fatal("Holds after Release = false: a released appender reopens the name")
	}
	if _, err := a.Append(ctx, [][]byte{line}); err != nil {
		t.Fatal(err)
	}
	if got, want := string(get(t, l.Root, "r.jsonl")), string(line)+string(line); got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if !a.Holds(other) {
		t.Fatal("Holds(the file it reopened) = false")
	}
}

// TestOpenAppenderAfterCut is the sequence a writer follows on a file a
// crash left torn: cut the tail, then append after the last whole line.
func TestOpenAppenderAfterCut(t *testing.T) {
	l := newLocal(t)
	put(t, l.Root, "r.jsonl", []byte("{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":\"c"))
	cut, err := l.CutTornTail(t.Context(), "r.jsonl", "r.jsonl.torn")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cut, (rolloutfs.Cut{Offset: 26, Length: 10}); got != want {
		t.Fatalf("Cut = %+v, want %+v", got, want)
	}
	a, err := rolloutfs.OpenAppender(t.Context(), l, "r.jsonl", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if got, want := a.Size(), int64(26); got != want {
		t.Fatalf("Size = %d, want %d", got, want)
	}
	if _, err := a.Append(t.Context(), [][]byte{[]byte("{\"type\":\"d\"}\n")}); err != nil {
		t.Fatal(err)
	}
	if got, want := string(get(t, l.Root, "r.jsonl")), "{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":\"d\"}\n"; got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if got, want := string(get(t, l.Root, "r.jsonl.torn")), "{\"type\":\"c"; got != want {
		t.Fatalf("side file = %q, want %q", got, want)
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
		{"bare newline then line", [][]byte{[]byte("\n{\"type\":\"a\"}\n")}},
		{"bad second line", [][]byte{good, []byte("{\"type\":\"b\"}\n\n")}},
		{"bad last of three", [][]byte{good, good, []byte("{")}},
	}
	for _, tt := range tests {
		for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncBatch, rolloutfs.SyncNone} {
			t.Run(tt.name+"/"+policy.String(), func(t *testing.T) {
				l := newLocal(t)
				a := openAppender(t, l, "r.jsonl", good, rolloutfs.AppenderOptions{Policy: policy})
				if _, err := a.Append(t.Context(), tt.lines); !errors.Is(err, rolloutfs.ErrNotLine) {
					t.Fatalf("Append error = %v, want ErrNotLine", err)
				}
				if got := get(t, l.Root, "r.jsonl"); !bytes.Equal(got, good) {
					t.Fatalf("file changed to %q", got)
				}
				if got, want := a.Size(), int64(len(good)); got != want {
					t.Fatalf("Size = %d, want %d", got, want)
				}
				// A refused call does not poison the appender.
				if _, err := a.Append(t.Context(), [][]byte{good}); err != nil {
					t.Fatalf("Append after a refused one: %v", err)
				}
			})
		}
	}
}

func TestAppendAfterClose(t *testing.T) {
	l := newLocal(t)
	a := openAppender(t, l, "r.jsonl", nil, rolloutfs.AppenderOptions{Policy: rolloutfs.SyncAlways})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Append(t.Context(), [][]byte{[]byte("{\"type\":\"a\"}\n")}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Append after Close: %v, want os.ErrClosed", err)
	}
	if got := get(t, l.Root, "r.jsonl"); len(got) != 0 {
		t.Fatalf("file = %q, want it empty", got)
	}
}

func TestAppendCancelled(t *testing.T) {
	l := newLocal(t)
	a := openAppender(t, l, "r.jsonl", nil, rolloutfs.AppenderOptions{Policy: rolloutfs.SyncAlways})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := a.Append(ctx, [][]byte{[]byte("{\"type\":\"a\"}\n")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v, want context.Canceled", err)
	}
	if got := get(t, l.Root, "r.jsonl"); len(got) != 0 {
		t.Fatalf("file = %q, want it empty", got)
	}
}

func TestAppendConcurrent(t *testing.T) {
	const (
		files      = 6
		perFile    = 6 // goroutines per file
		perWriter  = 20
		batchEvery = 5 // every 5th append writes 3 lines at once
	)
	group := rolloutfs.NewGroupSyncer()
	t.Cleanup(func() { group.Close() })
	tests := []struct {
		name string
		opts rolloutfs.AppenderOptions
	}{
		{"batch shared syncer", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncBatch, Group: group}},
		{"batch without syncer", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncBatch}},
		{"always", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncAlways}},
		{"none", rolloutfs.AppenderOptions{Policy: rolloutfs.SyncNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLocal(t)
			appenders := make([]*rolloutfs.Appender, files)
			for i := range appenders {
				appenders[i] = openAppender(t, l, fmt.Sprintf("f%d.jsonl", i), nil, tt.opts)
			}
			type written struct {
				offset int64
				line   string
			}
			var mu sync.Mutex
			acked := make(map[int][]written) // guarded by mu: file -> lines acknowledged
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
								lines[k] = fmt.Appendf(nil, `{"type":"event_msg","payload":{"writer":%d,"seq":%d,"part":%d,"pad":%q}}`+"\n",
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
			want := perFile * (perWriter + 2*((perWriter+batchEvery-1)/batchEvery))
			for fi, a := range appenders {
				if err := a.Close(); err != nil {
					t.Fatal(err)
				}
				data := get(t, l.Root, fmt.Sprintf("f%d.jsonl", fi))
				if got := len(acked[fi]); got != want {
					t.Fatalf("file %d: %d acknowledged lines, want %d", fi, got, want)
				}
				// Every acknowledged line is where its offset says, the
				// lines tile the file with no gap or overlap, and the file
				// is nothing but them.
				covered := make([]bool, len(data))
				for _, wl := range acked[fi] {
					end := wl.offset + int64(len(wl.line))
					if end > int64(len(data)) || string(data[wl.offset:end]) != wl.line {
						t.Fatalf("file %d: line acknowledged at offset %d is not there whole", fi, wl.offset)
					}
					for i := wl.offset; i < end; i++ {
						if covered[i] {
							t.Fatalf("file %d: byte %d acknowledged twice", fi, i)
						}
						covered[i] = true
					}
				}
				for i, c := range covered {
					if !c {
						t.Fatalf("file %d: byte %d belongs to no acknowledged line", fi, i)
					}
				}
				if got := bytes.Count(data, []byte("\n")); got != want {
					t.Fatalf("file %d: %d lines, want %d", fi, got, want)
				}
				if got, want := a.Size(), int64(len(data)); got != want {
					t.Fatalf("file %d: Size = %d, file has %d bytes", fi, got, want)
				}
			}
		})
	}
}

// TestBeginWait checks the two halves of an append under each policy: Begin
// writes and returns the offsets; under batch the Appender keeps its file
// until Wait (Release refuses), and after Wait the lines are acknowledged;
// a second Wait returns the first's result.
func TestBeginWait(t *testing.T) {
	for _, tt := range []struct {
		policy      rolloutfs.SyncPolicy
		heldOnBegin bool // Release refuses between Begin and Wait
	}{
		{rolloutfs.SyncAlways, false},
		{rolloutfs.SyncBatch, true},
		{rolloutfs.SyncNone, false},
	} {
		t.Run(tt.policy.String(), func(t *testing.T) {
			g := rolloutfs.NewGroupSyncer()
			t.Cleanup(func() { g.Close() })
			l := rolloutfs.Local{Root: t.TempDir()}
			a := openAppender(t, l, "r.jsonl", []byte("{}\n"), rolloutfs.AppenderOptions{Policy: tt.policy, Group: g})
			p, err := a.Begin(t.Context(), [][]byte{[]byte("{\"a\":1}\n"), []byte("{\"b\":2}\n")})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprint(p.Offsets), "[3 11]"; got != want {
				t.Fatalf("offsets = %s, want %s", got, want)
			}
			if got, want := a.Release(), !tt.heldOnBegin; got != want {
				t.Fatalf("Release before Wait = %v, want %v", got, want)
			}
			if err := p.Wait(); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if err := p.Wait(); err != nil {
				t.Fatalf("second Wait: %v, want the first's result", err)
			}
			if got, want := a.Size(), int64(19); got != want {
				t.Fatalf("size = %d, want %d", got, want)
			}
			if !tt.heldOnBegin {
				return
			}
			if !a.Release() {
				t.Fatal("Release after Wait refused")
			}
		})
	}
}

// TestUndo: Undo cuts an append's lines from the file again, and the
// next append lands where they started; when someone else has appended
// after them it cuts nothing and fails with ErrFileChanged.
func TestUndo(t *testing.T) {
	for _, tt := range []struct {
		name    string
		other   string // appended by someone else after the lines
		wantErr error
		want    string // the file after Undo
	}{
		{name: "last append", want: "{}\n"},
		{name: "someone appended after it", other: "{\"c\":3}\n", wantErr: rolloutfs.ErrFileChanged, want: "{}\n{\"a\":1}\n{\"c\":3}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := rolloutfs.Local{Root: t.TempDir()}
			a := openAppender(t, l, "r.jsonl", []byte("{}\n"), rolloutfs.AppenderOptions{Policy: rolloutfs.SyncAlways})
			p, err := a.Begin(t.Context(), [][]byte{[]byte("{\"a\":1}\n")})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(l.Root, "r.jsonl")
			if tt.other != "" {
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.WriteString(tt.other)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Undo(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Undo: %v, want %v", err, tt.wantErr)
			}
			if got, err := os.ReadFile(path); err != nil || string(got) != tt.want {
				t.Fatalf("file after Undo: %q (%v), want %q", got, err, tt.want)
			}
			if tt.wantErr != nil {
				return
			}
			offsets, err := a.Append(t.Context(), [][]byte{[]byte("{\"b\":2}\n")})
			if err != nil || fmt.Sprint(offsets) != "[3]" {
				t.Fatalf("append after Undo: offsets %v (%v), want [3]", offsets, err)
			}
		})
	}
}
