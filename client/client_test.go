package client_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

// serve runs a real server over a real manager on a temporary root, on a
// loopback port, and returns a Client for it.
func serve(t *testing.T, cfg server.Config, opts ...client.Option) *client.Client {
	t.Helper()
	c, _ := serveRoot(t, t.TempDir(), cfg, nil, opts...)
	return c
}

// serveRoot runs a real server over a manager on root, serving the
// backend wrap makes of the manager (the manager itself when wrap is
// nil), and returns a Client for it. stop shuts the server and closes the
// manager, so a test can change the root's files and serve it again; the
// test's cleanup calls it too.
func serveRoot(t *testing.T, root string, cfg server.Config, wrap func(*manager.Manager) manager.Backend, opts ...client.Option) (c *client.Client, stop func()) {
	t.Helper()
	storetest.Write(t, filepath.Join(root, manager.IndexFile))
	m, err := manager.Open(t.Context(), manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	var b manager.Backend = m
	if wrap != nil {
		b = wrap(m)
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv := server.New(b, cfg)
	ts := httptest.NewServer(srv.Handler())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Drain() // ends open streams, which ts.Close waits for
			ts.Close()
			if err := m.Close(); err != nil {
				t.Errorf("close manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	c, err = client.New(ts.URL, opts...)
	if err != nil {
		t.Fatalf("client.New(%q): %v", ts.URL, err)
	}
	return c, stop
}

// userItem is a user message item, the kind forks count.
func userItem(text string) client.Item {
	payload, _ := json.Marshal(map[string]any{
		"type": "message", "role": "user",
		"content": []map[string]string{{"type": "input_text", "text": text}},
	})
	return client.Item{Type: "response_item", Payload: payload}
}

func assistantItem(text string) client.Item {
	payload, _ := json.Marshal(map[string]any{
		"type": "message", "role": "assistant",
		"content": []map[string]string{{"type": "output_text", "text": text}},
	})
	return client.Item{Type: "response_item", Payload: payload}
}

// collect drains a line iterator, failing the test on an error.
func collect(t *testing.T, seq func(func(client.Line, error) bool)) []client.Line {
	t.Helper()
	var lines []client.Line
	for l, err := range seq {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		lines = append(lines, l)
	}
	return lines
}

func TestThreadLifecycle(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()

	th, err := c.Create(ctx, client.CreateOptions{Cwd: "/p", Source: "cli", Name: "first", Git: &client.GitInfo{Branch: "main"}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if th.Name != "first" || th.Cwd != "/p" || th.Source != "cli" || th.Git.Branch != "main" || th.CreatedAt.IsZero() {
		t.Fatalf("Create = %+v, want name first, cwd /p, source cli, branch main, a creation time", th)
	}
	if th.ForkUserMessage != -1 || th.ParentID != "" {
		t.Fatalf("new thread fork point = %d, parent %q; want -1 and none", th.ForkUserMessage, th.ParentID)
	}

	res, err := c.Append(ctx, th.ID, userItem("how do I list files?"), assistantItem("ls"), userItem("and hidden ones?"))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if got, want := len(res.Offsets), 3; got != want {
		t.Fatalf("Append offsets = %v, want %d of them", res.Offsets, want)
	}
	if got, want := res.Thread.UserMessageCount, 2; got != want {
		t.Fatalf("user messages after append = %d, want %d", got, want)
	}
	// The first prompt's echo, which a thread's preview comes from (as Codex takes it).
	res2, err := c.AppendLines(ctx, th.ID, []byte(`{"type":"event_msg","payload":{"type":"user_message","message":"how do I list files?"}}`))
	if err != nil {
		t.Fatalf("AppendLines: %v", err)
	}
	if got, want := res2.Offsets[0], res.Thread.IndexedSize; got != want {
		t.Fatalf("NDJSON line offset = %d, want the previous size %d", got, want)
	}

	got, err := c.Get(ctx, th.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.IndexedSize != res2.Thread.IndexedSize || got.Preview != "how do I list files?" {
		t.Fatalf("Get = size %d preview %q, want %d and the first prompt", got.IndexedSize, got.Preview, res2.Thread.IndexedSize)
	}

	turns, err := c.Turns(ctx, th.ID)
	if err != nil {
		t.Fatalf("Turns: %v", err)
	}
	if len(turns) != 2 || turns[0].Offset != res.Offsets[0] || turns[1].Offset != res.Offsets[2] || turns[1].Preview != "and hidden ones?" {
		t.Fatalf("Turns = %+v, want the two prompts at offsets %d and %d", turns, res.Offsets[0], res.Offsets[2])
	}

	// The whole history: meta, name event, 3 items, 1 line; offsets add up
	// to the thread's size.
	all := collect(t, c.Items(ctx, th.ID, -1))
	if got, want := len(all), int(got.LineCount); got != want {
		t.Fatalf("Items(-1) gave %d lines, want line_count %d", got, want)
	}
	if all[0].Type != "session_meta" {
		t.Fatalf("first line type = %q, want session_meta", all[0].Type)
	}
	last := all[len(all)-1]
	if end := last.Offset + int64(len(last.Raw)) + 1; end != got.IndexedSize {
		t.Fatalf("last line ends at %d, want the indexed size %d", end, got.IndexedSize)
	}
	for _, l := range all {
		if l.Type == "response_item" && strings.Contains(string(l.Payload), "and hidden ones?") && l.Offset != turns[1].Offset {
			t.Fatalf("second prompt at stream offset %d, want file offset %d", l.Offset, turns[1].Offset)
		}
	}

	from1 := collect(t, c.Items(ctx, th.ID, 1))
	if len(from1) != 2 || !strings.Contains(string(from1[0].Raw), "and hidden ones?") || from1[0].Offset != 0 {
		t.Fatalf("Items(1) = %d lines starting %q at %d, want 2 starting with the second prompt at 0", len(from1), from1[0].Raw, from1[0].Offset)
	}
	turn0 := collect(t, c.Turn(ctx, th.ID, 0))
	if len(turn0) != 2 || !strings.Contains(string(turn0[1].Payload), `"assistant"`) {
		t.Fatalf("Turn(0) = %d lines, want the prompt and the answer", len(turn0))
	}

	renamed, err := c.Rename(ctx, th.ID, "renamed")
	if err != nil || renamed.Name != "renamed" {
		t.Fatalf("Rename = %q, %v; want renamed", renamed.Name, err)
	}

	archived, err := c.Archive(ctx, th.ID)
	if err != nil || !archived.Archived || archived.ArchivedAt.IsZero() {
		t.Fatalf("Archive = archived %v at %v, %v; want archived with a time", archived.Archived, archived.ArchivedAt, err)
	}
	live, err := c.List(ctx, client.ListOptions{})
	if err != nil || len(live.Threads) != 0 {
		t.Fatalf("List of live threads = %d, %v; want none while archived", len(live.Threads), err)
	}
	only, err := c.List(ctx, client.ListOptions{Archived: client.ArchivedOnly})
	if err != nil || len(only.Threads) != 1 {
		t.Fatalf("List of archived threads = %d, %v; want 1", len(only.Threads), err)
	}
	if _, err := c.Unarchive(ctx, th.ID); err != nil {
		t.Fatalf("Unarchive: %v", err)
	}

	if err := c.Delete(ctx, th.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Get(ctx, th.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
}

func TestForkAndLineage(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	parent, err := c.Create(ctx, client.CreateOptions{Name: "parent"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	res, err := c.Append(ctx, parent.ID, userItem("one"), userItem("two"), userItem("three"))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	before := 1
	child, err := c.Fork(ctx, parent.ID, client.ForkOptions{BeforeUserMessage: &before, Name: "child"})
	if err != nil {
		t.Fatalf("Fork: %v", err)
	}
	if child.ParentID != parent.ID || child.ForkUserMessage != 1 || child.ForkOffset != res.Offsets[1] || child.UserMessageCount != 1 {
		t.Fatalf("fork = parent %s, point %d at %d, %d messages; want %s, 1 at %d, 1",
			child.ParentID, child.ForkUserMessage, child.ForkOffset, child.UserMessageCount, parent.ID, res.Offsets[1])
	}
	whole, err := c.Fork(ctx, child.ID, client.ForkOptions{})
	if err != nil {
		t.Fatalf("whole Fork: %v", err)
	}
	if whole.ForkUserMessage != -1 || whole.UserMessageCount != 1 {
		t.Fatalf("whole copy = point %d, %d messages; want -1, 1", whole.ForkUserMessage, whole.UserMessageCount)
	}

	anc, err := c.Ancestors(ctx, whole.ID)
	if err != nil {
		t.Fatalf("Ancestors: %v", err)
	}
	if len(anc) != 2 || anc[0].ID != child.ID || anc[0].Depth != 1 || anc[1].ID != parent.ID || anc[1].Thread == nil || anc[1].Thread.Name != "parent" {
		t.Fatalf("Ancestors = %+v, want child at 1 then parent at 2", anc)
	}
	desc, err := c.Descendants(ctx, parent.ID)
	if err != nil || len(desc) != 2 {
		t.Fatalf("Descendants = %+v, %v; want 2", desc, err)
	}
	tree, err := c.Tree(ctx, whole.ID)
	if err != nil {
		t.Fatalf("Tree: %v", err)
	}
	if tree.Root.ID != parent.ID || len(tree.Members) != 2 {
		t.Fatalf("Tree = root %s with %d members, want %s with 2", tree.Root.ID, len(tree.Members), parent.ID)
	}
	forks, err := c.List(ctx, client.ListOptions{ParentID: parent.ID})
	if err != nil || len(forks.Threads) != 1 || forks.Threads[0].ID != child.ID {
		t.Fatalf("List(parent) = %+v, %v; want only the child", forks.Threads, err)
	}

	hits, err := c.Search(ctx, client.SearchOptions{Query: "three"})
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	if len(hits) != 1 || hits[0].ThreadID != parent.ID || hits[0].Ordinal != 2 {
		t.Fatalf("Search(three) = %+v, want the parent's message 2", hits)
	}
}

// TestSpawns reads the sub-agent lineage of a lead thread, of a
// sub-agent it spawned and of that one's own sub-agent, against a real
// server.
func TestSpawns(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	spawnedBy := func(parent string) client.CreateOptions {
		return client.CreateOptions{Source: `{"subagent":{"thread_spawn":{"parent_thread_id":"` + parent + `","depth":1}}}`}
	}
	lead, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scout, err := c.Create(ctx, spawnedBy(lead.ID))
	if err != nil {
		t.Fatal(err)
	}
	helper, err := c.Create(ctx, spawnedBy(scout.ID))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(rels []client.Relative) []string {
		var out []string
		for _, r := range rels {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		name               string
		id                 string
		spawnedBy, spawned []string
	}{
		{"lead", lead.ID, nil, []string{scout.ID, helper.ID}},
		{"scout", scout.ID, []string{lead.ID}, []string{helper.ID}},
		{"helper", helper.ID, []string{scout.ID, lead.ID}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Spawns(ctx, tc.id)
			if err != nil {
				t.Fatalf("Spawns: %v", err)
			}
			if by, sp := ids(got.SpawnedBy), ids(got.Spawns); !slices.Equal(by, tc.spawnedBy) || !slices.Equal(sp, tc.spawned) {
				t.Fatalf("Spawns = spawned by %v, spawns %v; want %v and %v", by, sp, tc.spawnedBy, tc.spawned)
			}
		})
	}
	if _, err := c.Spawns(ctx, "01a20cda-721a-7bfd-9872-ac1825beec06"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Spawns of an unknown thread: %v, want ErrNotFound", err)
	}
	for _, tc := range []struct {
		filter client.SpawnedFilter
		want   []string
	}{
		{"", []string{helper.ID, scout.ID, lead.ID}},
		{client.AnySpawn, []string{helper.ID, scout.ID, lead.ID}},
		{client.NotSpawned, []string{lead.ID}},
		{client.SpawnedOnly, []string{helper.ID, scout.ID}},
	} {
		page, err := c.List(ctx, client.ListOptions{Spawned: tc.filter})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, th := range page.Threads {
			got = append(got, th.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("List with Spawned %q: %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestThreadsPaginates(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	var want []string
	for i := range 5 {
		th, err := c.Create(ctx, client.CreateOptions{Name: fmt.Sprintf("t%d", i)})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		want = append(want, th.ID)
	}
	var got []string
	for th, err := range c.Threads(ctx, client.ListOptions{Limit: 2, Sort: client.SortCreated, Ascending: true}) {
		if err != nil {
			t.Fatalf("Threads: %v", err)
		}
		got = append(got, th.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Threads over pages of 2 = %v, want %v", got, want)
	}
	n := 0
	for range c.Threads(ctx, client.ListOptions{Limit: 2}) {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("breaking after 3 threads stopped at %d", n)
	}
}

func TestErrorsMatchSentinels(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := c.Append(ctx, th.ID, userItem("only")); err != nil {
		t.Fatalf("Append: %v", err)
	}
	archived, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := c.Archive(ctx, archived.ID); err != nil {
		t.Fatalf("Archive: %v", err)
	}
	const unknown = "01a20cda-721a-7bfd-9872-ac1825beec06"
	five := 5

	tests := []struct {
		name   string
		call   func() error
		want   error
		status int
		code   string
	}{
		{"get unknown", func() error { _, err := c.Get(ctx, unknown); return err }, client.ErrNotFound, 404, "not_found"},
		{"get bad id", func() error { _, err := c.Get(ctx, "nope"); return err }, client.ErrInvalidID, 400, "invalid_id"},
		{"fork past the end", func() error {
			_, err := c.Fork(ctx, th.ID, client.ForkOptions{BeforeUserMessage: &five})
			return err
		}, client.ErrOutOfRange, 400, "out_of_range"},
		{"items past the end", func() error {
			for _, err := range c.Items(ctx, th.ID, 5) {
				return err
			}
			return nil
		}, client.ErrOutOfRange, 400, "out_of_range"},
		{"append to archived", func() error { _, err := c.Append(ctx, archived.ID, userItem("x")); return err }, client.ErrArchived, 409, "archived"},
		{"unarchive live", func() error { _, err := c.Unarchive(ctx, th.ID); return err }, client.ErrNotArchived, 409, "not_archived"},
		{"append bad payload", func() error {
			_, err := c.Append(ctx, th.ID, client.Item{Type: "response_item", Payload: json.RawMessage(`[1]`)})
			return err
		}, client.ErrInvalidItem, 400, "invalid_item"},
		{"append nothing", func() error { _, err := c.Append(ctx, th.ID); return err }, client.ErrInvalidArgument, 400, "invalid_argument"},
		{"bad cursor", func() error { _, err := c.List(ctx, client.ListOptions{Cursor: "garbage"}); return err }, client.ErrInvalidArgument, 400, "invalid_argument"},
		{"empty search", func() error { _, err := c.Search(ctx, client.SearchOptions{}); return err }, client.ErrInvalidArgument, 400, "invalid_argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			var apiErr *client.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v is not a *client.Error", err)
			}
			if apiErr.Status != tc.status || apiErr.Code != tc.code || apiErr.Message == "" {
				t.Fatalf("error = %d %q %q, want %d %q and a message", apiErr.Status, apiErr.Code, apiErr.Message, tc.status, tc.code)
			}
			for _, other := range []error{client.ErrNotFound, client.ErrInvalidArgument, client.ErrConflict} {
				if other != tc.want && errors.Is(err, other) {
					t.Fatalf("error %v also matches %v", err, other)
				}
			}
		})
	}

	t.Run("out of range carries the count", func(t *testing.T) {
		_, err := c.Fork(ctx, th.ID, client.ForkOptions{BeforeUserMessage: &five})
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.UserMessages == nil || *apiErr.UserMessages != 1 {
			t.Fatalf("Fork(5) error = %#v, want UserMessages 1", err)
		}
	})
}

func TestToken(t *testing.T) {
	const token = "s3cret"
	tests := []struct {
		name  string
		token string
		want  error // from Get; nil for success
	}{
		{"right token", token, nil},
		{"no token", "", client.ErrUnauthorized},
		{"wrong token", "guess", client.ErrUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, server.Config{Token: token}, client.WithToken(tc.token))
			if err := c.Health(t.Context()); err != nil {
				t.Fatalf("Health needs no token, got %v", err)
			}
			_, err := c.List(t.Context(), client.ListOptions{})
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("List error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	c := serve(t, server.Config{MaxBody: 512})
	th, err := c.Create(t.Context(), client.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, err = c.Append(t.Context(), th.ID, userItem(strings.Repeat("x", 4096)))
	if !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("Append of 4 KiB to a 512 B limit: %v, want ErrTooLarge", err)
	}
}

func TestFromEnv(t *testing.T) {
	const token = "env-token"
	c := serve(t, server.Config{Token: token})
	t.Setenv("SPOOL_ADDR", strings.TrimPrefix(c.BaseURL(), "http://"))
	t.Setenv("SPOOL_TOKEN", token)
	fromEnv, err := client.FromEnv()
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if fromEnv.BaseURL() != c.BaseURL() {
		t.Fatalf("FromEnv base = %s, want %s", fromEnv.BaseURL(), c.BaseURL())
	}
	if _, err := fromEnv.List(t.Context(), client.ListOptions{}); err != nil {
		t.Fatalf("List with $SPOOL_TOKEN: %v", err)
	}
}

func TestNewAddress(t *testing.T) {
	tests := []struct {
		addr, want string
		bad        bool
	}{
		{addr: "127.0.0.1:7878", want: "http://127.0.0.1:7878"},
		{addr: "http://localhost:1/", want: "http://localhost:1"},
		{addr: "https://spool.example/api/", want: "https://spool.example/api"},
		{addr: "", bad: true},
		{addr: "ftp://host:1", bad: true},
		{addr: "http://", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			c, err := client.New(tc.addr)
			if tc.bad {
				if err == nil {
					t.Fatalf("New(%q) = %s, want an error", tc.addr, c.BaseURL())
				}
				return
			}
			if err != nil || c.BaseURL() != tc.want {
				t.Fatalf("New(%q) = %v, %v; want %s", tc.addr, c, err, tc.want)
			}
		})
	}
}

func TestNilHTTPClientIsTheDefault(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL, client.WithHTTPClient(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(t.Context()); err != nil {
		t.Fatalf("Health through WithHTTPClient(nil): %v", err)
	}
}

func TestMetricsAndOpenAPI(t *testing.T) {
	c := serve(t, server.Config{})
	metrics, err := c.Metrics(t.Context())
	if err != nil || !strings.Contains(string(metrics), "spool_index_threads") {
		t.Fatalf("Metrics = %q, %v; want spool_index_threads in it", metrics, err)
	}
	doc, err := c.OpenAPI(t.Context())
	if err != nil {
		t.Fatalf("OpenAPI: %v", err)
	}
	var parsed struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc, &parsed); err != nil || parsed.Paths["/v1/search"] == nil {
		t.Fatalf("OpenAPI document = %.80s, %v; want paths with /v1/search", doc, err)
	}
}

// A stream the server cuts inside a line cannot be provoked from a real
// spoold on demand, so this handler stands in for one that died mid-write.
func TestItemsCutShort(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"type":"session_meta","payload":{}}`+"\n"+`{"type":"resp`)
	}))
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var lines int
	var last error
	for _, err := range c.Items(t.Context(), "01a20cda-721a-7bfd-9872-ac1825beec06", -1) {
		if err != nil {
			last = err
			break
		}
		lines++
	}
	if lines != 1 || !errors.Is(last, io.ErrUnexpectedEOF) {
		t.Fatalf("cut stream gave %d lines and %v, want 1 and io.ErrUnexpectedEOF", lines, last)
	}
}

// An error answer without the API's body (a proxy's, say) still maps to a
// code and its sentinel by its status.
func TestErrorWithoutBody(t *testing.T) {
	tests := []struct {
		status int
		code   string
		want   error
	}{
		{http.StatusServiceUnavailable, client.CodeUnavailable, client.ErrUnavailable},
		{http.StatusNotImplemented, client.CodeNotSupported, client.ErrNotSupported},
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "bad gateway of some kind", tc.status)
			}))
			t.Cleanup(ts.Close)
			c, err := client.New(ts.URL)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			err = c.Health(t.Context())
			var apiErr *client.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &apiErr) || apiErr.Code != tc.code || apiErr.Message != "bad gateway of some kind" {
				t.Fatalf("Health = %v, want code %q matching %v with the body as message", err, tc.code, tc.want)
			}
		})
	}
}

// TestErrorFromAnotherServer: an error page from something that is not
// spoold (an HTML page, a long text) is not pasted whole into the error:
// the status says it, and a text is kept on one line, cut short.
func TestErrorFromAnotherServer(t *testing.T) {
	long := strings.Repeat("word ", 100)
	tests := []struct {
		name, contentType, body, want string
	}{
		{"html", "text/html; charset=utf-8", "<!DOCTYPE HTML>\n<html><body><h1>Not Found</h1>" + long + "</body></html>", "Not Found"},
		{"html without a type", "application/octet-stream", "<!doctype html><html></html>", "Not Found"},
		{"long text", "text/plain", "line one\n" + long, ("line one " + long)[:200] + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(ts.Close)
			c, err := client.New(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			var apiErr *client.Error
			if err := c.Health(t.Context()); !errors.As(err, &apiErr) || apiErr.Message != tc.want {
				t.Fatalf("Health = %v, want the message %q", err, tc.want)
			}
		})
	}
}

// TestErrorWithoutCode: an answer whose status has no code of the API (a
// proxy's 502 or 504) still reads as a sentence, without an empty code
// ("spoold:  (502): ...").
func TestErrorWithoutCode(t *testing.T) {
	for _, status := range []int{http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "upstream went away", status)
			}))
			t.Cleanup(ts.Close)
			c, err := client.New(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Health(t.Context())
			var apiErr *client.Error
			if !errors.As(err, &apiErr) || apiErr.Code != "" || apiErr.Status != status {
				t.Fatalf("Health = %#v, want an *Error of status %d without a code", err, status)
			}
			if got, want := err.Error(), fmt.Sprintf("spoold: status %d: upstream went away", status); got != want {
				t.Fatalf("Error() = %q, want %q", got, want)
			}
		})
	}
}

