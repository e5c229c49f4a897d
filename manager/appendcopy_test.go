package manager

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// TestAppendMakesOneCopyOfAnItem appends one item of 16 MiB and counts the
// bytes the call allocates: the line is made once, where its ordinal is
// known, and written from where it is. Before, a paginated append made
// three copies of it (the line, the line with its ordinal, the bytes of
// one write), which took four concurrent 60 MB appends to spoold past
// 1 GiB.
func TestAppendMakesOneCopyOfAnItem(t *testing.T) {
	const size = 16 << 20
	output := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	big := item("response_item", map[string]any{"type": "function_call_output", "call_id": "c", "output": string(output)})
	for _, mode := range []string{legacyMode, "paginated"} {
		t.Run(mode, func(t *testing.T) {
			m := openTest(t)
			th, err := m.Start(t.Context(), StartOptions{Cwd: "/work", HistoryMode: mode})
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if _, err := m.Append(t.Context(), th.ID, []rollout.Item{big}); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			allocated, limit := after.TotalAlloc-before.TotalAlloc, uint64(len(big.Payload))*3/2
			t.Logf("Append of a %d-byte item allocated %d bytes", len(big.Payload), allocated)
			if allocated > limit {
				t.Errorf("Append of a %d-byte item allocated %d bytes, want at most %d", len(big.Payload), allocated, limit)
			}
		})
	}
}
