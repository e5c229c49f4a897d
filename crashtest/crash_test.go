package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Knobs of TestCrash. SPOOL_CRASH_KILLS sets how many times the server is
// killed (make crash sets 25); SPOOL_CRASH_SEED replays a logged run's
// choices (the interleaving of the clients is up to the scheduler).
const (
	killsEnv     = "SPOOL_CRASH_KILLS"
	seedEnv      = "SPOOL_CRASH_SEED"
	defaultKills = 3

	crashClients = 4
	// Each round kills the server after K acknowledged operations, K drawn
	// from [minKillAfter, maxKillAfter).
	minKillAfter = 20
	maxKillAfter = 120
	// maxClientOps bounds a client's operations in one round, so a round
	// ends even if the kill point is never reached.
	maxClientOps = 400
	// checkTimeout bounds the checks made after a restart.
	checkTimeout = 2 * time.Minute
)

// envInt reads a positive integer from the environment, or returns def.
func envInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, s)
	}
	return n
}

// TestCrash runs spoold with -sync always under a mixed load from several
// clients, kills it with SIGKILL after a random number of acknowledged
// operations, restarts it and checks that nothing acknowledged was lost:
// every acknowledged append is in its thread's history at its offset, in
// order; every line a reader gets is one complete JSON object; every
// acknowledged fork is its meta plus a prefix of its parent; names and
// archive states are the last acknowledged ones; and, with the server
// stopped, the index agrees with the files (indexer.Verify, and reindex
// --verify).
func TestCrash(t *testing.T) {
	spoold, err := buildCommand(&spooldBin, "spoold")
	if err != nil {
		t.Fatal(err)
	}
	reindex, reindexErr := buildCommand(&reindexBin, "reindex")
	if reindexErr != nil {
		t.Logf("cmd/reindex does not build; only the in-process indexer.Verify runs: %v", reindexErr)
	}
	kills := int(envInt(t, killsEnv, defaultKills))
	seed := envInt(t, seedEnv, time.Now().UnixNano())
	t.Logf("seed %d (replay with %s=%d), %d kills", seed, seedEnv, seed, kills)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	root := t.TempDir()
	w := &world{threads: make(map[string]*thread)}
	for round := range kills {
		killAfter := minKillAfter + rng.IntN(maxKillAfter-minKillAfter)
		srv := startSpoold(t, spoold, root, "-capacity", "8")
		c := newClient(srv.base)
		acked := w.load(t, c, srv, round, killAfter, rng.Uint64())
		c.close()
		if t.Failed() {
			t.Fatalf("round %d: the load failed before the kill; spoold's last log lines:\n%s", round, srv.logTail())
		}
		torn := ""
		if rng.IntN(2) == 0 {
			torn = w.injectTornTail(t, root, round, rng)
		}
		t.Logf("round %d: killed after %d acknowledged operations (target %d); %d threads; torn tail injected into %q",
			round, acked, killAfter, len(w.order), torn)

		srv = startSpoold(t, spoold, root, "-capacity", "8")
		c = newClient(srv.base)
		w.check(t, c, round)
		c.close()
		srv.Stop(t)
		verifyIndex(t, root, reindex)
		if t.Failed() {
			t.Fatalf("round %d failed (seed %d)", round, seed)
		}
	}
}

// world is what the clients were told: every acknowledged operation.
type world struct {
	mu      sync.Mutex
	threads map[string]*thread // guarded by mu
	order   []string           // guarded by mu: thread ids, in creation order
}

// thread is the acknowledged state of one thread. Its fields are guarded
// by world.mu. Only its owner appends to, renames or archives it, so the
// order of its acknowledged appends is the order of their offsets.
type thread struct {
	id           string
	owner        int
	appends      []ackedAppend
	userMessages int       // a lower bound: counts never shrink (no rollbacks here)
	fork         *forkInfo // set for threads created by a fork

	name        string
	pendingName string // a rename that was in flight when the server died

	archived         bool
	archiveUncertain bool // an archive or unarchive was in flight when the server died
}

type ackedAppend struct {
	text   string
	offset int64
}

type forkInfo struct {
	parent string
	before int   // the user message cut before, -1 for a whole copy
	offset int64 // the cut in the parent's file
}

