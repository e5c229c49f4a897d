package manager_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// userMessage is a rollout item holding a user prompt: the kind of line
// forks count.
func userMessage(text string) rollout.Item {
	payload, err := json.Marshal(map[string]any{
		"type": "message", "role": "user",
		"content": []map[string]string{{"type": "input_text", "text": text}},
	})
	if err != nil {
		log.Fatal(err)
	}
	return rollout.Item{Type: "response_item", Payload: payload}
}

// userEcho is the event Codex writes after a user message: the first one
// is what Codex, and spool, show as the thread's preview.
func userEcho(text string) rollout.Item {
	payload, err := json.Marshal(map[string]any{"type": "user_message", "message": text, "images": []string{}})
	if err != nil {
		log.Fatal(err)
	}
	return rollout.Item{Type: "event_msg", Payload: payload}
}

// Embedding the manager: open a root, start a thread, append two user
// messages, fork before the second (user message 1, counted from 0), and
// list the threads.
func Example() {
	ctx := context.Background()
	root, err := os.MkdirTemp("", "spool-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)

	// Open takes the root's lock: one process per root.
	m, err := manager.Open(ctx, manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	thread, err := m.Start(ctx, manager.StartOptions{Cwd: "/home/me/project", Source: "cli", Name: "first session"})
	if err != nil {
		log.Fatal(err)
	}
	res, err := m.Append(ctx, thread.ID, []rollout.Item{
		userMessage("How do I list files?"), userEcho("How do I list files?"),
		userMessage("And hidden ones?"), userEcho("And hidden ones?"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("user messages:", res.Thread.UserMessageCount)

	before := 1
	fork, err := m.Fork(ctx, thread.ID, manager.ForkOptions{BeforeUserMessage: &before, Name: "retry"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("forked from the first session:", fork.ParentID == thread.ID)
	fmt.Println("cut where user message 1 starts:", fork.ForkOffset == res.Offsets[2])

	page, err := m.List(ctx, manager.ListOptions{SortBy: manager.SortCreated, Ascending: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range page.Threads {
		fmt.Printf("%s: %d user messages, preview %q\n", t.Name, t.UserMessageCount, t.Preview)
	}
	// Output:
	// user messages: 2
	// forked from the first session: true
	// cut where user message 1 starts: true
	// first session: 2 user messages, preview "How do I list files?"
	// retry: 1 user messages, preview "How do I list files?"
}

// A fork point past the thread's user messages is refused with an
// *OutOfRangeError that says how many there are, instead of a fork the
// caller did not ask for.
func ExampleManager_Fork_outOfRange() {
	ctx := context.Background()
	root, err := os.MkdirTemp("", "spool-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	m, err := manager.Open(ctx, manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	thread, err := m.Start(ctx, manager.StartOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.Append(ctx, thread.ID, []rollout.Item{userMessage("only one")}); err != nil {
		log.Fatal(err)
	}
	five := 5
	_, err = m.Fork(ctx, thread.ID, manager.ForkOptions{BeforeUserMessage: &five})
	var outOfRange *manager.OutOfRangeError
	if errors.As(err, &outOfRange) {
		fmt.Printf("asked for %d, the thread has %d\n", outOfRange.Requested, outOfRange.Count)
	}
	// Output:
	// asked for 5, the thread has 1
}

// ReadFrom seeks to a user message and streams the history from there as
// the rollout file's own JSONL lines.
func ExampleManager_ReadFrom() {
	ctx := context.Background()
	root, err := os.MkdirTemp("", "spool-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	m, err := manager.Open(ctx, manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	thread, err := m.Start(ctx, manager.StartOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.Append(ctx, thread.ID, []rollout.Item{userMessage("first"), userMessage("second")}); err != nil {
		log.Fatal(err)
	}
	history, err := m.ReadFrom(ctx, thread.ID, 1)
	if err != nil {
		log.Fatal(err)
	}
	defer history.Close()
	data, err := io.ReadAll(history)
	if err != nil {
		log.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	fmt.Println(len(lines), "line, holding", strings.Contains(lines[0], `"text":"second"`))
	// Output:
	// 1 line, holding true
}

// An append that names itself with an idempotency key writes once, however
// often it is retried, also by another process after a restart: the key
// and the first answer are kept in the index (for IdempotencyTTL). The
// same key with other items is refused.
func ExampleManager_AppendWith() {
	ctx := context.Background()
	root, err := os.MkdirTemp("", "spool-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	open := func() *manager.Manager {
		m, err := manager.Open(ctx, manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			log.Fatal(err)
		}
		return m
	}
	m := open()
	thread, err := m.Start(ctx, manager.StartOptions{})
	if err != nil {
		log.Fatal(err)
	}
	key := manager.AppendOptions{IdempotencyKey: "req-7f3a"}
	first, err := m.AppendWith(ctx, thread.ID, []rollout.Item{userMessage("once")}, key)
	if err != nil {
		log.Fatal(err)
	}
	m.Close()

	m = open() // a restart: the retry still finds its key
	defer m.Close()
	retry, err := m.AppendWith(ctx, thread.ID, []rollout.Item{userMessage("once")}, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same answer:", retry.Offsets[0] == first.Offsets[0], retry.Thread.IndexedSize == first.Thread.IndexedSize)
	_, err = m.AppendWith(ctx, thread.ID, []rollout.Item{userMessage("something else")}, key)
	fmt.Println("other items refused:", errors.Is(err, manager.ErrIdempotencyKeyReused))
	now, err := m.Get(ctx, thread.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("user messages:", now.UserMessageCount)
	// Output:
	// same answer: true true
	// other items refused: true
	// user messages: 1
}
