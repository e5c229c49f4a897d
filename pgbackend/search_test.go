//go:build distributed

package pgbackend

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// TestHugePromptAppends: a user message of 2 MiB of distinct words, whose
// tsvector would pass PostgreSQL's 1 MiB limit, is appended whole; search
// finds the words of its first pgstore.SearchedChars characters and not
// those past them.
func TestHugePromptAppends(t *testing.T) {
	b, err := Open(t.Context(), Options{DSN: disttest.DSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	th, err := b.Start(t.Context(), manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	n := 0
	for ; text.Len() < 2<<20; n++ {
		fmt.Fprintf(&text, "w%07d ", n)
	}
	user, _ := json.Marshal(map[string]any{"type": "message", "role": "user", "content": []map[string]string{{"type": "input_text", "text": text.String()}}})
	res, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{{Type: rollout.TypeResponseItem, Payload: user}}, manager.AppendOptions{})
	if err != nil {
		t.Fatalf("append a 2 MiB prompt: %v", err)
	}
	if res.Thread.UserMessageCount != 1 || res.Thread.IndexedSize < 2<<20 {
		t.Fatalf("after the append: %d user messages, %d bytes; want 1 and the whole prompt", res.Thread.UserMessageCount, res.Thread.IndexedSize)
	}
	for _, tc := range []struct {
		word string
		hits int
	}{{"w0000001", 1}, {fmt.Sprintf("w%07d", n-1), 0}} {
		page, err := b.SearchPage(t.Context(), manager.SearchOptions{Query: tc.word})
		if err != nil || len(page.Hits) != tc.hits {
			t.Fatalf("search %s: %d hits, %v; want %d", tc.word, len(page.Hits), err, tc.hits)
		}
	}
}