// Shapes of the API's JSON bodies used here.
type (
	textPart struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	messagePayload struct {
		Type    string     `json:"type"`
		Role    string     `json:"role"`
		Content []textPart `json:"content"`
	}
	appendItem struct {
		Type    string         `json:"type"`
		Payload messagePayload `json:"payload"`
	}
	appendRequest struct {
		Items []appendItem `json:"items"`
	}
	forkRequest struct {
		BeforeUserMessage *int `json:"before_user_message,omitempty"`
	}
)

// load drives crashClients clients against c until killAfter operations
// were acknowledged, then kills the server with SIGKILL and waits for the
// clients to notice. It returns how many operations were acknowledged.
func (w *world) load(t *testing.T, c *client, srv *spoold, round, killAfter int, seed uint64) int64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		acks     atomic.Int64
		killed   atomic.Bool
		killOnce sync.Once
		killNow  = make(chan struct{})
		wg       sync.WaitGroup
	)
	ack := func() {
		if acks.Add(1) == int64(killAfter) {
			killOnce.Do(func() { close(killNow) })
		}
	}
	for id := range crashClients {
		cl := &loadClient{
			w: w, c: c, id: id, round: round, ack: ack,
			rng: rand.New(rand.NewPCG(seed, uint64(id))),
		}
		wg.Go(func() {
			for op := range maxClientOps {
				if ctx.Err() != nil {
					return
				}
				if err := cl.step(ctx, op); err != nil {
					if !killed.Load() {
						t.Errorf("round %d client %d op %d: %v", round, id, op, err)
					}
					return
				}
			}
		})
	}
	clientsDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(clientsDone)
	}()
	select {
	case <-killNow:
	case <-clientsDone:
	}
	killed.Store(true)
	srv.Kill(t)
	cancel()
	<-clientsDone
	return acks.Load()
}

// loadClient is one client goroutine of a round.
type loadClient struct {
	w     *world
	c     *client
	id    int
	round int
	rng   *rand.Rand
	ack   func()
}

// step makes one operation. An error ends the client: after the kill it is
// expected, before it the test fails.
func (cl *loadClient) step(ctx context.Context, op int) error {
	own := cl.ownThreads()
	r := cl.rng.IntN(100)
	switch {
	case len(own) == 0 || r < 8:
		return cl.create(ctx)
	case r < 62:
		var live []*thread
		for _, th := range own {
			if !th.archived {
				live = append(live, th)
			}
		}
		if len(live) == 0 {
			return cl.setArchived(ctx, own[cl.rng.IntN(len(own))])
		}
		return cl.append(ctx, live[cl.rng.IntN(len(live))], op)
	case r < 74:
		return cl.fork(ctx)
	case r < 84:
		return cl.rename(ctx, own[cl.rng.IntN(len(own))], op)
	case r < 94:
		return cl.setArchived(ctx, own[cl.rng.IntN(len(own))])
	default:
		return cl.read(ctx)
	}
}

// ownThreads returns the client's threads in creation order.
func (cl *loadClient) ownThreads() []*thread {
	cl.w.mu.Lock()
	defer cl.w.mu.Unlock()
	var own []*thread
	for _, id := range cl.w.order {
		if th := cl.w.threads[id]; th.owner == cl.id {
			own = append(own, th)
		}
	}
	return own
}

func (w *world) add(th *thread) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.threads[th.id] = th
	w.order = append(w.order, th.id)
}

func (cl *loadClient) create(ctx context.Context) error {
	var got api.Thread
	// Legacy threads: the checks below look at fork files as copies.
	body := map[string]string{"cwd": fmt.Sprintf("/crash/client-%d", cl.id), "originator": "crashtest", "history_mode": "legacy"}
	if err := cl.c.call(ctx, http.MethodPost, "/v1/threads", body, http.StatusCreated, &got); err != nil {
		return err
	}
	cl.w.add(&thread{id: got.ID, owner: cl.id})
	cl.ack()
	return nil
}

