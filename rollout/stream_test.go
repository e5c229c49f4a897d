package rollout_test

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/spoolhq/spool/rollout"
)

func TestSelfContained(t *testing.T) {
	const base = "{\"b\":0}\n{\"b\":1}\n"
	tests := []struct {
		name    string
		history string
		want    string
		err     error
	}{
		{"meta first, then ancestors, base and the rest", base + "{\"own meta\":1}\n{\"own\":2}\n",
			"{\"meta\":1}\n{\"ancestor\":1}\n" + base + "{\"own\":2}\n", nil},
		{"only the meta of its own", base + "{\"own meta\":1}\n", "{\"meta\":1}\n{\"ancestor\":1}\n" + base, nil},
		{"history shorter than its base", base[:5], "", io.ErrUnexpectedEOF},
		{"own part without a complete line", base + "{\"own", "", io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rollout.SelfContained(iotest.HalfReader(strings.NewReader(tc.history)), int64(len(base)),
				[]byte("{\"meta\":1}\n"), []byte("{\"ancestor\":1}\n"))
			got, err := io.ReadAll(r)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err == nil && string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRenumbered: lines are numbered from first across sources, every
// other byte kept; a line Renumber refuses is copied as it is and takes no
// ordinal; a line longer than the read buffer is renumbered whole; a
// source that ends inside a line is an error. Read and WriteTo agree.
func TestRenumbered(t *testing.T) {
	long := strings.Repeat("x", 600<<10)
	tests := []struct {
		name    string
		first   int64
		sources []string
		want    string
		err     error
	}{
		{"numbered from 0", 0,
			[]string{`{"timestamp":"t","ordinal":7,"type":"a"}` + "\n" + `{"timestamp":"t","ordinal":3,"type":"b","p":{"ordinal":1}}` + "\n" + `{"timestamp":"t","type":"c"}` + "\n"},
			`{"timestamp":"t","ordinal":0,"type":"a"}` + "\n" + `{"timestamp":"t","ordinal":1,"type":"b","p":{"ordinal":1}}` + "\n" + `{"timestamp":"t","ordinal":2,"type":"c"}` + "\n", nil},
		{"numbered from first across sources", 5,
			[]string{`{"timestamp":"t","ordinal":0,"type":"a"}` + "\n", "", `{"timestamp":"t","ordinal":1,"type":"b"}` + "\n"},
			`{"timestamp":"t","ordinal":5,"type":"a"}` + "\n" + `{"timestamp":"t","ordinal":6,"type":"b"}` + "\n", nil},
		{"lines it does not understand copied without an ordinal", 1,
			[]string{"\nnot json\n[1]\n" + `{"timestamp":"t","ordinal":-1,"type":"a"}` + "\n" + `{"timestamp":"t","ordinal":9,"type":"b"}` + "\n"},
			"\nnot json\n[1]\n" + `{"timestamp":"t","ordinal":-1,"type":"a"}` + "\n" + `{"timestamp":"t","ordinal":1,"type":"b"}` + "\n", nil},
		{"a line longer than the buffer", 2,
			[]string{`{"timestamp":"t","ordinal":0,"type":"a","p":"` + long + `"}` + "\n"},
			`{"timestamp":"t","ordinal":2,"type":"a","p":"` + long + `"}` + "\n", nil},
		{"no sources", 0, nil, "", nil},
		{"the last source ends inside a line", 0,
			[]string{`{"timestamp":"t","ordinal":0,"type":"a"}` + "\n" + `{"timestamp":"t","type":"c"}`}, "", io.ErrUnexpectedEOF},
		{"a source ends inside a line the next goes on with", 0,
			[]string{`{"timestamp":"t",`, `"ordinal":0,"type":"a"}` + "\n"}, "", io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sources := func() []io.Reader {
				var rs []io.Reader
				for _, s := range tc.sources {
					rs = append(rs, iotest.HalfReader(strings.NewReader(s)))
				}
				return rs
			}
			read, err := io.ReadAll(iotest.OneByteReader(rollout.Renumbered(tc.first, sources()...)))
			if !errors.Is(err, tc.err) {
				t.Fatalf("Read: err = %v, want %v", err, tc.err)
			}
			var written strings.Builder
			if _, err := io.Copy(&written, rollout.Renumbered(tc.first, sources()...)); !errors.Is(err, tc.err) {
				t.Fatalf("WriteTo: err = %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			if string(read) != tc.want {
				t.Errorf("Read gave %.200q, want %.200q", read, tc.want)
			}
			if written.String() != tc.want {
				t.Errorf("WriteTo gave %.200q, want %.200q", written.String(), tc.want)
			}
		})
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	r := bufio.NewReaderSize(strings.NewReader(long+"\nshort\nlast"), 16)
	var lines []string
	var buf []byte
	for {
		var err error
		buf, err = rollout.ReadLine(buf[:0], r)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(buf))
	}
	if len(lines) != 3 || lines[0] != long+"\n" || lines[1] != "short\n" || lines[2] != "last" {
		t.Fatalf("lines %q", lines)
	}
}

func TestCountLines(t *testing.T) {
	long := strings.Repeat("x", 300<<10) + "\n" // past one read
	tests := []struct {
		name    string
		sources []string
		want    int64
	}{
		{"none", nil, 0},
		{"empty", []string{""}, 0},
		{"two sources", []string{"a\nb\n", "c\n"}, 3},
		{"blank lines count", []string{"\n\n"}, 2},
		{"long lines", []string{long, long + "y\n"}, 3},
	}
	for _, tt := range tests {
		var rs []io.Reader
		for _, s := range tt.sources {
			rs = append(rs, strings.NewReader(s))
		}
		if got, err := rollout.CountLines(rs...); err != nil || got != tt.want {
			t.Errorf("%s: CountLines = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	if _, err := rollout.CountLines(iotest.ErrReader(io.ErrUnexpectedEOF)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a failing source: err = %v, want its error", err)
	}
}
