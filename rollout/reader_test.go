package rollout

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/spoolhq/spool/internal/fixtures"
)

func TestReaderGolden(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(path, ".jsonl")+".golden", describe(t, data))
		})
	}
}

// reassemble rebuilds a stream from what a Reader reports: yielded lines
// plus their newline, blank lines from the gaps, and the torn tail.
func reassemble(t testing.TB, data []byte) []byte {
	t.Helper()
	r := NewReader(bytes.NewReader(data), 0, 0)
	var out []byte
	var next, newlines int64
	for r.Next() {
		l := r.Line()
		if l.Offset < next {
			t.Fatalf("line %d at offset %d overlaps the previous line ending at %d", l.Number, l.Offset, next)
		}
		gap := data[next:l.Offset]
		if !isBlankLines(gap) {
			t.Fatalf("skipped bytes %q before offset %d are not blank lines", gap, l.Offset)
		}
		newlines += int64(bytes.Count(gap, []byte{'\n'}))
		if l.Number != newlines {
			t.Fatalf("line number = %d, want %d (newlines before offset %d)", l.Number, newlines, l.Offset)
		}
		if bytes.IndexByte(l.Raw, '\n') >= 0 {
			t.Fatalf("line %d holds a newline", l.Number)
		}
		out = append(out, gap...)
		out = append(out, l.Raw...)
		out = append(out, '\n')
		next = l.End()
		newlines++
	}
	if err := r.Err(); err != nil {
		t.Fatalf("read: %v", err)
	}
	end, lines := r.End()
	if !isBlankLines(data[next:end]) {
		t.Fatalf("skipped bytes %q at the end are not blank lines", data[next:end])
	}
	out = append(out, data[next:end]...)
	if want := int64(bytes.Count(data[:end], []byte{'\n'})); lines != want {
		t.Fatalf("End lines = %d, want %d", lines, want)
	}
	tornOff, tornLen := r.Torn()
	if tornOff != end || tornOff+tornLen != int64(len(data)) {
		t.Fatalf("Torn = %d+%d, End = %d, input length %d", tornOff, tornLen, end, len(data))
	}
	return append(out, data[tornOff:]...)
}

// isBlankLines reports whether b is a run of complete blank lines.
func isBlankLines(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if b[len(b)-1] != '\n' {
		return false
	}
	for _, l := range bytes.Split(b[:len(b)-1], []byte{'\n'}) {
		if !isBlank(l) {
			return false
		}
	}
	return true
}

func TestReaderLossless(t *testing.T) {
	files := fixtureFiles(t)
	{
		err := filepath.WalkDir(fixtures.CodexHome(t), func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".jsonl") {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := reassemble(t, data); !bytes.Equal(got, data) {
				t.Fatalf("reassembled stream differs from the file (%d vs %d bytes)", len(got), len(data))
			}
			// Writing the complete lines back gives the file minus its torn tail.
			r := NewReader(bytes.NewReader(data), 0, 0)
			var complete []byte
			for r.Next() {
				complete = append(complete, r.Line().Raw...)
				complete = append(complete, '\n')
			}
			if want := removeBlankLines(data); !bytes.Equal(complete, want) {
				t.Fatalf("complete lines differ from the file's non-blank lines")
			}
		})
	}
}

// removeBlankLines returns data's complete non-blank lines.
func removeBlankLines(data []byte) []byte {
	var out []byte
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return out
		}
		if !isBlank(data[:i]) {
			out = append(out, data[:i+1]...)
		}
		data = data[i+1:]
	}
}

func TestReaderCases(t *testing.T) {
	long := `{"type":"response_item","payload":{"type":"image_generation_call","result":"` + strings.Repeat("QUJD", 300_000) + `"}}`
	tests := []struct {
		name      string
		input     string
		wantRaw   []string
		wantEnd   int64
		wantLines int64
		wantTorn  int64
	}{
		{"empty", "", nil, 0, 0, 0},
		{"only torn", `{"type":"x"}`, nil, 0, 0, 12},
		{"blank torn", "  ", nil, 0, 0, 2},
		{"blank lines", "\n \n\t\r\n", nil, 6, 3, 0},
		{"two lines", "{\"type\":\"a\"}\n{\"type\":\"b\"}\n", []string{`{"type":"a"}`, `{"type":"b"}`}, 26, 2, 0},
		{"crlf", "{\"type\":\"a\"}\r\n", []string{"{\"type\":\"a\"}\r"}, 14, 1, 0},
		{"long line", long + "\n{\"type\":\"b\"}\n", []string{long, `{"type":"b"}`}, int64(len(long)) + 14, 2, 0},
		{"long torn", "{\"type\":\"a\"}\n" + long, []string{`{"type":"a"}`}, 13, 1, int64(len(long))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// OneByteReader exercises the buffer refills.
			for _, src := range []io.Reader{strings.NewReader(tt.input), iotest.OneByteReader(strings.NewReader(tt.input))} {
				r := NewReader(src, 0, 0)
				var got []string
				for r.Next() {
					got = append(got, string(r.Line().Raw))
				}
				if err := r.Err(); err != nil {
					t.Fatalf("Err = %v", err)
				}
				if len(got) != len(tt.wantRaw) {
					t.Fatalf("got %d lines, want %d", len(got), len(tt.wantRaw))
				}
				for i := range got {
					if got[i] != tt.wantRaw[i] {
						t.Errorf("line %d differs (len %d vs %d)", i, len(got[i]), len(tt.wantRaw[i]))
					}
				}
				end, lines := r.End()
				if end != tt.wantEnd || lines != tt.wantLines {
					t.Errorf("End = %d, %d; want %d, %d", end, lines, tt.wantEnd, tt.wantLines)
				}
				if off, n := r.Torn(); off != tt.wantEnd || n != tt.wantTorn {
					t.Errorf("Torn = %d+%d; want %d+%d", off, n, tt.wantEnd, tt.wantTorn)
				}
			}
		})
	}
}