// append appends one to three messages with unique texts in one request.
func (cl *loadClient) append(ctx context.Context, th *thread, op int) error {
	n := 1 + cl.rng.IntN(3)
	req := appendRequest{Items: make([]appendItem, n)}
	for i := range req.Items {
		role, part := "user", "input_text"
		if cl.rng.IntN(3) == 0 {
			role, part = "assistant", "output_text"
		}
		text := fmt.Sprintf("round %d client %d op %d item %d: \"quoted\" ünïcode ✓ \\ tab\t", cl.round, cl.id, op, i)
		req.Items[i] = appendItem{Type: rollout.TypeResponseItem, Payload: messagePayload{
			Type: "message", Role: role, Content: []textPart{{Type: part, Text: text}},
		}}
	}
	var got manager.AppendResult
	if err := cl.c.call(ctx, http.MethodPost, "/v1/threads/"+th.id+"/items", req, http.StatusOK, &got); err != nil {
		return err
	}
	if len(got.Offsets) != n {
		return fmt.Errorf("append %d items to %s: %d offsets returned", n, th.id, len(got.Offsets))
	}
	cl.w.mu.Lock()
	for i, off := range got.Offsets {
		th.appends = append(th.appends, ackedAppend{text: req.Items[i].Payload.Content[0].Text, offset: off})
	}
	th.userMessages = max(th.userMessages, got.Thread.UserMessageCount)
	cl.w.mu.Unlock()
	cl.ack()
	return nil
}

// fork forks any thread (other clients' too), before a random known user
// message or as a whole copy.
func (cl *loadClient) fork(ctx context.Context) error {
	cl.w.mu.Lock()
	parent := cl.w.threads[cl.w.order[cl.rng.IntN(len(cl.w.order))]]
	parentID, known := parent.id, parent.userMessages
	cl.w.mu.Unlock()

	var req forkRequest
	before := -1
	if known > 0 && cl.rng.IntN(3) > 0 {
		before = cl.rng.IntN(known)
		req.BeforeUserMessage = &before
	}
	var got api.Thread
	if err := cl.c.call(ctx, http.MethodPost, "/v1/threads/"+parentID+"/fork", req, http.StatusCreated, &got); err != nil {
		return err
	}
	if got.ParentID != parentID || got.ForkUserMessage != before {
		return fmt.Errorf("fork of %s before %d: got parent %q, fork_user_message %d", parentID, before, got.ParentID, got.ForkUserMessage)
	}
	cl.w.add(&thread{
		id: got.ID, owner: cl.id, userMessages: got.UserMessageCount,
		name: got.Name, // the parent's, as Codex names a fork
		fork: &forkInfo{parent: parentID, before: before, offset: got.ForkOffset},
	})
	cl.ack()
	return nil
}

func (cl *loadClient) rename(ctx context.Context, th *thread, op int) error {
	name := fmt.Sprintf("round %d client %d op %d ✓", cl.round, cl.id, op)
	cl.w.mu.Lock()
	th.pendingName = name
	cl.w.mu.Unlock()
	var got api.Thread
	if err := cl.c.call(ctx, http.MethodPatch, "/v1/threads/"+th.id, map[string]string{"name": name}, http.StatusOK, &got); err != nil {
		return err
	}
	if got.Name != name {
		return fmt.Errorf("rename %s to %q: got %q", th.id, name, got.Name)
	}
	cl.w.mu.Lock()
	th.name, th.pendingName = name, ""
	cl.w.mu.Unlock()
	cl.ack()
	return nil
}

func (cl *loadClient) setArchived(ctx context.Context, th *thread) error {
	cl.w.mu.Lock()
	archive := !th.archived
	th.archiveUncertain = true
	cl.w.mu.Unlock()
	action := "unarchive"
	if archive {
		action = "archive"
	}
	var got api.Thread
	if err := cl.c.call(ctx, http.MethodPost, "/v1/threads/"+th.id+"/"+action, nil, http.StatusOK, &got); err != nil {
		return err
	}
	if got.Archived != archive {
		return fmt.Errorf("%s %s: archived = %v", action, th.id, got.Archived)
	}
	cl.w.mu.Lock()
	th.archived, th.archiveUncertain = archive, false
	cl.w.mu.Unlock()
	cl.ack()
	return nil
}

// read streams a random thread's history while others write, and checks
// that it is made of complete lines.
func (cl *loadClient) read(ctx context.Context) error {
	cl.w.mu.Lock()
	id := cl.w.order[cl.rng.IntN(len(cl.w.order))]
	cl.w.mu.Unlock()
	body, err := cl.c.items(ctx, id)
	if err != nil {
		return err
	}
	return checkStream(body)
}

// checkStream checks that a history stream is made of complete lines,
// each one JSON object.
func checkStream(body []byte) error {
	if len(body) > 0 && body[len(body)-1] != '\n' {
		return fmt.Errorf("stream of %d bytes does not end with a newline: torn line %q", len(body), tail(body))
	}
	for off := 0; off < len(body); {
		end := bytes.IndexByte(body[off:], '\n')
		line := body[off : off+end]
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			return fmt.Errorf("line at offset %d is not a JSON object: %v: %q", off, err, tail(line))
		}
		off += end + 1
	}
	return nil
}

