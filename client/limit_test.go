package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spoolhq/spool/client"
)

// TestAnswersAreBounded: a server (broken, hostile, or something else at
// the address) that answers more than the Client's limit makes the call
// fail with ErrAnswerTooLarge instead of the Client reading it all into
// memory, for every answer the Client reads whole: JSON bodies, /metrics,
// one line of a history, one event record. An answer of exactly the limit
// is read. Every one of them used to be read without bound.
func TestAnswersAreBounded(t *testing.T) {
	const limit = 1 << 20
	const id = "019a0000-0000-7000-8000-000000000000"
	thread := func(size int) string { // a Thread of size bytes
		head := `{"id":"` + id + `","name":"`
		return head + strings.Repeat("a", size-len(head)-2) + `"}`
	}
	line := func(size int) string { // an NDJSON line of size bytes, newline included
		head := `{"type":"event_msg","payload":"`
		return head + strings.Repeat("a", size-len(head)-3) + "\"}\n"
	}
	offsets := func(size int) string { // an AppendResult of size bytes
		return `{"offsets":[0` + strings.Repeat(",0", (size-15)/2) + `]}`
	}
	tests := []struct {
		name string
		body func(size int) string
		call func(c *client.Client) error
	}{
		{"get", thread, func(c *client.Client) error {
			_, err := c.Get(t.Context(), id)
			return err
		}},
		{"append", offsets, func(c *client.Client) error {
			_, err := c.AppendLines(t.Context(), id, []byte(`{"type":"event_msg"}`))
			return err
		}},
		{"metrics", func(size int) string { return strings.Repeat("m", size) }, func(c *client.Client) error {
			_, err := c.Metrics(t.Context())
			return err
		}},
		{"items", line, func(c *client.Client) error {
			for _, err := range c.Items(t.Context(), id, -1) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"follow", line, func(c *client.Client) error {
			for _, err := range c.Follow(t.Context(), id, 0) {
				var end *client.StreamEndError
				if errors.As(err, &end) {
					return nil
				}
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"events", func(size int) string {
			head := `{"seq":1,"type":"renamed","thread_id":"` + id + `","thread":{"id":"` + id + `","name":"`
			return head + strings.Repeat("a", size-len(head)-4) + "\"}}\n" + `{"type":"stream_end","reason":"shutdown"}` + "\n"
		}, func(c *client.Client) error {
			for _, err := range c.Events(t.Context()) {
				var end *client.StreamEndError
				if errors.As(err, &end) {
					return nil
				}
				if err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, tc := range tests {
		for _, size := range []int{limit, limit + 1, 64 * limit} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, size), func(t *testing.T) {
				if got := len(strings.SplitN(tc.body(size), "\n", 2)[0]) + 1; tc.name == "items" && got != size {
					t.Fatalf("the line holds %d bytes, want %d", got, size)
				}
				ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Write([]byte(tc.body(size)))
				}))
				t.Cleanup(ts.Close)
				c, err := client.New(ts.URL, client.WithMaxAnswer(limit))
				if err != nil {
					t.Fatal(err)
				}
				err = tc.call(c)
				if size <= limit && err != nil {
					t.Fatalf("answer of %d bytes, the limit: %v, want it read", size, err)
				}
				if size > limit && !errors.Is(err, client.ErrAnswerTooLarge) {
					t.Fatalf("answer of %d bytes past a limit of %d: %v, want ErrAnswerTooLarge", size, limit, err)
				}
			})
		}
	}
}