func TestReaderResume(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testdataDir, "mixed.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	full := NewReader(bytes.NewReader(data), 0, 0)
	var want []Line
	for full.Next() {
		l := *full.Line()
		l.Raw = bytes.Clone(l.Raw)
		want = append(want, l)
	}
	for cut := 0; cut < len(want); cut++ {
		first := NewReader(bytes.NewReader(data[:want[cut].End()]), 0, 0)
		for first.Next() {
		}
		end, lines := first.End()
		second := NewReader(bytes.NewReader(data[end:]), end, lines)
		i := cut + 1
		for second.Next() {
			l := second.Line()
			if i >= len(want) {
				t.Fatalf("cut %d: resumed reader yields extra line at offset %d", cut, l.Offset)
			}
			if l.Offset != want[i].Offset || l.Number != want[i].Number || !bytes.Equal(l.Raw, want[i].Raw) {
				t.Fatalf("cut %d: resumed line = (%d, %d), want (%d, %d)", cut, l.Offset, l.Number, want[i].Offset, want[i].Number)
			}
			i++
		}
		if i != len(want) {
			t.Fatalf("cut %d: resumed reader stopped at line %d of %d", cut, i, len(want))
		}
	}
}

func TestReaderLineTooLong(t *testing.T) {
	input := "{\"type\":\"a\"}\n" + `{"type":"` + strings.Repeat("x", 100) + "\"}\n"
	r := NewReader(strings.NewReader(input), 0, 0)
	r.maxLine = 50
	r.br = bufioSmall(strings.NewReader(input))
	if !r.Next() {
		t.Fatalf("first line not read: %v", r.Err())
	}
	if r.Next() {
		t.Fatal("a line longer than the limit was yielded")
	}
	var tooLong *LineTooLongError
	if !errors.As(r.Err(), &tooLong) || tooLong.Offset != 13 {
		t.Fatalf("Err = %v, want *LineTooLongError at offset 13", r.Err())
	}
}

func TestReaderIOError(t *testing.T) {
	boom := errors.New("disk on fire")
	src := io.MultiReader(strings.NewReader("{\"type\":\"a\"}\n{\"ty"), iotest.ErrReader(boom))
	r := NewReader(src, 0, 0)
	n := 0
	for r.Next() {
		n++
	}
	if n != 1 || !errors.Is(r.Err(), boom) {
		t.Fatalf("read %d lines, Err = %v; want 1 line and %v", n, r.Err(), boom)
	}
}

func FuzzReader(f *testing.F) {
	for _, path := range fixtureFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("\n\n \r\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got := reassemble(t, data); !bytes.Equal(got, data) {
			t.Fatalf("reassembled stream differs from the input")
		}
	})
}

// bufioSmall returns the smallest bufio.Reader, so that short test lines
// take the long-line path.
func bufioSmall(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 16) }

func TestFirstLine(t *testing.T) {
	long := `{"type":"session_meta","payload":{"base_instructions":"` + strings.Repeat("x", 40<<10) + `"}}`
	tests := []struct {
		name     string
		data     string
		off      int64
		want     string
		wantOK   bool
		wantLine int64
	}{
		{name: "short", data: "{\"a\":1}\n{\"b\":2}\n", want: `{"a":1}`, wantOK: true},
		{name: "from an offset", data: "{\"a\":1}\n{\"b\":2}\n", off: 8, want: `{"b":2}`, wantOK: true},
		{name: "longer than one read", data: long + "\n{}\n", want: long, wantOK: true},
		{name: "blank lines first", data: "\n \n{\"a\":1}\n", want: `{"a":1}`, wantOK: true, wantLine: 2},
		{name: "torn", data: `{"a":1}`},
		{name: "empty", data: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := strings.NewReader(tt.data)
			line, ok, err := FirstLine(r, tt.off, int64(len(tt.data)))
			if err != nil || ok != tt.wantOK {
				t.Fatalf("FirstLine = %v, %v, want ok %v and no error", ok, err, tt.wantOK)
			}
			if !ok {
				return
			}
			if string(line.Raw) != tt.want || line.Number != tt.wantLine {
				t.Errorf("FirstLine = %.40q (line %d), want %.40q (line %d)", line.Raw, line.Number, tt.want, tt.wantLine)
			}
			if wantOff := tt.off + int64(strings.Index(tt.data[tt.off:], tt.want)); line.Offset != wantOff {
				t.Errorf("offset %d, want %d", line.Offset, wantOff)
			}
		})
	}
}