// tail returns the last bytes of b, for messages.
func tail(b []byte) []byte {
	const n = 120
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// lineAt returns the line of body starting at off, without its newline.
func lineAt(body []byte, off int64) ([]byte, error) {
	if off < 0 || off >= int64(len(body)) {
		return nil, fmt.Errorf("offset %d outside the %d-byte history", off, len(body))
	}
	if off > 0 && body[off-1] != '\n' {
		return nil, fmt.Errorf("offset %d is not the start of a line", off)
	}
	end := bytes.IndexByte(body[off:], '\n')
	if end < 0 {
		return nil, fmt.Errorf("line at offset %d has no newline", off)
	}
	return body[off : off+int64(end)], nil
}

// injectTornTail simulates a write cut short by a crash: half a line at the
// end of a random thread's file, written while the server is down. It
// returns the thread's id, or "" when no thread's file was found.
func (w *world) injectTornTail(t *testing.T, root string, round int, rng *rand.Rand) string {
	t.Helper()
	w.mu.Lock()
	var ids []string
	for _, id := range w.order {
		if !w.threads[id].archiveUncertain {
			ids = append(ids, id)
		}
	}
	w.mu.Unlock()
	if len(ids) == 0 {
		return ""
	}
	id := ids[rng.IntN(len(ids))]
	paths, err := indexer.Walk(context.Background(), rolloutfs.Local{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range paths {
		fileID, _, err := rollout.ParseFileName(path.Base(rel))
		if err != nil || fileID != id {
			continue
		}
		f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(rel)), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		torn := fmt.Sprintf(`{"timestamp":"2026-01-01T00:00:00.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"torn tail of round %d`, round)
		if _, err := f.WriteString(torn); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return id
	}
	return ""
}

// check compares every thread the clients were told about with what the
// restarted server serves, and settles what was in flight at the kill.
func (w *world) check(t *testing.T, c *client, round int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	w.mu.Lock()
	defer w.mu.Unlock()

	histories := make(map[string][]byte)
	history := func(id string) ([]byte, error) {
		if body, ok := histories[id]; ok {
			return body, nil
		}
		body, err := c.items(ctx, id)
		if err == nil {
			histories[id] = body
		}
		return body, err
	}
	for _, id := range w.order {
		th := w.threads[id]
		var got api.Thread
		if err := c.call(ctx, http.MethodGet, "/v1/threads/"+id, nil, http.StatusOK, &got); err != nil {
			t.Errorf("round %d: acknowledged thread %s: %v", round, id, err)
			continue
		}
		w.checkState(t, round, th, got)
		body, err := history(id)
		if err != nil {
			t.Errorf("round %d: read thread %s: %v", round, id, err)
			continue
		}
		if err := checkStream(body); err != nil {
			t.Errorf("round %d: thread %s: %v", round, id, err)
			continue
		}
		if int64(len(body)) != got.IndexedSize {
			t.Errorf("round %d: thread %s: history has %d bytes, indexed size is %d", round, id, len(body), got.IndexedSize)
		}
		if bytes.Contains(body, []byte("torn tail of round")) {
			t.Errorf("round %d: thread %s: an injected torn tail is visible to readers", round, id)
		}
		checkAppends(t, round, th, body)
		if th.fork != nil {
			parent, err := history(th.fork.parent)
			if err != nil {
				t.Errorf("round %d: read parent %s of fork %s: %v", round, th.fork.parent, id, err)
				continue
			}
			checkFork(t, round, th, body, parent)
		}
	}
}

// checkState compares name and archive state, settling the ones that were
// in flight at the kill with what the server says.
func (w *world) checkState(t *testing.T, round int, th *thread, got api.Thread) {
	t.Helper()
	switch {
	case got.Name == th.name:
	case th.pendingName != "" && got.Name == th.pendingName:
		th.name = got.Name
	default:
		t.Errorf("round %d: thread %s: name %q, want the acknowledged %q (or the unacknowledged %q)",
			round, th.id, got.Name, th.name, th.pendingName)
	}
	th.pendingName = ""
	if got.Archived != th.archived {
		if !th.archiveUncertain {
			t.Errorf("round %d: thread %s: archived = %v, want the acknowledged %v", round, th.id, got.Archived, th.archived)
		}
		th.archived = got.Archived
	}
	th.archiveUncertain = false
	th.userMessages = max(th.userMessages, got.UserMessageCount)
}

// checkAppends checks that each acknowledged append is at its offset, in
// acknowledgement order.
func checkAppends(t *testing.T, round int, th *thread, body []byte) {
	t.Helper()
	prev := int64(-1)
	for i, a := range th.appends {
		if a.offset <= prev {
			t.Errorf("round %d: thread %s: append %d acknowledged at offset %d, not after the previous one at %d", round, th.id, i, a.offset, prev)
		}
		prev = a.offset
		line, err := lineAt(body, a.offset)
		if err != nil {
			t.Errorf("round %d: thread %s: acknowledged append %d (%q): %v", round, th.id, i, a.text, err)
			continue
		}
		var item appendItem
		if err := json.Unmarshal(line, &item); err != nil || len(item.Payload.Content) != 1 || item.Payload.Content[0].Text != a.text {
			t.Errorf("round %d: thread %s: acknowledged append %d at offset %d: want text %q, line is %q", round, th.id, i, a.offset, a.text, tail(line))
		}
	}
}

// checkFork checks that a fork's history is its own meta line followed by
// its parent's history up to the cut, and that the cut is where the parent's
// user message was.
func checkFork(t *testing.T, round int, th *thread, body, parent []byte) {
	t.Helper()
	fk := th.fork
	metaEnd := bytes.IndexByte(body, '\n')
	if metaEnd < 0 {
		t.Errorf("round %d: fork %s: empty history", round, th.id)
		return
	}
	meta, err := rollout.ParseSessionMeta(body[:metaEnd])
	if err != nil {
		t.Errorf("round %d: fork %s: first line: %v", round, th.id, err)
		return
	}
	if meta.ID != th.id || meta.ForkedFromID != fk.parent {
		t.Errorf("round %d: fork %s: meta id %s forked_from_id %s, want %s and %s", round, th.id, meta.ID, meta.ForkedFromID, th.id, fk.parent)
	}
	rest := body[metaEnd+1:]
	if fk.offset < 0 || fk.offset > int64(len(rest)) || fk.offset > int64(len(parent)) {
		t.Errorf("round %d: fork %s: cut %d, but the fork holds %d bytes after its meta and the parent %d",
			round, th.id, fk.offset, len(rest), len(parent))
		return
	}
	if !bytes.Equal(rest[:fk.offset], parent[:fk.offset]) {
		t.Errorf("round %d: fork %s: the %d bytes after its meta are not its parent %s's first %d bytes", round, th.id, fk.offset, fk.parent, fk.offset)
	}
	if fk.before < 0 {
		return
	}
	msgs, err := rollout.CountUserMessages(bytes.NewReader(parent))
	if err != nil {
		t.Errorf("round %d: parent %s: %v", round, fk.parent, err)
		return
	}
	if fk.before >= len(msgs) || msgs[fk.before].Offset != fk.offset {
		t.Errorf("round %d: fork %s before user message %d of %s: cut at %d, but the parent's %d user messages are at %v",
			round, th.id, fk.before, fk.parent, fk.offset, len(msgs), messageOffsets(msgs))
	}
}

func messageOffsets(msgs []rollout.UserMessage) []int64 {
	offs := make([]int64, len(msgs))
	for i, m := range msgs {
		offs[i] = m.Offset
	}
	return offs
}

// verifyIndex checks, with the server stopped, that the index agrees with
// the files: indexer.Verify in process, then reindex --verify when the
// command builds.
func verifyIndex(t *testing.T, root, reindex string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(root, manager.IndexFile))
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	rep, err := indexer.Verify(ctx, st, rolloutfs.Local{Root: root})
	if cerr := st.Close(); cerr != nil {
		t.Errorf("close index: %v", cerr)
	}
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, d := range rep.Drifts {
		t.Errorf("index drift: %v", d)
	}
	problems := make([]string, len(rep.Problems))
	for i, p := range rep.Problems {
		problems[i] = p.String()
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Logf("verify problem (not drift): %s", p)
	}
	if reindex == "" {
		return
	}
	out, err := exec.Command(reindex, "--root", root, "--verify").CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		t.Errorf("reindex --root %s --verify: exit code %d, want 0:\n%s", root, exitErr.ExitCode(), out)
	case err != nil:
		t.Errorf("reindex --verify: %v", err)
	}
}
