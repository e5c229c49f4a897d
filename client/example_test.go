package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

// startServer runs spoold's handler over a fresh root for the examples;
// a program would instead reach a running spoold with client.FromEnv.
func startServer() (addr string, stop func()) {
	root, err := os.MkdirTemp("", "spool-client-example-")
	if err != nil {
		log.Fatal(err)
	}
	m, err := manager.Open(context.Background(), manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(server.New(m, server.Config{Logger: slog.New(slog.DiscardHandler)}).Handler())
	return ts.URL, func() {
		ts.Close()
		m.Close()
		os.RemoveAll(root)
	}
}

func prompt(text string) client.Item {
	payload, _ := json.Marshal(map[string]any{
		"type": "message", "role": "user",
		"content": []map[string]string{{"type": "input_text", "text": text}},
	})
	return client.Item{Type: "response_item", Payload: payload}
}

// Start a thread, append two prompts, fork before the second and read
// the fork's history: a reference fork reads as its parent's lines before
// the cut (meta, name, first prompt), then its own (its meta, its name).
func Example() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(addr) // or client.FromEnv(): $SPOOL_ADDR, $SPOOL_TOKEN
	if err != nil {
		log.Fatal(err)
	}
	thread, err := c.Create(ctx, client.CreateOptions{Cwd: "/home/me/project", Name: "first session"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Append(ctx, thread.ID, prompt("How do I list files?"), prompt("And hidden ones?")); err != nil {
		log.Fatal(err)
	}
	one := 1
	fork, err := c.Fork(ctx, thread.ID, client.ForkOptions{BeforeUserMessage: &one, Name: "retry"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(fork.Name, "has", fork.UserMessageCount, "user message")
	for line, err := range c.Items(ctx, fork.ID, -1) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(line.Type)
	}
	// Output:
	// retry has 1 user message
	// session_meta
	// event_msg
	// response_item
	// session_meta
	// event_msg
}

// Errors are *client.Error values that match a sentinel per API code.
func ExampleError() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	thread, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	five := 5
	_, err = c.Fork(ctx, thread.ID, client.ForkOptions{BeforeUserMessage: &five})
	var apiErr *client.Error
	if errors.Is(err, client.ErrOutOfRange) && errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code, *apiErr.UserMessages)
	}
	// Output:
	// 400 out_of_range 0
}
