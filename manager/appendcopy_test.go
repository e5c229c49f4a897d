package manager

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// TestAppendMakesOneCopyOfALine appends one item, or one line without a
// timestamp, of 16 MiB, or as many bytes in 1 KiB items or lines, and
// counts the bytes the call allocates: the lines are made once, where
// their ordinals are known, one after the other in one buffer, and
// written from where they are (several lines were joined into a copy).
// Before, a paginated append made three copies of an item (the line, the
// line with its ordinal, the bytes of one write), which took four
// concurrent 60 MB appends to spoold past 1 GiB.
func TestAppendMakesOneCopyOfALine(t *testing.T) {
	const size = 16 << 20
	output := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	big := item("response_item", map[string]any{"type": "function_call_output", "call_id": "c", "output": string(output)})
	line := []byte(`{"type":"response_item","payload":` + string(big.Payload) + `}`)
	// The same bytes as 16,384 lines of 1 KiB.
	const small = 1 << 10
	smallItem := item("response_item", map[string]any{"type": "function_call_output", "call_id": "c", "output": string(output[:small-100])})
	smallLine := []byte(`{"type":"response_item","payload":` + string(smallItem.Payload) + `}`)
	var smallItems []rollout.Item
	var smallLines [][]byte
	for range size / small {
		smallItems = append(smallItems, smallItem)
		smallLines = append(smallLines, smallLine)
	}
	appends := map[string]func(ctx context.Context, m *Manager, id string) error{
		"Append, many": func(ctx context.Context, m *Manager, id string) error {
			_, err := m.Append(ctx, id, smallItems)
			return err
		},
		"AppendLines, many": func(ctx context.Context, m *Manager, id string) error {
			_, err := m.AppendLines(ctx, id, smallLines)
			return err
		},
		"Append": func(ctx context.Context, m *Manager, id string) error {
			_, err := m.Append(ctx, id, []rollout.Item{big})
			return err
		},
		"AppendLines": func(ctx context.Context, m *Manager, id string) error {
			_, err := m.AppendLines(ctx, id, [][]byte{line})
			return err
		},
	}
	for name, appendOne := range appends {
		for _, mode := range []string{legacyMode, "paginated"} {
			t.Run(name+"/"+mode, func(t *testing.T) {
				m := openTest(t)
				th, err := m.Start(t.Context(), StartOptions{Cwd: "/work", HistoryMode: mode})
				if err != nil {
					t.Fatal(err)
				}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				if err := appendOne(t.Context(), m, th.ID); err != nil {
					t.Fatal(err)
				}
				runtime.ReadMemStats(&after)
				allocated, limit := after.TotalAlloc-before.TotalAlloc, uint64(len(line))*3/2
				t.Logf("an append of a %d-byte line allocated %d bytes", len(line), allocated)
				if allocated > limit {
					t.Errorf("an append of a %d-byte line allocated %d bytes, want at most %d", len(line), allocated, limit)
				}
			})
		}
	}
}

// TestSplitLinesKeepsThemAdjacent: a rendered turn's lines are slices of
// its buffer one after the other, each keeping the buffer's capacity, so
// that the Appender writes the buffer as it is. bytes.SplitAfter, which
// caps each piece, made it join the turn into a copy: twice the prompt
// and three times the answer more at the peak of a large turn.
func TestSplitLinesKeepsThemAdjacent(t *testing.T) {
	data := []byte("{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}\n")
	lines := splitLines(data)
	if got := string(bytes.Join(lines, nil)); got != string(data) {
		t.Fatalf("lines join to %q, want %q", got, data)
	}
	at := 0
	for i, l := range lines {
		if len(l) == 0 || l[len(l)-1] != '\n' {
			t.Fatalf("line %d = %q: want it to end with its newline", i, l)
		}
		if &l[0] != &data[at] || cap(l) != cap(data)-at {
			t.Fatalf("line %d is not data[%d:] with its capacity", i, at)
		}
		at += len(l)
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4", len(lines))
	}
}
