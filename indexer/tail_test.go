package indexer

import (
	"strings"
	"testing"
)

// TestTailSumAgreesWhoeverMakesIt: the writer of a file's last line (an
// append knows only its lines) and a reader of the file (a scan reads the
// bytes before the indexed size) make the same tail sum, for a line
// shorter and longer than TailBytes; and bytes that differ before the end
// make another.
func TestTailSumAgreesWhoeverMakesIt(t *testing.T) {
	earlier := strings.Repeat("e", 300) + "\n" + strings.Repeat("f", 40) + "\n"
	for _, tc := range []struct {
		name string
		last string
	}{
		{"short line", `{"a":1}` + "\n"},
		{"long line", `{"a":"` + strings.Repeat("x", 2*TailBytes) + `"}` + "\n"},
		{"line of TailBytes", strings.Repeat("y", TailBytes-1) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writer := TailSumOfLines([][]byte{[]byte(earlier), []byte(tc.last)})
			file := []byte(earlier + tc.last)
			reader, err := tailSumAt(strings.NewReader(string(file)), int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			if writer != reader || writer == 0 {
				t.Fatalf("writer's sum %x, reader's %x; want the same, not 0", writer, reader)
			}
			if n := writer >> 32; n != int64(min(len(tc.last), TailBytes)) {
				t.Errorf("sum covers %d bytes, want %d", n, min(len(tc.last), TailBytes))
			}
			changed := []byte(earlier + tc.last)
			changed[len(changed)-2] ^= 1
			if same, err := tailMatches(strings.NewReader(string(changed)), int64(len(changed)), writer); err != nil || same {
				t.Fatalf("a changed last line matches (%v); want not", err)
			}
			if same, err := tailMatches(strings.NewReader(string(file)), int64(len(file)), writer); err != nil || !same {
				t.Fatalf("the same bytes do not match (%v)", err)
			}
		})
	}
}
