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

func TestRenumbered(t *testing.T) {
	in := `{"timestamp":"t","ordinal":7,"type":"a"}` + "\n" + `{"timestamp":"t","ordinal":3,"type":"b"}` + "\n" + `{"timestamp":"t","type":"c"}`
	got, err := io.ReadAll(rollout.Renumbered(iotest.OneByteReader(strings.NewReader(in))))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"timestamp":"t","ordinal":0,"type":"a"}` + "\n" + `{"timestamp":"t","ordinal":1,"type":"b"}` + "\n"
	if !strings.HasPrefix(string(got), want) || strings.Count(string(got), "\n") != 3 || !strings.Contains(string(got), `"ordinal":2`) {
		t.Fatalf("got %q, want lines numbered 0, 1, 2", got)
	}
	if _, err := io.ReadAll(rollout.Renumbered(strings.NewReader("not json\n"))); err == nil || !strings.Contains(err.Error(), "line 0") {
		t.Fatalf("a line that is not an object: %v, want an error naming line 0", err)
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