// A Thread decoded by the client encodes back to the server's own JSON, so
// programs (and spool ls --json) can pass it on in the API's shape.
func TestThreadJSONRoundTrip(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	parent, err := c.Create(ctx, client.CreateOptions{Cwd: "/p", Name: "n", Git: &client.GitInfo{CommitHash: "abc", Branch: "main", RepositoryURL: "git@x:y.git"}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := c.Append(ctx, parent.ID, userItem("one")); err != nil {
		t.Fatalf("Append: %v", err)
	}
	fork, err := c.Fork(ctx, parent.ID, client.ForkOptions{})
	if err != nil {
		t.Fatalf("Fork: %v", err)
	}
	if _, err := c.Archive(ctx, fork.ID); err != nil {
		t.Fatalf("Archive: %v", err)
	}
	for _, id := range []string{parent.ID, fork.ID} {
		resp, err := http.Get(c.BaseURL() + "/v1/threads/" + id)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var want map[string]any
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("server JSON: %v", err)
		}
		th, err := c.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		encoded, err := json.Marshal(th)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var got map[string]any
		if err := json.Unmarshal(encoded, &got); err != nil {
			t.Fatalf("client JSON: %v", err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("thread %s re-encoded =\n%v\nserver sent\n%v", id, got, want)
		}
	}
}

func TestHealthWhileDraining(t *testing.T) {
	m, err := manager.Open(t.Context(), manager.Options{Root: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	srv := server.New(m, server.Config{Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); m.Close() })
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := c.Health(t.Context()); err != nil {
		t.Fatalf("Health before Drain: %v", err)
	}
	srv.Drain()
	if err := c.Health(t.Context()); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("Health while draining = %v, want ErrUnavailable", err)
	}
}

// TestIdempotentCreateAndFork: CreateOptions and ForkOptions send their
// IdempotencyKey: a retry gets the first thread, another request under the
// key ErrIdempotencyKeyReused.
func TestIdempotentCreateAndFork(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	o := client.CreateOptions{Cwd: "/p", IdempotencyKey: "c1"}
	first, err := c.Create(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.Create(ctx, o); err != nil || again.ID != first.ID {
		t.Fatalf("retried create: %s, %v; want %s", again.ID, err, first.ID)
	}
	o.Cwd = "/q"
	if _, err := c.Create(ctx, o); !errors.Is(err, client.ErrIdempotencyKeyReused) {
		t.Fatalf("another create under the key: %v, want ErrIdempotencyKeyReused", err)
	}
	f := client.ForkOptions{IdempotencyKey: "f1"}
	fork, err := c.Fork(ctx, first.ID, f)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.Fork(ctx, first.ID, f); err != nil || again.ID != fork.ID {
		t.Fatalf("retried fork: %s, %v; want %s", again.ID, err, fork.ID)
	}
}

// TestThreadsStopsOnARepeatedCursor: a server (a buggy proxy's cache, say)
// that answers every page with the cursor it was asked for would keep
// Threads asking forever; the iterator yields an error instead.
func TestThreadsStopsOnARepeatedCursor(t *testing.T) {
	var requests atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 10 {
			http.Error(w, "asked too often", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"threads":[{"id":"t%d"}],"next_cursor":"same"}`, requests.Load())
	}))
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var last error
	for th, err := range c.Threads(t.Context(), client.ListOptions{}) {
		if err != nil {
			last = err
			break
		}
		ids = append(ids, th.ID)
	}
	if !slices.Equal(ids, []string{"t1", "t2"}) || last == nil || !strings.Contains(last.Error(), "cursor") {
		t.Fatalf("Threads over a repeated cursor gave %v then %v, want [t1 t2] then an error about the cursor", ids, last)
	}
}

// TestReadItemsAfter: a reader that stopped at an offset reads what was
// appended since, to the end as it is now, and an offset that is not a
// line's start is refused.
func TestReadItemsAfter(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{Cwd: "/p", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Append(ctx, th.ID, userItem("one"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Append(ctx, th.ID, userItem("two"), assistantItem("three"))
	if err != nil {
		t.Fatal(err)
	}
	readAfter := func(offset int64) (string, error) {
		r, err := c.ReadItemsAfter(ctx, th.ID, offset)
		if err != nil {
			return "", err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		return string(b), err
	}
	whole, err := readAfter(0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(whole)) != second.Thread.IndexedSize {
		t.Fatalf("read from 0: %d bytes, want the thread's %d", len(whole), second.Thread.IndexedSize)
	}
	since, err := readAfter(second.Offsets[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := whole[second.Offsets[0]:]; since != want {
		t.Fatalf("read after %d = %q, want %q", second.Offsets[0], since, want)
	}
	if !strings.Contains(since, `"two"`) || strings.Contains(since, `"one"`) {
		t.Fatalf("read after the first append = %q, want the second append alone", since)
	}
	atEnd, err := readAfter(second.Thread.IndexedSize)
	if err != nil || atEnd != "" {
		t.Fatalf("read at the end = %q, %v; want nothing", atEnd, err)
	}
	for _, bad := range []int64{first.Offsets[0] + 1, second.Thread.IndexedSize + 1, -1} {
		if _, err := readAfter(bad); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("read after %d: err = %v, want ErrInvalidArgument", bad, err)
		}
	}
}
