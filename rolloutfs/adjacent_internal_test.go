package rolloutfs

import (
	"bytes"
	"testing"
)

// TestAdjacent: lines are written from where they are only when each
// starts where the one before it ends, in one array; the slice returned
// is then their concatenation.
func TestAdjacent(t *testing.T) {
	buf := []byte("a\nbb\nccc\n")
	one, two, three := buf[0:2], buf[2:5], buf[5:9]
	roomy := append(make([]byte, 0, 64), "a\n"...) // capacity past its line
	tests := []struct {
		name  string
		lines [][]byte
		want  bool
	}{
		{"one line", [][]byte{three}, true},
		{"in order, one array", [][]byte{one, two, three}, true},
		{"a prefix of the array", [][]byte{one, two}, true},
		{"out of order", [][]byte{two, one}, false},
		{"a gap", [][]byte{one, three}, false},
		{"separate arrays", [][]byte{[]byte("a\n"), []byte("bb\n")}, false},
		{"room after the first, the next elsewhere", [][]byte{roomy, []byte("bb\n")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := adjacent(tt.lines)
			if ok != tt.want {
				t.Fatalf("adjacent = %v, want %v", ok, tt.want)
			}
			if ok && !bytes.Equal(got, bytes.Join(tt.lines, nil)) {
				t.Fatalf("adjacent = %q, want %q", got, bytes.Join(tt.lines, nil))
			}
		})
	}
}
