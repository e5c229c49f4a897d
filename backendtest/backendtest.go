// Package backendtest is the conformance suite of manager.Backend: what
// every backend promises its callers, run against the local backend in the
// manager's tests and against the distributed one in pgbackend's.
package backendtest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// Open returns a new, empty backend, closed when the test ends.
type Open func(t *testing.T) manager.Backend

// Run runs the suite; each case gets a backend of its own.
func Run(t *testing.T, open Open) {
	cases := []struct {
		name string
		run  func(t *testing.T, b manager.Backend)
	}{
		{"StartGetList", testStartGetList},
		{"StartModelProvider", testStartModelProvider},
		{"RelativeCwdRefused", testRelativeCwdRefused},
		{"AppendOffsets", testAppendOffsets},
		{"RefusedAppendsWriteNothing", testRefusedAppends},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ForkBeforeMessage", testForkBeforeMessage},
		{"ReadTurn", testReadTurn},
		{"UserMessagesBetween", testUserMessagesBetween},
		{"RenameArchive", testRenameArchive},
		{"Delete", testDelete},
		{"Search", testSearch},
		{"SearchThroughForks", testSearchThroughForks},
		{"SearchPastADeletedFork", testSearchPastADeletedFork},
		{"SearchRetriedPrompt", testSearchRetriedPrompt},
		{"SearchPastARevertedAncestor", testSearchPastARevertedAncestor},
		{"SearchCopyOfAReferenceFork", testSearchCopyOfAReferenceFork},
		{"SearchCopyPastItsParentsRollback", testSearchCopyPastItsParentsRollback},
		{"SearchCopyPastItsParentsRevert", testSearchCopyPastItsParentsRevert},
		{"SearchTwoCopiesPastTheirParentsRevert", testSearchTwoCopiesPastTheirParentsRevert},
		{"SearchCopyPastItsOwnRollback", testSearchCopyPastItsOwnRollback},
		{"SearchRevertedCopyFork", testSearchRevertedCopyFork},
		{"SearchPagesAreKeyset", testSearchPagesAreKeyset},
		{"SearchFullPages", testSearchFullPages},
		{"Events", testEvents},
		{"AppendTurn", testAppendTurn},
		{"IdempotencyKey", testIdempotencyKey},
		{"TurnIdempotencyKey", testTurnIdempotencyKey},
		{"IdempotentStart", testIdempotentStart},
		{"IdempotentFork", testIdempotentFork},
		{"IdempotencyKeyRule", testIdempotencyKeyRule},
		{"Spawns", testSpawns},
		{"CopyFork", testCopyFork},
		{"LegacyParentForksByCopy", testLegacyParentForksByCopy},
		{"ForkOrdinalsContinue", testForkOrdinalsContinue},
		{"WholeForkAfterRenames", testWholeForkAfterRenames},
		{"RelativesAreWholeThreads", testRelativesAreWholeThreads},
		{"ExpectedSizeOfAFork", testExpectedSizeOfAFork},
		{"RollbacksDropMessages", testRollbacksDropMessages},
		{"PreviewsAsCodex", testPreviewsAsCodex},
		{"PaginatedRollbackRefused", testPaginatedRollbackRefused},
		{"ListTextFoldsCase", testListTextFoldsCase},
		{"ListFullPages", testListFullPages},
		{"ListByLongValues", testListByLongValues},
		{"ForkMetaRecordsTheForkPoint", testForkMetaRecordsTheForkPoint},
		{"CopyOfAReferenceFork", testCopyOfAReferenceFork},
		{"CopyOfARevertedReferenceFork", testCopyOfARevertedReferenceFork},
		{"NamedCreationEvents", testNamedCreationEvents},
		{"ForkKeepsParentName", testForkKeepsParentName},
		{"ForkTakesItsOwnSource", testForkTakesItsOwnSource},
		{"PurgeSearchFindsOnce", testPurgeSearchFindsOnce},
		{"PurgeKeepsARevertedForksOwnPrompts", testPurgeKeepsARevertedForksOwnPrompts},
		{"BigAppendAnnouncedWithOffsets", testBigAppendAnnouncedWithOffsets},
		{"ReadTurnByID", testReadTurnByID},
		{"TurnWithoutAUserMessage", testTurnWithoutAUserMessage},
		{"ForkByTurnID", testForkByTurnID},
		{"LongTurnID", testLongTurnID},
		{"ForkByTurnIDRefuses", testForkByTurnIDRefuses},
		{"ForkAtTheStartOfItsOwnBytes", testForkAtTheStartOfItsOwnBytes},
		{"LinesNestedTooDeep", testLinesNestedTooDeep},
		{"Purge", testPurge},
		{"PurgeForgetsKeys", testPurgeForgetsKeys},
		{"Revert", testRevert},
		{"RevertRefusesForksPastTheCut", testRevertRefusesForksPastTheCut},
		{"RevertRefuses", testRevertRefuses},
		{"RevertReferenceFork", testRevertReferenceFork},
		{"ForkSeesNoTurnOfItsRevertedBase", testForkSeesNoTurnOfItsRevertedBase},
		{"ForkCutInAnArchivedThread", testForkCutInAnArchivedThread},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// testListFullPages: a page of the largest size (store.MaxListLimit)
// that is not the last says so with a cursor, and a larger limit is taken
// as that size.
func testListFullPages(t *testing.T, b manager.Backend) {
	for range store.MaxListLimit + 1 {
		start(t, b)
	}
	for _, limit := range []int{store.MaxListLimit, store.MaxListLimit + 1} {
		page, err := b.List(t.Context(), manager.ListOptions{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Threads) != store.MaxListLimit || page.NextCursor == "" {
			t.Fatalf("limit %d of %d threads: a page of %d, next cursor %q; want %d and a cursor",
				limit, store.MaxListLimit+1, len(page.Threads), page.NextCursor, store.MaxListLimit)
		}
		rest, err := b.List(t.Context(), manager.ListOptions{Limit: limit, Cursor: page.NextCursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(rest.Threads) != 1 || rest.NextCursor != "" {
			t.Fatalf("limit %d, the next page: %d threads, next cursor %q; want the last one alone", limit, len(rest.Threads), rest.NextCursor)
		}
	}
}

// testListByLongValues lists by a working directory, source and model
// provider of 10,240 bytes each: values longer than an index entry may be
// are stored, and found, like short ones.
func testListByLongValues(t *testing.T, b manager.Backend) {
	long := func(prefix string) string {
		var sb strings.Builder // bytes that do not compress much
		sb.WriteString(prefix)
		for sum := sha256.Sum256([]byte(prefix)); sb.Len() < 10240; sum = sha256.Sum256(sum[:]) {
			sb.WriteString(hex.EncodeToString(sum[:]))
		}
		return sb.String()
	}
	opts := manager.StartOptions{Cwd: long("/"), Source: long("src-"), ModelProvider: long("provider-")}
	th, err := b.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("start with long values: %v", err)
	}
	start(t, b)
	for name, o := range map[string]manager.ListOptions{
		"cwd":            {Cwd: opts.Cwd},
		"source":         {Source: opts.Source},
		"model provider": {ModelProvider: opts.ModelProvider},
	} {
		page, err := b.List(t.Context(), o)
		if err != nil {
			t.Fatalf("list by a long %s: %v", name, err)
		}
		if len(page.Threads) != 1 || page.Threads[0].ID != th.ID {
			t.Fatalf("list by a long %s: %d threads, want %s alone", name, len(page.Threads), th.ID)
		}
	}
}

// userItem is a user message every backend counts.
func userItem(text string) rollout.Item {
	payload, _ := json.Marshal(map[string]any{"type": "message", "role": "user",
		"content": []map[string]string{{"type": "input_text", "text": text}}})
	return rollout.Item{Type: rollout.TypeResponseItem, Payload: payload}
}

// echoItem is the echo of a prompt Codex writes after its user message
// (a legacy user_message event; Codex reads it in a history of either
// mode): what a thread's preview comes from (rollout.Preview).
func echoItem(text string) rollout.Item {
	payload, _ := json.Marshal(map[string]any{"type": "user_message", "message": text, "images": []string{}, "local_images": []string{}})
	return rollout.Item{Type: rollout.TypeEventMsg, Payload: payload}
}

// answerItem is an assistant message.
func answerItem(text string) rollout.Item {
	payload, _ := json.Marshal(map[string]any{"type": "message", "role": "assistant",
		"content": []map[string]string{{"type": "output_text", "text": text}}})
	return rollout.Item{Type: rollout.TypeResponseItem, Payload: payload}
}

// implements returns b as the optional interface T of the manager
// (manager.Searcher, manager.TurnWriter...), failing t if b lacks it: every
// backend the suite runs on offers them all.
func implements[T any](t *testing.T, b manager.Backend) T {
	t.Helper()
	v, ok := b.(T)
	if !ok {
		t.Fatalf("the backend (%T) does not implement %T", b, (*T)(nil))
	}
	return v
}

func start(t *testing.T, b manager.Backend) manager.Thread {
	t.Helper()
	return startIn(t, b, "")
}

// startIn starts a thread in history mode ("" for the default, paginated).
func startIn(t *testing.T, b manager.Backend, mode string) manager.Thread {
	t.Helper()
	th, err := b.Start(t.Context(), manager.StartOptions{Cwd: "/work", Source: "cli", HistoryMode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return th
}

// withTurns starts a thread and appends n turns of a prompt (with its
// echo) and an answer.
func withTurns(t *testing.T, b manager.Backend, n int) manager.Thread {
	t.Helper()
	th := start(t, b)
	for i := range n {
		res, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{userItem(fmt.Sprintf("prompt %d", i)), echoItem(fmt.Sprintf("prompt %d", i)), answerItem(fmt.Sprintf("answer %d", i))}, manager.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		th = res.Thread
	}
	return th
}

// forkBefore forks thread id before its user message k, in the backend's
// default mode (a reference fork of a paginated thread).
func forkBefore(t *testing.T, b manager.Backend, id string, k int) manager.Thread {
	t.Helper()
	f, err := b.Fork(t.Context(), id, manager.ForkOptions{BeforeUserMessage: &k})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// history reads a thread's whole history.
func history(t *testing.T, b manager.Backend, id string) []byte {
	t.Helper()
	rc, _, err := b.ReadAfter(t.Context(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Said returns the type and payload of every line of thread id's history
// on b but its session_meta lines: what the thread says, whatever the
// layout of its history (a reference fork, a revert, a self-contained
// copy), for tests of other packages that compare threads.
func Said(t *testing.T, b manager.Backend, id string) []string {
	t.Helper()
	return items(t, history(t, b, id))
}

// items returns the (type, payload) of every line of h but session_meta
// lines: what a thread says, whatever the layout of its files.
func items(t *testing.T, h []byte) []string {
	t.Helper()
	var out []string
	for line := range bytes.Lines(h) {
		var l struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if l.Type != rollout.TypeSessionMeta {
			out = append(out, l.Type+" "+string(l.Payload))
		}
	}
	return out
}

func testStartGetList(t *testing.T, b manager.Backend) {
	var ids []string
	for range 5 {
		ids = append(ids, start(t, b).ID)
	}
	got, err := b.Get(t.Context(), ids[2])
	if err != nil || got.ID != ids[2] || got.Cwd != "/work" || got.Source != "cli" || got.HistorySize() == 0 {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	var listed []string
	cursor := ""
	for {
		page, err := b.List(t.Context(), manager.ListOptions{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range page.Threads {
			listed = append(listed, th.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	slices.Sort(listed)
	if !slices.Equal(listed, ids) {
		t.Fatalf("listed %v, want %v", listed, ids)
	}
	// A cursor goes on the listing it was made for, in its sort and order.
	first, err := b.List(t.Context(), manager.ListOptions{Limit: 2})
	if err != nil || first.NextCursor == "" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	for _, o := range []manager.ListOptions{{Ascending: true}, {SortBy: manager.SortCreated}} {
		o.Limit, o.Cursor = 2, first.NextCursor
		if _, err := b.List(t.Context(), o); !errors.Is(err, store.ErrBadCursor) {
			t.Fatalf("a cursor of the default listing given to %+v: %v, want store.ErrBadCursor", o, err)
		}
	}
	if _, err := b.Get(t.Context(), "0195e7a0-0000-7000-8000-000000000000"); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("Get of an unknown thread: %v, want ErrNotFound", err)
	}
	if _, err := b.Get(t.Context(), "not-a-uuid"); !errors.Is(err, manager.ErrInvalidID) {
		t.Fatalf("Get of a bad id: %v, want ErrInvalidID", err)
	}
}

// testRelativeCwdRefused: a start or fork with a relative working
// directory fails with ErrInvalidArgument and creates nothing; absolute
// POSIX and Windows paths, and none, are taken.
func testRelativeCwdRefused(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	for _, cwd := range []string{"", "/work", `C:\Users\me`, `\\server\share`} {
		if _, err := b.Start(ctx, manager.StartOptions{Cwd: cwd}); err != nil {
			t.Fatalf("start with cwd %q: %v", cwd, err)
		}
	}
	parent, err := b.Start(ctx, manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := b.List(ctx, manager.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, cwd := range []string{"rel/dir", ".", "../up", "C:rel"} {
		if _, err := b.Start(ctx, manager.StartOptions{Cwd: cwd}); !errors.Is(err, manager.ErrInvalidArgument) {
			t.Errorf("start with cwd %q: %v, want ErrInvalidArgument", cwd, err)
		}
		if _, err := b.Fork(ctx, parent.ID, manager.ForkOptions{Cwd: cwd}); !errors.Is(err, manager.ErrInvalidArgument) {
			t.Errorf("fork with cwd %q: %v, want ErrInvalidArgument", cwd, err)
		}
	}
	after, err := b.List(ctx, manager.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Threads) != len(before.Threads) {
		t.Fatalf("%d threads after the refused calls, want %d", len(after.Threads), len(before.Threads))
	}
}

// testStartModelProvider: a thread started without a model provider gets
// Codex's default one, in its row and in its session_meta, and a given one
// is kept. Codex 0.169 refuses to resume a thread whose provider is empty
// once its cache (state_5.sqlite) exists ("model provider “”, which is no
// longer configured").
func testStartModelProvider(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	tests := []struct{ given, want string }{
		{"", manager.DefaultModelProvider},
		{"ollama", "ollama"},
	}
	for _, tc := range tests {
		th, err := b.Start(ctx, manager.StartOptions{Cwd: "/work", ModelProvider: tc.given})
		if err != nil {
			t.Fatal(err)
		}
		if th.ModelProvider != tc.want {
			t.Fatalf("Start with model provider %q: thread's is %q, want %q", tc.given, th.ModelProvider, tc.want)
		}
		first, _, _ := bytes.Cut(history(t, b, th.ID), []byte("\n"))
		meta, err := rollout.ParseSessionMeta(first)
		if err != nil || meta.ModelProvider != tc.want {
			t.Fatalf("Start with model provider %q: session_meta %s (%v), want model_provider %q", tc.given, first, err, tc.want)
		}
	}
}

func testAppendOffsets(t *testing.T, b manager.Backend) {
	th := start(t, b)
	before := th.HistorySize()
	res, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{userItem("hello"), echoItem("hello"), answerItem("hi")}, manager.AppendOptions{ExpectedSize: th.IndexedSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Offsets) != 3 || res.Offsets[0] != before {
		t.Fatalf("offsets %v, want 3 starting at %d", res.Offsets, before)
	}
	if res.Thread.UserMessageCount != 1 || res.Thread.Preview != "hello" || res.Thread.HistorySize() <= res.Offsets[2] {
		t.Fatalf("thread after the append: %+v", res.Thread)
	}
	h := history(t, b, th.ID)
	if int64(len(h)) != res.Thread.HistorySize() {
		t.Fatalf("history has %d bytes, the thread says %d", len(h), res.Thread.HistorySize())
	}
	for i, off := range res.Offsets {
		var l struct{ Type string }
		line, _, _ := bytes.Cut(h[off:], []byte("\n"))
		if want := []string{rollout.TypeResponseItem, rollout.TypeEventMsg, rollout.TypeResponseItem}[i]; json.Unmarshal(line, &l) != nil || l.Type != want {
			t.Fatalf("line %d at %d: %q", i, off, line)
		}
	}
	msgs, err := b.UserMessages(t.Context(), th.ID)
	if err != nil || len(msgs) != 1 || msgs[0].Offset != res.Offsets[0] || msgs[0].Preview != "hello" {
		t.Fatalf("UserMessages: %+v, %v", msgs, err)
	}
	rc, end, err := b.ReadAfter(t.Context(), th.ID, res.Offsets[2])
	if err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(tail, h[res.Offsets[2]:]) || end != int64(len(h)) {
		t.Fatalf("ReadAfter: %q, end %d, %v", tail, end, err)
	}
	// Only the start of a line, or the end, may be read after.
	for _, from := range []int64{res.Offsets[2] + 1, -1, int64(len(h)) + 1} {
		if rc, _, err := b.ReadAfter(t.Context(), th.ID, from); !errors.Is(err, manager.ErrInvalidArgument) {
			if err == nil {
				rc.Close()
			}
			t.Fatalf("ReadAfter(%d): %v, want ErrInvalidArgument", from, err)
		}
	}
	if rc, _, err := b.ReadAfter(t.Context(), th.ID, int64(len(h))); err != nil {
		t.Fatalf("ReadAfter at the end: %v", err)
	} else {
		rc.Close()
	}
}

func testRefusedAppends(t *testing.T, b manager.Backend) {
	th := withTurns(t, b, 1)
	before := history(t, b, th.ID)
	var mismatch *manager.SizeMismatchError
	if _, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{answerItem("x")}, manager.AppendOptions{ExpectedSize: th.IndexedSize - 1}); !errors.As(err, &mismatch) {
		t.Fatalf("stale expected size: %v, want a *SizeMismatchError", err)
	} else if mismatch.ID != th.ID || strings.Count(err.Error(), th.ID) != 1 {
		t.Errorf("stale expected size: %q (ID %q), want the thread named once", err, mismatch.ID)
	}
	if _, err := b.AppendLinesWith(t.Context(), th.ID, [][]byte{[]byte(`{"type":"event_msg","payload":{}}`), []byte(`{oops`)}, manager.AppendOptions{}); !errors.Is(err, manager.ErrInvalidItem) {
		t.Fatalf("a bad line: %v, want ErrInvalidItem", err)
	} else if lineErr := (*manager.LineError)(nil); !errors.As(err, &lineErr) || lineErr.Line != 2 {
		t.Fatalf("a bad second line: %v, want a *LineError naming line 2", err)
	}
	// A paginated thread numbers its lines itself.
	if _, err := b.AppendLinesWith(t.Context(), th.ID, [][]byte{[]byte(`{"type":"event_msg","payload":{}}`), []byte(`{"ordinal":7,"type":"event_msg","payload":{}}`)}, manager.AppendOptions{}); !errors.Is(err, manager.ErrInvalidItem) {
		t.Fatalf("a line with its own ordinal: %v, want ErrInvalidItem", err)
	} else if lineErr := (*manager.LineError)(nil); !errors.As(err, &lineErr) || lineErr.Line != 2 {
		t.Fatalf("a second line with its own ordinal: %v, want a *LineError naming line 2", err)
	}
	if _, err := b.AppendWith(t.Context(), "0195e7a0-0000-7000-8000-000000000000", []rollout.Item{answerItem("x")}, manager.AppendOptions{}); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("append to an unknown thread: %v, want ErrNotFound", err)
	} else if n := strings.Count(err.Error(), "0195e7a0-0000-7000-8000-000000000000"); n != 1 {
		t.Errorf("append to an unknown thread: %q names it %d times, want once", err, n)
	}
	if got := history(t, b, th.ID); !bytes.Equal(got, before) {
		t.Fatal("a refused append wrote")
	}
}

func testConcurrentAppends(t *testing.T, b manager.Backend) {
	th := start(t, b)
	var mu sync.Mutex
	acked := make(map[int64]string)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				text := fmt.Sprintf("writer %d line %d", w, i)
				res, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{answerItem(text)}, manager.AppendOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[res.Offsets[0]] = text
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	h := history(t, b, th.ID)
	for off, text := range acked {
		line, _, _ := bytes.Cut(h[off:], []byte("\n"))
		if !bytes.Contains(line, []byte(fmt.Sprintf("%q", text))) {
			t.Fatalf("acknowledged %q at %d, the history has %q there", text, off, line)
		}
	}
	if n := bytes.Count(h, []byte("\n")); n != 1+len(acked) {
		t.Fatalf("%d lines, want the meta and %d appends", n, len(acked))
	}
}

// testUserMessagesBetween: every range of the messages of a fork of a
// fork (some inherited from each ancestor, some its own), of a copy of
// it, and of a reference fork reverted into its own turns and appended to
// again is that range of UserMessages, with the thread's count.
func testUserMessagesBetween(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	own := func(id string, prompts ...string) {
		t.Helper()
		for _, p := range prompts {
			if _, err := b.AppendWith(ctx, id, []rollout.Item{userItem(p)}, manager.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	parent := withTurns(t, b, 4)
	child := forkBefore(t, b, parent.ID, 3)
	own(child.ID, "child's own", "and the child's last")
	grandchild := forkBefore(t, b, child.ID, 4)
	own(grandchild.ID, "grandchild's own", "and another")
	four := 4
	copied, err := b.Fork(ctx, grandchild.ID, manager.ForkOptions{BeforeUserMessage: &four, Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	own(copied.ID, "the copy's own")
	reverted := forkBefore(t, b, child.ID, 2)
	own(reverted.ID, "reverted's first", "reverted's second", "reverted's third")
	three := 3
	if _, err := reverter(t, b).Revert(ctx, reverted.ID, manager.RevertOptions{BeforeUserMessage: &three}); err != nil {
		t.Fatal(err)
	}
	own(reverted.ID, "after the revert")
	for _, id := range []string{parent.ID, child.ID, grandchild.ID, copied.ID, reverted.ID} {
		all, err := b.UserMessages(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for lo := 0; lo <= len(all)+1; lo++ {
			for hi := lo; hi <= len(all)+1; hi++ {
				got, count, err := b.UserMessagesBetween(ctx, id, lo, hi)
				if err != nil {
					t.Fatalf("%s [%d, %d): %v", id, lo, hi, err)
				}
				want := all[min(lo, len(all)):min(hi, len(all))]
				if count != len(all) || len(got) != len(want) || len(got) > 0 && !slices.Equal(got, want) {
					t.Fatalf("%s [%d, %d) = %+v, count %d; want %+v, count %d", id, lo, hi, got, count, want, len(all))
				}
			}
		}
	}
	if _, _, err := b.UserMessagesBetween(ctx, "019b0000-0000-7000-8000-0000000000ff", 0, 3); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("unknown thread: %v, want ErrNotFound", err)
	}
}

func testForkBeforeMessage(t *testing.T, b manager.Backend) {
	parent := withTurns(t, b, 4)
	two := 2
	child, err := b.Fork(t.Context(), parent.ID, manager.ForkOptions{BeforeUserMessage: &two, Name: "child"})
	if err != nil {
		t.Fatal(err)
	}
	if child.ParentID != parent.ID || child.UserMessageCount != 2 || child.Name != "child" || child.Preview != "prompt 0" {
		t.Fatalf("fork: %+v", child)
	}
	msgs, err := b.UserMessages(t.Context(), parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	ph, ch := history(t, b, parent.ID), history(t, b, child.ID)
	// The fork says what the parent said before message 2; a backend may
	// add lines of its own after it (Codex's reference forks record the
	// thread's settings), which the message count above shows are not
	// prompts.
	if want, got := items(t, ph[:msgs[2].Offset]), items(t, ch); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("the fork says %d items, not starting with the %d the parent said before message 2", len(got), len(want))
	}
	// The fork grows on its own; the parent does not change.
	if _, err := b.AppendWith(t.Context(), child.ID, []rollout.Item{userItem("fork's own")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	cm, err := b.UserMessages(t.Context(), child.ID)
	if err != nil || len(cm) != 3 || cm[0].Preview != "prompt 0" || cm[2].Preview != "fork's own" {
		t.Fatalf("the fork's messages: %+v, %v", cm, err)
	}
	if got := history(t, b, parent.ID); !bytes.Equal(got, ph) {
		t.Fatal("appending to the fork changed the parent")
	}
	nine := 9
	var oor *manager.OutOfRangeError
	if _, err := b.Fork(t.Context(), parent.ID, manager.ForkOptions{BeforeUserMessage: &nine}); !errors.As(err, &oor) || oor.Count != 4 {
		t.Fatalf("fork past the end: %v, want an *OutOfRangeError with count 4", err)
	}
	whole, err := b.Fork(t.Context(), child.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := items(t, history(t, b, whole.ID)), items(t, history(t, b, child.ID)); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatal("a whole fork of a fork does not say what its parent says")
	}
}

func testReadTurn(t *testing.T, b manager.Backend) {
	th := withTurns(t, b, 3)
	msgs, err := b.UserMessages(t.Context(), th.ID)
	if err != nil {
		t.Fatal(err)
	}
	h := history(t, b, th.ID)
	for k, want := range [][]byte{h[msgs[0].Offset:msgs[1].Offset], h[msgs[1].Offset:msgs[2].Offset], h[msgs[2].Offset:]} {
		rc, err := b.ReadTurn(t.Context(), th.ID, k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("turn %d: %q, %v; want %q", k, got, err, want)
		}
	}
	rc, err := b.ReadFrom(t.Context(), th.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, h[msgs[1].Offset:]) {
		t.Fatalf("ReadFrom 1: %q, %v", got, err)
	}
	for _, tc := range []struct {
		id   string
		k    int
		want []byte
	}{{th.ID, -1, h}, {start(t, b).ID, 0, nil}} {
		rc, err := b.ReadFrom(t.Context(), tc.id, tc.k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || tc.want != nil && !bytes.Equal(got, tc.want) || len(got) == 0 {
			t.Fatalf("ReadFrom %d: %d bytes, %v; want the whole history", tc.k, len(got), err)
		}
	}
	var oor *manager.OutOfRangeError
	if _, err := b.ReadTurn(t.Context(), th.ID, 3); !errors.As(err, &oor) {
		t.Fatalf("turn 3 of 3: %v, want an *OutOfRangeError", err)
	}
}

func testRenameArchive(t *testing.T, b manager.Backend) {
	th := withTurns(t, b, 1)
	if got, err := b.Rename(t.Context(), th.ID, "named"); err != nil || got.Name != "named" {
		t.Fatalf("Rename: %+v, %v", got, err)
	}
	got, err := b.Archive(t.Context(), th.ID)
	if err != nil || !got.Archived {
		t.Fatalf("Archive: %+v, %v", got, err)
	}
	if _, err := b.Archive(t.Context(), th.ID); !errors.Is(err, manager.ErrArchived) {
		t.Fatalf("second Archive: %v, want ErrArchived", err)
	}
	if _, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{answerItem("x")}, manager.AppendOptions{}); !errors.Is(err, manager.ErrArchived) {
		t.Fatalf("append to an archived thread: %v, want ErrArchived", err)
	}
	active, err := b.List(t.Context(), manager.ListOptions{Archived: new(false)})
	if err != nil || len(active.Threads) != 0 {
		t.Fatalf("active threads: %+v, %v", active.Threads, err)
	}
	// An archived thread may be renamed.
	if got, err := b.Rename(t.Context(), th.ID, "named when archived"); err != nil || got.Name != "named when archived" || !got.Archived {
		t.Fatalf("Rename of an archived thread: %+v, %v", got, err)
	}
	if got, err := b.Unarchive(t.Context(), th.ID); err != nil || got.Archived || got.Name != "named when archived" {
		t.Fatalf("Unarchive: %+v, %v", got, err)
	}
	if _, err := b.Unarchive(t.Context(), th.ID); !errors.Is(err, manager.ErrNotArchived) {
		t.Fatalf("second Unarchive: %v, want ErrNotArchived", err)
	}
	// A rename is a line of the history, as Codex writes one, and such a
	// line appended names the thread; one naming another thread (a fork
	// holds its parent's) does not.
	h := history(t, b, th.ID)
	lines := bytes.Split(bytes.TrimSuffix(h, []byte{'\n'}), []byte{'\n'})
	if c := rollout.Classify(rollout.NewLine(lines[len(lines)-1], 0, 0)); c.Kind != rollout.KindNameUpdate || c.Name != "named when archived" {
		t.Fatalf("the history's last line after a rename: %s", lines[len(lines)-1])
	}
	name := func(id, name string) []byte {
		return fmt.Appendf(nil, `{"type":"event_msg","payload":{"type":"thread_name_updated","thread_id":%q,"thread_name":%q}}`, id, name)
	}
	if _, err := b.AppendLinesWith(t.Context(), th.ID, [][]byte{name(th.ID, "named in a line")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(t.Context(), th.ID); err != nil || got.Name != "named in a line" {
		t.Fatalf("after a rename line: %+v, %v", got, err)
	}
	if _, err := b.AppendLinesWith(t.Context(), th.ID, [][]byte{name("0195e7a0-0000-7000-8000-000000000000", "another's")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(t.Context(), th.ID); err != nil || got.Name != "named in a line" {
		t.Fatalf("after a line renaming another thread: %+v, %v", got, err)
	}
}

func testDelete(t *testing.T, b manager.Backend) {
	parent := withTurns(t, b, 2)
	one := 1
	child, err := b.Fork(t.Context(), parent.ID, manager.ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatal(err)
	}
	if child.BaseID == parent.ID {
		// A reference fork: its base cannot go first.
		if err := b.Delete(t.Context(), parent.ID); !errors.Is(err, manager.ErrReferenced) {
			t.Fatalf("delete of a base: %v, want ErrReferenced", err)
		}
	}
	if err := b.Delete(t.Context(), child.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(t.Context(), child.ID); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := b.Delete(t.Context(), parent.ID); err != nil {
		t.Fatalf("delete of a thread no longer referenced: %v", err)
	}
	if err := b.Delete(context.WithoutCancel(t.Context()), parent.ID); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
}

// testSearch runs the query language on a backend that offers search:
// words, phrases, OR, NOT, prefixes, a thread filter, pages.
func testSearch(t *testing.T, b manager.Backend) {
	s := implements[manager.Searcher](t, b)
	a, c := start(t, b), start(t, b)
	for _, m := range []struct {
		id, text string
	}{
		{a.ID, "list the hidden files"}, {a.ID, "files are hidden here"}, {a.ID, "remove the temp directory"},
		{c.ID, "show hidden files please"}, {c.ID, "compile the project"},
	} {
		if _, err := b.AppendWith(t.Context(), m.id, []rollout.Item{userItem(m.text)}, manager.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	type hit struct {
		id      string
		ordinal int
	}
	search := func(o manager.SearchOptions) []hit {
		t.Helper()
		var got []hit
		for {
			page, err := s.SearchPage(t.Context(), o)
			if err != nil {
				t.Fatalf("search %q: %v", o.Query, err)
			}
			for _, h := range page.Hits {
				got = append(got, hit{h.ThreadID, h.Ordinal})
			}
			if o.Cursor = page.NextCursor; o.Cursor == "" {
				break
			}
		}
		order := func(id string) int { // a's hits first, then c's
			if id == a.ID {
				return 0
			}
			return 1
		}
		slices.SortFunc(got, func(x, y hit) int {
			return cmp.Or(cmp.Compare(order(x.id), order(y.id)), cmp.Compare(x.ordinal, y.ordinal))
		})
		return got
	}
	cases := []struct {
		query  string
		thread string
		want   []hit
	}{
		{"hidden files", "", []hit{{a.ID, 0}, {a.ID, 1}, {c.ID, 0}}},
		{`"hidden files"`, "", []hit{{a.ID, 0}, {c.ID, 0}}},
		{"temp OR compile", "", []hit{{a.ID, 2}, {c.ID, 1}}},
		{"hidden -list", "", []hit{{a.ID, 1}, {c.ID, 0}}},
		{"direct*", "", []hit{{a.ID, 2}}},
		{"hidden", c.ID, []hit{{c.ID, 0}}},
	}
	for _, tc := range cases {
		got := search(manager.SearchOptions{Query: tc.query, ThreadID: tc.thread, Limit: 1})
		if !slices.Equal(got, tc.want) {
			t.Errorf("search %q (thread %q): %v, want %v", tc.query, tc.thread, got, tc.want)
		}
	}
	if _, err := s.SearchPage(t.Context(), manager.SearchOptions{Query: `"unclosed`}); err == nil {
		t.Error("a query with an unclosed quote was accepted")
	}
	// A cursor is its query's, as a list's is its order's: the page after
	// it of another query would skip hits of that query.
	first, err := s.SearchPage(t.Context(), manager.SearchOptions{Query: "hidden", Limit: 1})
	if err != nil || first.NextCursor == "" {
		t.Fatalf("first page of hidden: %+v, %v; want a next page", first, err)
	}
	if _, err := s.SearchPage(t.Context(), manager.SearchOptions{Query: "hidden", Limit: 1, Cursor: first.NextCursor}); err != nil {
		t.Errorf("next page of hidden: %v", err)
	}
	if _, err := s.SearchPage(t.Context(), manager.SearchOptions{Query: "compile", Cursor: first.NextCursor}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("search compile after a cursor of hidden: %v, want ErrBadCursor", err)
	}
}

// testEvents: a subscriber sees, in order, the changes made after it
// subscribed: a start, an append with the size after it, a fork, a copy
// fork (forked too, not created), a rename, a delete and a revert.
func testEvents(t *testing.T, b manager.Backend) {
	p := implements[manager.Publisher](t, b)
	sub := p.Subscribe(0)
	defer sub.Close()
	th := start(t, b)
	res, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{userItem("hello")}, manager.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fork, err := b.Fork(t.Context(), th.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	copied, err := b.Fork(t.Context(), th.ID, manager.ForkOptions{Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Rename(t.Context(), th.ID, "named"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(t.Context(), fork.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := reverter(t, b).Revert(t.Context(), th.ID, manager.RevertOptions{BeforeUserMessage: new(int)}); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ manager.EventType
		id  string
	}{
		{manager.EventCreated, th.ID}, {manager.EventAppended, th.ID}, {manager.EventForked, fork.ID},
		{manager.EventForked, copied.ID}, {manager.EventRenamed, th.ID}, {manager.EventDeleted, fork.ID},
		{manager.EventReverted, th.ID},
	}
	timeout := time.After(30 * time.Second)
	for i := 0; i < len(want); {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			if e.Type == manager.EventAppended && e.ThreadID == th.ID && i == 1 && (e.Size != res.Thread.HistorySize() || !slices.Equal(e.Offsets, res.Offsets)) {
				t.Fatalf("appended event with size %d, offsets %v; want %d, %v", e.Size, e.Offsets, res.Thread.HistorySize(), res.Offsets)
			}
			if e.Type == manager.EventAppended && i != 1 {
				continue // a rename may write a line of its own
			}
			if e.Type != want[i].typ || e.ThreadID != want[i].id {
				t.Fatalf("event %d: %s %s, want %s %s", i, e.Type, e.ThreadID, want[i].typ, want[i].id)
			}
			i++
		case <-timeout:
			t.Fatalf("waited 30 s for event %d (%s)", i, want[i].typ)
		}
	}
}

// testAppendTurn: a whole Codex turn appended counts one user message,
// whose turn reads back as the lines appended, with the prompt and the
// answer in them.
func testAppendTurn(t *testing.T, b manager.Backend) {
	w := implements[manager.TurnWriter](t, b)
	th := withTurns(t, b, 1)
	res, err := w.AppendTurn(t.Context(), th.ID, manager.TurnOptions{Prompt: "the prompt", Answer: "the answer", TurnID: "turn-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Thread.UserMessageCount != 2 || len(res.Offsets) < 4 {
		t.Fatalf("after the turn: %d user messages, %d lines", res.Thread.UserMessageCount, len(res.Offsets))
	}
	rc, err := b.ReadTurn(t.Context(), th.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	turn, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Contains(turn, []byte("the prompt")) || !bytes.Contains(turn, []byte("the answer")) || !bytes.Contains(turn, []byte("turn-1")) {
		t.Fatalf("turn 1 reads %q, %v", turn, err)
	}
	// A turn without a prompt is refused, as the HTTP API refuses it, and
	// writes nothing.
	if _, err := w.AppendTurn(t.Context(), th.ID, manager.TurnOptions{Answer: "an answer to nothing"}); !errors.Is(err, manager.ErrInvalidArgument) {
		t.Fatalf("a turn without a prompt: %v, want ErrInvalidArgument", err)
	}
	if after, err := b.Get(t.Context(), th.ID); err != nil || after.HistorySize() != res.Thread.HistorySize() {
		t.Fatalf("after the refused turn: %d bytes (%v), want %d", after.HistorySize(), err, res.Thread.HistorySize())
	}
	// A turn id the history holds already, its own or inherited, is
	// refused and writes nothing: a turn is found by its id.
	fork, err := b.Fork(t.Context(), th.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []manager.Thread{th, fork} {
		before, err := b.Get(t.Context(), in.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.AppendTurn(t.Context(), in.ID, manager.TurnOptions{Prompt: "again", Answer: "again", TurnID: "turn-1"})
		if !errors.Is(err, manager.ErrTurnExists) {
			t.Fatalf("turn-1 again in %s: %v, want ErrTurnExists", in.ID, err)
		}
		if msg := err.Error(); strings.Count(msg, manager.ErrTurnExists.Error()) != 1 || !strings.Contains(msg, `"turn-1"`) {
			t.Fatalf("turn-1 again in %s: %q, want the refusal said once, naming the turn", in.ID, msg)
		}
		if after, err := b.Get(t.Context(), in.ID); err != nil || after.HistorySize() != before.HistorySize() {
			t.Fatalf("after the refused turn-1 in %s: %d bytes (%v), want %d", in.ID, after.HistorySize(), err, before.HistorySize())
		}
	}
	if _, err := w.AppendTurn(t.Context(), fork.ID, manager.TurnOptions{Prompt: "new", Answer: "new", TurnID: "turn-2"}); err != nil {
		t.Fatalf("a new turn id in the fork: %v", err)
	}
	// Of turns of one new id sent at once, one is written.
	const racers = 8
	errs := make(chan error, racers)
	for range racers {
		go func() {
			_, err := w.AppendTurn(t.Context(), th.ID, manager.TurnOptions{Prompt: "race", Answer: "race", TurnID: "turn-3"})
			errs <- err
		}()
	}
	written := 0
	for range racers {
		switch err := <-errs; {
		case err == nil:
			written++
		case !errors.Is(err, manager.ErrTurnExists):
			t.Fatalf("a racing turn-3: %v, want ErrTurnExists", err)
		}
	}
	if written != 1 {
		t.Fatalf("%d of %d racing turns of one id written, want 1", written, racers)
	}
}

// testSpawns: sub-agent threads (a meta source naming their spawner) are
// listed under their spawner, nearest first, and name their spawners; a
// list can leave them out (as Codex's does by default) or keep only them.
func testSpawns(t *testing.T, b manager.Backend) {
	sp := implements[manager.SpawnLineage](t, b)
	spawned := func(parent string) manager.Thread {
		t.Helper()
		th, err := b.Start(t.Context(), manager.StartOptions{Cwd: "/work",
			Source: `{"subagent":{"thread_spawn":{"parent_thread_id":"` + parent + `","depth":1}}}`})
		if err != nil {
			t.Fatal(err)
		}
		return th
	}
	lead := start(t, b)
	scout := spawned(lead.ID)
	sub := spawned(scout.ID)
	ids := func(rels []manager.Relative, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rels {
			out = append(out, fmt.Sprintf("%s@%d", r.ID, r.Depth))
		}
		return fmt.Sprint(out)
	}
	if got, want := ids(sp.Spawns(t.Context(), lead.ID)), fmt.Sprint([]string{scout.ID + "@1", sub.ID + "@2"}); got != want {
		t.Fatalf("spawns of the lead: %s, want %s", got, want)
	}
	if got, want := ids(sp.SpawnedBy(t.Context(), sub.ID)), fmt.Sprint([]string{scout.ID + "@1", lead.ID + "@2"}); got != want {
		t.Fatalf("spawners of the sub-agent: %s, want %s", got, want)
	}
	if got := ids(sp.SpawnedBy(t.Context(), lead.ID)); got != "[]" {
		t.Fatalf("spawners of the lead: %s, want none", got)
	}
	// A fork of a sub-agent is no sub-agent, as Codex's own fork of one
	// (docs/CODEX.md): no thread spawned it, and its source is the one
	// Codex reads when there is none, whichever way it is forked.
	for _, mode := range []string{"", manager.ForkCopy} {
		fork, err := b.Fork(t.Context(), scout.ID, manager.ForkOptions{Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(sp.SpawnedBy(t.Context(), fork.ID)); got != "[]" || fork.Source != "vscode" {
			t.Fatalf("a fork (mode %q) of the scout: spawned by %s, source %q; want none, vscode", mode, got, fork.Source)
		}
	}
	if got, want := ids(sp.Spawns(t.Context(), lead.ID)), fmt.Sprint([]string{scout.ID + "@1", sub.ID + "@2"}); got != want {
		t.Fatalf("spawns of the lead after the forks: %s, want %s", got, want)
	}
	no, yes := false, true
	for _, tc := range []struct {
		spawned *bool
		in, out []string
	}{
		{nil, []string{lead.ID, scout.ID, sub.ID}, nil},
		{&no, []string{lead.ID}, []string{scout.ID, sub.ID}},
		{&yes, []string{scout.ID, sub.ID}, []string{lead.ID}},
	} {
		page, err := b.List(t.Context(), manager.ListOptions{Limit: 200, Spawned: tc.spawned})
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, th := range page.Threads {
			listed[th.ID] = true
		}
		for _, id := range tc.in {
			if !listed[id] {
				t.Errorf("list with Spawned %v leaves out %s", tc.spawned != nil && *tc.spawned, id)
			}
		}
		for _, id := range tc.out {
			if listed[id] {
				t.Errorf("list with Spawned %v lists %s", tc.spawned != nil && *tc.spawned, id)
			}
		}
	}
}

// testIdempotencyKey: a retried append with the same key writes once and
// answers the first offsets; the key with other items is refused; another
// thread's key of the same name is another key.
func testIdempotencyKey(t *testing.T, b manager.Backend) {
	th, other := start(t, b), start(t, b)
	o := manager.AppendOptions{IdempotencyKey: "retry-1"}
	items := []rollout.Item{userItem("once"), answerItem("only once")}
	first, err := b.AppendWith(t.Context(), th.ID, items, o)
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.AppendWith(t.Context(), th.ID, items, o)
	if err != nil || !slices.Equal(again.Offsets, first.Offsets) {
		t.Fatalf("retry: offsets %v, %v; want %v", again.Offsets, err, first.Offsets)
	}
	if first.Replayed || !again.Replayed {
		t.Fatalf("replayed: first %v, retry %v; want false, true", first.Replayed, again.Replayed)
	}
	if got := history(t, b, th.ID); int64(len(got)) != first.Thread.HistorySize() {
		t.Fatalf("after the retry the history has %d bytes, want %d: it wrote twice", len(got), first.Thread.HistorySize())
	}
	// A retry after other appends gets the first answer whole: the thread
	// as that append left it, not as it is now.
	if _, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{answerItem("between")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	again, err = b.AppendWith(t.Context(), th.ID, items, o)
	if err != nil || !slices.Equal(again.Offsets, first.Offsets) || again.Thread.HistorySize() != first.Thread.HistorySize() ||
		again.Thread.LineCount != first.Thread.LineCount || !again.Thread.UpdatedAt.Equal(first.Thread.UpdatedAt) {
		t.Fatalf("retry after another append: %+v, %v; want the first answer %+v", again, err, first)
	}
	if _, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{userItem("else")}, o); !errors.Is(err, manager.ErrIdempotencyKeyReused) {
		t.Fatalf("the key with other items: %v, want ErrIdempotencyKeyReused", err)
	}
	if _, err := b.AppendWith(t.Context(), other.ID, items, o); err != nil {
		t.Fatalf("the same key on another thread: %v", err)
	}
}

// testTurnIdempotencyKey: a whole turn appended with an idempotency key
// and sent again writes nothing and answers as the first, whatever turn id
// the first was given; other options under the key are refused; and an
// expected size that is not the thread's writes nothing.
func testTurnIdempotencyKey(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	tw := implements[manager.TurnWriter](t, b)
	th := start(t, b)
	o := manager.TurnOptions{Prompt: "once", Answer: "only once", Safe: manager.AppendOptions{IdempotencyKey: "turn-1"}}
	first, err := tw.AppendTurn(ctx, th.ID, o)
	if err != nil {
		t.Fatal(err)
	}
	again, err := tw.AppendTurn(ctx, th.ID, o)
	if err != nil || !slices.Equal(again.Offsets, first.Offsets) {
		t.Fatalf("retry: offsets %v, %v; want %v", again.Offsets, err, first.Offsets)
	}
	if got := history(t, b, th.ID); int64(len(got)) != first.Thread.HistorySize() || first.Thread.UserMessageCount != 1 {
		t.Fatalf("after the retry the history has %d bytes and %d user messages, want %d and 1: it wrote twice",
			len(got), first.Thread.UserMessageCount, first.Thread.HistorySize())
	}
	other := o
	other.Prompt = "else"
	if _, err := tw.AppendTurn(ctx, th.ID, other); !errors.Is(err, manager.ErrIdempotencyKeyReused) {
		t.Fatalf("the key with another prompt: %v, want ErrIdempotencyKeyReused", err)
	}
	stale := manager.TurnOptions{Prompt: "late", Answer: "late", Safe: manager.AppendOptions{ExpectedSize: first.Thread.HistorySize() - 1}}
	if _, err := tw.AppendTurn(ctx, th.ID, stale); !errors.Is(err, manager.ErrSizeMismatch) {
		t.Fatalf("a turn at a size the thread does not have: %v, want ErrSizeMismatch", err)
	}
	if got := history(t, b, th.ID); int64(len(got)) != first.Thread.HistorySize() {
		t.Fatalf("refused turns wrote: the history has %d bytes, want %d", len(got), first.Thread.HistorySize())
	}
}

// testCopyFork: a copy fork says what its parent said before the cut, is
// self-contained (the parent can be deleted, the copy still reads the
// same) and counts its copied prompts.
func testCopyFork(t *testing.T, b manager.Backend) {
	parent := withTurns(t, b, 3)
	two := 2
	fork, err := b.Fork(t.Context(), parent.ID, manager.ForkOptions{BeforeUserMessage: &two, Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	if fork.BaseID != "" || fork.UserMessageCount != 2 || fork.ParentID != parent.ID || fork.Preview != "prompt 0" {
		t.Fatalf("copy fork: %+v", fork)
	}
	checkCopyOutlivesParent(t, b, parent.ID, fork.ID, 2)
}

// checkCopyOutlivesParent checks that copy, a copy fork of parent cut
// before its user message cut, says what the parent said before the cut,
// and that it reads the same once the parent is deleted.
func checkCopyOutlivesParent(t *testing.T, b manager.Backend, parent, copy string, cut int) {
	t.Helper()
	msgs, err := b.UserMessages(t.Context(), parent)
	if err != nil {
		t.Fatal(err)
	}
	want := items(t, history(t, b, parent)[:msgs[cut].Offset])
	if got := items(t, history(t, b, copy)); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("the copy says %d items, not starting with the parent's %d before message %d", len(got), len(want), cut)
	}
	before := history(t, b, copy)
	if err := b.Delete(t.Context(), parent); err != nil {
		t.Fatalf("delete of a copy fork's parent: %v", err)
	}
	if got := history(t, b, copy); !bytes.Equal(got, before) {
		t.Fatal("the copy changed when its parent went")
	}
}

// testForkOrdinalsContinue: the history of a paginated thread counts its
// lines 0, 1, 2, ... without a gap, through reference forks of forks and
// their own appends, as Codex 0.169 requires: Codex skips a line whose
// ordinal is not above the one before it, so a fork numbering its own
// lines from 0 would show none of its own turns in Codex.
func testForkOrdinalsContinue(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent := withTurns(t, b, 3)
	fork := forkBefore(t, b, parent.ID, 1)
	if _, err := b.AppendWith(ctx, fork.ID, []rollout.Item{userItem("own prompt"), answerItem("own answer")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	grandchild, err := b.Fork(ctx, fork.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendWith(ctx, grandchild.ID, []rollout.Item{userItem("deeper")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, th := range []manager.Thread{fork, grandchild} {
		if th.BaseID == "" {
			t.Fatalf("fork %s of a paginated thread is not a reference fork", th.ID)
		}
		for i, line := range slices.Collect(bytes.Lines(history(t, b, th.ID))) {
			n, ok, err := rollout.LineOrdinal(bytes.TrimSuffix(line, []byte{'\n'}))
			if err != nil || !ok || n != int64(i) {
				t.Fatalf("line %d of %s's history has ordinal %d (%t, %v), want %d: %s", i, th.ID, n, ok, err, i, line)
			}
		}
	}
}

// testWholeForkAfterRenames: Codex 0.169 does not read the
// thread_name_updated lines a rename writes, and numbers the line it
// writes after a file ending in them with the first one's ordinal; a whole
// reference fork there ends at that ordinal, as Codex's own fork does
// (docs/CODEX.md), in every backend.
func testWholeForkAfterRenames(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent := withTurns(t, b, 2)
	first := int64(bytes.Count(history(t, b, parent.ID), []byte{'\n'})) // the first rename's ordinal
	for _, name := range []string{"one", "two"} {
		if _, err := b.Rename(ctx, parent.ID, name); err != nil {
			t.Fatal(err)
		}
	}
	fork, err := b.Fork(ctx, parent.ID, manager.ForkOptions{Mode: manager.ForkReference})
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := b.ReadAfter(ctx, fork.ID, fork.BaseSize)
	own, _, _ := bytes.Cut(ReadAll(t, rc, err), []byte{'\n'})
	meta, err := rollout.ParseSessionMeta(own)
	if err != nil || meta.HistoryBase == nil || meta.ForkedFromOrdinalExclusive == nil {
		t.Fatalf("the whole fork's meta %s: %v", own, err)
	}
	if got := meta.HistoryBase.EndOrdinalExclusive; got != first || *meta.ForkedFromOrdinalExclusive != first {
		t.Fatalf("the whole fork ends at ordinal %d (forked from %d), want %d, the first rename's", got, *meta.ForkedFromOrdinalExclusive, first)
	}
}

// testBigAppendAnnouncedWithOffsets: an append of many lines is announced
// with where each starts, like any append (docs/API.md, events).
func testBigAppendAnnouncedWithOffsets(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	p := implements[manager.Publisher](t, b)
	th := start(t, b)
	sub := p.Subscribe(64)
	defer sub.Close()
	items := make([]rollout.Item, 1500)
	for i := range items {
		items[i] = answerItem(fmt.Sprintf("line %d", i))
	}
	res, err := b.AppendWith(ctx, th.ID, items, manager.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			if e.ThreadID != th.ID || e.Type != manager.EventAppended {
				continue
			}
			if !slices.Equal(e.Offsets, res.Offsets) {
				t.Fatalf("the appended event of %d lines carries %d offsets, not the append's", len(res.Offsets), len(e.Offsets))
			}
			return
		case <-timeout:
			t.Fatal("waited 30 s for the appended event")
		}
	}
}

// testCopyOfARevertedReferenceFork: the copy of a reference fork that was
// reverted repeats the meta its parent started with (its first file's,
// with its fork point), not the meta of its revert: every backend lays it
// out alike.
func testCopyOfARevertedReferenceFork(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent := withTurns(t, b, 2)
	ref := forkBefore(t, b, parent.ID, 1)
	for _, text := range []string{"x", "y"} {
		if _, err := b.AppendWith(ctx, ref.ID, []rollout.Item{userItem(text), answerItem("a")}, manager.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	two := 2
	if _, err := reverter(t, b).Revert(ctx, ref.ID, manager.RevertOptions{BeforeUserMessage: &two}); err != nil {
		t.Fatal(err)
	}
	cp, err := b.Fork(ctx, ref.ID, manager.ForkOptions{Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(history(t, b, cp.ID), []byte{'\n'})
	if len(lines) < 2 {
		t.Fatalf("the copy has %d lines", len(lines))
	}
	meta, err := rollout.ParseSessionMeta(lines[1])
	if err != nil || meta.ID != ref.ID || meta.ForkPoint == nil || meta.HistoryBase != nil {
		t.Fatalf("the copy's second line: %s (%v); want its parent's first meta, with its fork point, without history_base", lines[1], err)
	}
}

// testNamedCreationEvents: a thread started or forked with a name is
// announced appended (its rename line), renamed, then created or forked,
// the name in the last (docs/API.md, events), so that no subscriber sees it
// unnamed.
func testNamedCreationEvents(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	p := implements[manager.Publisher](t, b)
	parent := withTurns(t, b, 1)
	sub := p.Subscribe(64)
	defer sub.Close()
	th, err := b.Start(ctx, manager.StartOptions{Cwd: "/work", Source: "cli", Name: "named at start"})
	if err != nil {
		t.Fatal(err)
	}
	fork, err := b.Fork(ctx, parent.ID, manager.ForkOptions{Name: "named fork"})
	if err != nil {
		t.Fatal(err)
	}
	copied, err := b.Fork(ctx, parent.ID, manager.ForkOptions{Name: "named copy", Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ  manager.EventType
		id   string
		name string
	}{
		{manager.EventAppended, th.ID, ""}, {manager.EventRenamed, th.ID, ""}, {manager.EventCreated, th.ID, "named at start"},
		{manager.EventAppended, fork.ID, ""}, {manager.EventRenamed, fork.ID, ""}, {manager.EventForked, fork.ID, "named fork"},
		{manager.EventAppended, copied.ID, ""}, {manager.EventRenamed, copied.ID, ""}, {manager.EventForked, copied.ID, "named copy"},
	}
	ours := map[string]bool{th.ID: true, fork.ID: true, copied.ID: true}
	timeout := time.After(30 * time.Second)
	for i := 0; i < len(want); {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			if !ours[e.ThreadID] {
				continue // the parent's own appends, heard late on PostgreSQL
			}
			if e.Type != want[i].typ || e.ThreadID != want[i].id {
				t.Fatalf("event %d: %s %s, want %s %s", i, e.Type, e.ThreadID, want[i].typ, want[i].id)
			}
			if want[i].name != "" && (e.Thread == nil || e.Thread.Name != want[i].name) {
				t.Fatalf("event %d (%s): thread %+v, want it named %q", i, e.Type, e.Thread, want[i].name)
			}
			i++
		case <-timeout:
			t.Fatalf("waited 30 s for event %d (%s)", i, want[i].typ)
		}
	}
}

// testForkKeepsParentName: a fork without a name of its own is named as
// its parent is at the fork, as Codex's thread/fork names one
// (compat.TestSpoolForkKeepsParentName), by reference or by copy, in its
// row and in its file (a rebuilt index reads it); a name of its own wins,
// a fork of an unnamed thread has none, and renaming the parent later
// leaves the fork's name as it was.
func testForkKeepsParentName(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent := withTurns(t, b, 2)
	unnamed, err := b.Fork(ctx, parent.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if unnamed.Name != "" {
		t.Fatalf("fork of an unnamed thread named %q, want no name", unnamed.Name)
	}
	if _, err := b.Rename(ctx, parent.ID, "parent name"); err != nil {
		t.Fatal(err)
	}
	one := 1
	cases := []struct {
		name string
		o    manager.ForkOptions
		want string
	}{
		{"whole", manager.ForkOptions{}, "parent name"},
		{"before a message", manager.ForkOptions{BeforeUserMessage: &one}, "parent name"},
		{"copy", manager.ForkOptions{Mode: manager.ForkCopy}, "parent name"},
		{"own name", manager.ForkOptions{Name: "own name"}, "own name"},
	}
	var forks []manager.Thread
	for _, tc := range cases {
		fork, err := b.Fork(ctx, parent.ID, tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if fork.Name != tc.want {
			t.Errorf("%s fork named %q, want %q", tc.name, fork.Name, tc.want)
		}
		forks = append(forks, fork)
	}
	if _, err := b.Rename(ctx, parent.ID, "renamed parent"); err != nil {
		t.Fatal(err)
	}
	for i, fork := range forks {
		got, err := b.Get(ctx, fork.ID)
		if err != nil || got.Name != cases[i].want {
			t.Errorf("%s fork after the parent's rename: %q, %v; want %q", cases[i].name, got.Name, err, cases[i].want)
		}
	}
}

// testForkTakesItsOwnSource: a fork given a source (the client that forks,
// as Codex's thread/fork gives a fork its own process's) records it in its
// row and its own meta line, by reference or by copy, and is listed by it;
// without one it keeps its parent's. A JSON object (a spawn) is refused, and
// a retry of a keyed fork with another source reuses the key.
func testForkTakesItsOwnSource(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent := withTurns(t, b, 2) // source "cli"
	one := 1
	cases := []struct {
		name string
		o    manager.ForkOptions
		want string
	}{
		{"parent's", manager.ForkOptions{}, "cli"},
		{"own", manager.ForkOptions{Source: "exec"}, "exec"},
		{"own, before a message", manager.ForkOptions{Source: "exec", BeforeUserMessage: &one}, "exec"},
		{"own, copy", manager.ForkOptions{Source: "exec", Mode: manager.ForkCopy}, "exec"},
	}
	own := map[string]bool{}
	for _, tc := range cases {
		fork, err := b.Fork(ctx, parent.ID, tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// The fork's own meta: after its parent's history up to the cut
		// in a reference fork's, first in a copy's.
		var meta rollout.SessionMeta
		for line := range bytes.Lines(history(t, b, fork.ID)) {
			if m, err := rollout.ParseSessionMeta(bytes.TrimSuffix(line, []byte{'\n'})); err == nil && m.ID == fork.ID {
				meta = m
			}
		}
		if fork.Source != tc.want || meta.Source != tc.want {
			t.Errorf("%s: fork's source %q, its meta's %q, want %q", tc.name, fork.Source, meta.Source, tc.want)
		}
		if tc.want == "exec" {
			own[fork.ID] = true
		}
	}
	page, err := b.List(ctx, manager.ListOptions{Source: "exec", SortBy: manager.SortCreated})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, th := range page.Threads {
		listed[th.ID] = true
	}
	if !maps.Equal(listed, own) {
		t.Errorf("listed by source exec: %v, want the forks given it %v", listed, own)
	}
	if _, err := b.Fork(ctx, parent.ID, manager.ForkOptions{Source: `{"subagent":"review"}`}); !errors.Is(err, manager.ErrInvalidArgument) {
		t.Errorf("fork with a spawn as its source: %v, want ErrInvalidArgument", err)
	}
	if _, err := b.Fork(ctx, parent.ID, manager.ForkOptions{Source: "exec", IdempotencyKey: "fork-src"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Fork(ctx, parent.ID, manager.ForkOptions{Source: "mcp", IdempotencyKey: "fork-src"}); !errors.Is(err, manager.ErrIdempotencyKeyReused) {
		t.Errorf("keyed fork retried with another source: %v, want ErrIdempotencyKeyReused", err)
	}
}

// testCopyOfAReferenceFork: a copy of a reference fork is laid out as
// every backend lays out a self-contained history: its own meta, the metas
// of the parent and its fork ancestors down to the thread whose meta
// starts the history, then the parent's history to the cut.
func testCopyOfAReferenceFork(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent := withTurns(t, b, 2)
	ref := forkBefore(t, b, parent.ID, 1)
	if _, err := b.AppendWith(ctx, ref.ID, []rollout.Item{userItem("own")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	cp, err := b.Fork(ctx, ref.ID, manager.ForkOptions{Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for line := range bytes.Lines(history(t, b, cp.ID)) {
		if m, err := rollout.ParseSessionMeta(bytes.TrimSuffix(line, []byte{'\n'})); err == nil {
			ids = append(ids, m.ID)
		}
	}
	if want := []string{cp.ID, ref.ID, parent.ID, ref.ID}; !slices.Equal(ids, want) {
		t.Fatalf("the metas of a copy of a reference fork: %v, want %v (the copy, its parent, then the history's)", ids, want)
	}
}

// testForkMetaRecordsTheForkPoint: a fork's own meta records where it was
// cut (spool_fork_point), which a rebuilt local index reads: the same on
// both backends, for a reference fork and a copy.
func testForkMetaRecordsTheForkPoint(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent := withTurns(t, b, 3)
	one := 1
	for _, o := range []manager.ForkOptions{{BeforeUserMessage: &one}, {BeforeUserMessage: &one, Mode: manager.ForkCopy}, {Mode: manager.ForkCopy}} {
		fork, err := b.Fork(ctx, parent.ID, o)
		if err != nil {
			t.Fatal(err)
		}
		h := history(t, b, fork.ID)
		first, _, _ := bytes.Cut(h[fork.BaseSize:], []byte{'\n'})
		meta, err := rollout.ParseSessionMeta(first)
		if err != nil || meta.ID != fork.ID {
			t.Fatalf("fork %+v: its own first line %s (%v) is not its meta", o, first, err)
		}
		if fp := meta.ForkPoint; fp == nil || fp.UserMessage != fork.ForkUserMessage || fp.ParentOffset != fork.ForkOffset {
			t.Fatalf("fork %+v: meta's fork point %+v, want user message %d at %d", o, meta.ForkPoint, fork.ForkUserMessage, fork.ForkOffset)
		}
	}
}

// testListTextFoldsCase: a listing's text filter is a case-insensitive
// substring of the name or preview, for letters beyond ASCII too.
func testListTextFoldsCase(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	th := start(t, b)
	if _, err := b.AppendWith(ctx, th.ID, []rollout.Item{userItem("Ünïcode in Zürich"), echoItem("Ünïcode in Zürich")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	other := start(t, b)
	if _, err := b.AppendWith(ctx, other.ID, []rollout.Item{userItem("plain ascii"), echoItem("plain ascii")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		text  string
		found bool
	}{{"ünï", true}, {"ZÜRICH", true}, {"CODE IN", true}, {"zurich", false}, {"PLAIN", false}} {
		page, err := b.List(ctx, manager.ListOptions{Text: tc.text, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		found := slices.ContainsFunc(page.Threads, func(x manager.Thread) bool { return x.ID == th.ID })
		if found != tc.found {
			t.Fatalf("list with text %q: found %t, want %t (%d threads)", tc.text, found, tc.found, len(page.Threads))
		}
	}
}

// rollbackItem is Codex's marker of a rollback of n turns.
func rollbackItem(n int) rollout.Item {
	payload, _ := json.Marshal(map[string]any{"type": "thread_rolled_back", "num_turns": n})
	return rollout.Item{Type: rollout.TypeEventMsg, Payload: payload}
}

// testRollbacksDropMessages: in a legacy thread a rollback of n turns
// drops the last n user messages, as Codex counts them, from the count,
// the reads and the fork points; in a fork it reaches into the messages it
// copied. It never takes the preview back, as Codex lists the thread.
func testRollbacksDropMessages(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	th := startIn(t, b, string(rollout.HistoryLegacy))
	res, err := b.AppendWith(ctx, th.ID, []rollout.Item{userItem("one"), echoItem("one"), userItem("two"), rollbackItem(1), userItem("three")}, manager.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	texts := func(id string) []string {
		t.Helper()
		msgs, err := b.UserMessages(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range msgs {
			out = append(out, m.Preview)
		}
		return out
	}
	if got := texts(th.ID); res.Thread.UserMessageCount != 2 || !slices.Equal(got, []string{"one", "three"}) {
		t.Fatalf("after a rollback of 1: %d messages %q, want one and three", res.Thread.UserMessageCount, got)
	}
	two := 2
	if _, err := b.Fork(ctx, th.ID, manager.ForkOptions{BeforeUserMessage: &two}); !errors.Is(err, manager.ErrOutOfRange) {
		t.Fatalf("fork before message 2 of 2: %v, want ErrOutOfRange", err)
	}
	// A later append rolls back past what it adds, into earlier appends.
	if res, err = b.AppendWith(ctx, th.ID, []rollout.Item{userItem("four"), rollbackItem(2)}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := texts(th.ID); res.Thread.UserMessageCount != 1 || !slices.Equal(got, []string{"one"}) {
		t.Fatalf("after a rollback of 2: %d messages %q, want one", res.Thread.UserMessageCount, got)
	}
	// A fork's rollback reaches into what it copied.
	if _, err := b.AppendWith(ctx, th.ID, []rollout.Item{userItem("five")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	fork := forkBefore(t, b, th.ID, 1)
	res, err = b.AppendWith(ctx, fork.ID, []rollout.Item{userItem("six"), rollbackItem(2), userItem("seven")}, manager.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(fork.ID); res.Thread.UserMessageCount != 1 || !slices.Equal(got, []string{"seven"}) || res.Thread.Preview != "one" {
		t.Fatalf("fork after a rollback into its inherited messages: %d messages %q, preview %q; want seven, and preview one", res.Thread.UserMessageCount, got, res.Thread.Preview)
	}
	if got, err := b.Get(ctx, fork.ID); err != nil || got.UserMessageCount != 1 || got.Preview != "one" {
		t.Fatalf("fork as Get answers it: %+v, %v", got, err)
	}
}

// testPaginatedRollbackRefused: a rollback marker appended to a paginated
// thread is refused (Codex rejects a rollback there, and shows every turn
// past a marker: docs/CODEX.md), and nothing is written.
func testPaginatedRollbackRefused(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	th := withTurns(t, b, 2)
	before := history(t, b, th.ID)
	_, err := b.AppendWith(ctx, th.ID, []rollout.Item{userItem("three"), rollbackItem(1)}, manager.AppendOptions{})
	if !errors.Is(err, manager.ErrInvalidItem) {
		t.Fatalf("rollback of a paginated thread: %v, want ErrInvalidItem", err)
	} else if lineErr := (*manager.LineError)(nil); !errors.As(err, &lineErr) || lineErr.Line != 2 {
		t.Fatalf("a rollback as the second line: %v, want a *LineError naming line 2", err)
	}
	if after := history(t, b, th.ID); !bytes.Equal(after, before) {
		t.Fatalf("the refused append wrote %d bytes", len(after)-len(before))
	}
	if got, err := b.Get(ctx, th.ID); err != nil || got.UserMessageCount != 2 {
		t.Fatalf("after the refused rollback: %+v, %v; want its 2 messages", got, err)
	}
}

// testExpectedSizeOfAFork: AppendOptions.ExpectedSize names the size of
// the thread's history (Thread.HistorySize), which for a reference fork
// includes its base's part, not its own bytes alone.
func testExpectedSizeOfAFork(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent := withTurns(t, b, 2)
	fork := forkBefore(t, b, parent.ID, 1)
	if fork.BaseSize == 0 {
		t.Fatalf("fork of a paginated thread is not a reference fork: %+v", fork)
	}
	var mismatch *manager.SizeMismatchError
	_, err := b.AppendWith(ctx, fork.ID, []rollout.Item{userItem("lost")}, manager.AppendOptions{ExpectedSize: fork.IndexedSize})
	if !errors.As(err, &mismatch) || mismatch.Actual != fork.HistorySize() {
		t.Fatalf("append expecting the fork's own size: %v, want a size mismatch saying %d", err, fork.HistorySize())
	}
	res, err := b.AppendWith(ctx, fork.ID, []rollout.Item{userItem("kept")}, manager.AppendOptions{ExpectedSize: fork.HistorySize()})
	if err != nil {
		t.Fatalf("append expecting the fork's history size: %v", err)
	}
	if res.Offsets[0] != fork.HistorySize() {
		t.Fatalf("append at %d, want the fork's history size %d", res.Offsets[0], fork.HistorySize())
	}
}

// testRelativesAreWholeThreads: the threads lineage answers (ancestors,
// descendants, a tree's members) are the threads Get answers, every field
// (a paginated reference fork's mode and base too); a tree whose root was
// deleted still answers, with the root's id alone.
func testRelativesAreWholeThreads(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	lin := implements[manager.Lineage](t, b)
	parent := withTurns(t, b, 2)
	child := forkBefore(t, b, parent.ID, 1)
	grandchild, err := b.Fork(ctx, child.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, rels []manager.Relative, want int) {
		t.Helper()
		if len(rels) != want {
			t.Fatalf("%s: %d relatives, want %d", what, len(rels), want)
		}
		for _, r := range rels {
			got, err := b.Get(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.Thread == nil || !reflect.DeepEqual(*r.Thread, got) {
				t.Fatalf("%s: relative %s is\n%+v\nGet answers\n%+v", what, r.ID, r.Thread, got)
			}
		}
	}
	anc, err := lin.Ancestors(ctx, grandchild.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("ancestors", anc, 2)
	desc, err := lin.Descendants(ctx, parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("descendants", desc, 2)
	_, members, err := lin.Tree(ctx, grandchild.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("tree members", members, 2)

	// Copy forks do not hold their parent: the root may go.
	root := withTurns(t, b, 1)
	c1, err := b.Fork(ctx, root.ID, manager.ForkOptions{Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := b.Fork(ctx, c1.ID, manager.ForkOptions{Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, root.ID); err != nil {
		t.Fatal(err)
	}
	treeRoot, members, err := lin.Tree(ctx, c2.ID)
	if err != nil {
		t.Fatalf("tree of a thread whose root was deleted: %v", err)
	}
	if !reflect.DeepEqual(treeRoot, manager.Thread{ID: root.ID}) || len(members) != 2 {
		t.Fatalf("tree of a thread whose root was deleted: root %+v with %d members, want %s alone with 2", treeRoot, len(members), root.ID)
	}
}

// testLegacyParentForksByCopy: a legacy thread is forked by copy, whatever
// the backend could store, since Codex 0.169 cannot read a reference to a
// legacy rollout; a reference fork is refused, before its point is looked
// at. So the fork is a legacy
// thread of its own and its parent may go.
func testLegacyParentForksByCopy(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent, err := b.Start(ctx, manager.StartOptions{Cwd: "/work", Source: "cli", HistoryMode: string(rollout.HistoryLegacy)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := b.AppendWith(ctx, parent.ID, []rollout.Item{userItem(fmt.Sprintf("prompt %d", i)), answerItem("answer")}, manager.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	one := 1
	if _, err := b.Fork(ctx, parent.ID, manager.ForkOptions{BeforeUserMessage: &one, Mode: manager.ForkReference}); !errors.Is(err, manager.ErrInvalidArgument) {
		t.Fatalf("reference fork of a legacy thread: %v, want ErrInvalidArgument", err)
	}
	// The mode is refused whatever the point: a point out of range does
	// not change which error the caller gets.
	for _, mode := range []string{manager.ForkReference, "sideways"} {
		past := 7
		if _, err := b.Fork(ctx, parent.ID, manager.ForkOptions{BeforeUserMessage: &past, Mode: mode}); !errors.Is(err, manager.ErrInvalidArgument) || errors.Is(err, manager.ErrOutOfRange) {
			t.Fatalf("fork of a legacy thread in mode %q before message 7 of 2: %v, want ErrInvalidArgument", mode, err)
		}
	}
	fork, err := b.Fork(ctx, parent.ID, manager.ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatal(err)
	}
	if fork.BaseID != "" || fork.HistoryMode != string(rollout.HistoryLegacy) || fork.UserMessageCount != 1 {
		t.Fatalf("fork of a legacy thread: base %q, mode %q, %d user messages; want a legacy copy of 1", fork.BaseID, fork.HistoryMode, fork.UserMessageCount)
	}
	checkCopyOutlivesParent(t, b, parent.ID, fork.ID, 1)
}

// testForkCutInAnArchivedThread: Codex cannot load an archived thread,
// and shows a reference into one without its turns, so a fork whose cut
// lies in an archived thread's bytes copies (the parent archived, or the
// archived base of a live fork), and asking for a reference there is
// ErrArchived; a reverted thread's bytes before its revert are archived
// with it. A cut in a live thread's bytes still forks by reference.
func testForkCutInAnArchivedThread(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	base := withTurns(t, b, 2)
	live, err := b.Fork(ctx, base.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendWith(ctx, live.ID, []rollout.Item{userItem("live prompt"), echoItem("live prompt"), answerItem("live answer")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// A reverted thread's earlier bytes, archived with it.
	reverted := withTurns(t, b, 3)
	two := 2
	if _, err := reverter(t, b).Revert(ctx, reverted.ID, manager.RevertOptions{BeforeUserMessage: &two}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendWith(ctx, reverted.ID, []rollout.Item{userItem("after the revert"), echoItem("after the revert"), answerItem("answer")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{base.ID, reverted.ID} {
		if _, err := b.Archive(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		parent   string
		before   int
		mode     string
		wantBase string // "" for a copy
		wantErr  error
	}{
		{"archived parent", base.ID, 1, "", "", nil},
		{"archived parent, reference asked for", base.ID, 1, manager.ForkReference, "", manager.ErrArchived},
		{"live fork cut in its archived base", live.ID, 1, "", "", nil},
		{"live fork cut in its own bytes", live.ID, 2, "", live.ID, nil},
		{"archived reverted thread cut before its revert", reverted.ID, 1, "", "", nil},
		{"archived reverted thread, reference asked for", reverted.ID, 1, manager.ForkReference, "", manager.ErrArchived},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			child, err := b.Fork(ctx, tt.parent, manager.ForkOptions{BeforeUserMessage: &tt.before, Mode: tt.mode})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Fork = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if child.BaseID != tt.wantBase || child.Archived || child.UserMessageCount != tt.before {
				t.Fatalf("fork: base %q, archived %v, %d user messages; want base %q, live, %d", child.BaseID, child.Archived, child.UserMessageCount, tt.wantBase, tt.before)
			}
			parentSaid, childSaid := Said(t, b, tt.parent), Said(t, b, child.ID)
			if len(childSaid) == 0 || len(childSaid) > len(parentSaid) || !slices.Equal(childSaid, parentSaid[:len(childSaid)]) {
				t.Fatalf("the fork says %q, want the start of its parent's %q", childSaid, parentSaid)
			}
		})
	}
}
