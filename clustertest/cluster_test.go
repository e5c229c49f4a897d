//go:build distributed

// Package clustertest runs several real spoold processes over one
// PostgreSQL and one S3 gateway (scripts/test-distributed.sh starts both)
// and checks what #17 promises of them: contiguous offsets whichever node
// appends, forks that read the same on every node, and nothing
// acknowledged lost when a node is killed.
package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/backendtest"
	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/internal/spooldtest"
	"github.com/spoolhq/spool/internal/testbin"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/pgstore"
)

var spooldBin string

func TestMain(m *testing.M) {
	os.Exit(testbin.Run(m, "github.com/spoolhq/spool/cmd/spoold", &spooldBin))
}

// cluster is a database and a bucket that nodes serve.
type cluster struct {
	dsn string
	s3  objstore.S3Config
}

func newCluster(t *testing.T) cluster {
	return cluster{dsn: disttest.DSN(t), s3: disttest.S3Config(t)}
}

// node is a running spoold.
type node struct {
	*spooldtest.Process
	client *client.Client
}

// start runs a spoold on c with extra flags and waits for its listening
// line.
func (c cluster) start(t *testing.T, extra ...string) *node {
	t.Helper()
	args := append([]string{"-pg", c.dsn, "-s3", c.s3.Endpoint, "-s3-bucket", c.s3.Bucket,
		"-segment-cache", filepath.Join(t.TempDir(), "segments")}, extra...)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"SPOOL_S3_ACCESS_KEY=" + c.s3.AccessKey, "SPOOL_S3_SECRET_KEY=" + c.s3.SecretKey}
	p := spooldtest.Start(t, spooldBin, spooldtest.Options{Args: args, Env: env})
	cl, err := client.New(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &node{Process: p, client: cl}
}

// ack is an acknowledged append: where the server said its line went.
type ack struct {
	offset int64
	text   string
}

// item is an assistant line carrying text.
func item(text string) client.Item {
	payload, _ := json.Marshal(map[string]any{"type": "message", "role": "assistant",
		"content": []map[string]string{{"type": "output_text", "text": text}}})
	return client.Item{Type: "response_item", Payload: payload}
}

// userItem is a user message.
func userItem(text string) client.Item {
	payload, _ := json.Marshal(map[string]any{"type": "message", "role": "user",
		"content": []map[string]string{{"type": "input_text", "text": text}}})
	return client.Item{Type: "response_item", Payload: payload}
}

// readAll reads thread id's whole history through c.
func readAll(t *testing.T, c *client.Client, id string) []byte {
	t.Helper()
	rc, err := c.ReadItems(t.Context(), id, -1)
	return backendtest.ReadAll(t, rc, err)
}

// checkAcks fails unless every ack's line is at its offset of h and h holds
// nothing but the first line and the acknowledged ones.
func checkAcks(t *testing.T, h []byte, acks []ack, unacked int) {
	t.Helper()
	for _, a := range acks {
		line, _, _ := bytes.Cut(h[a.offset:], []byte("\n"))
		if !bytes.Contains(line, []byte(fmt.Sprintf("%q", a.text))) {
			t.Fatalf("acknowledged %q at %d; the history has %q there", a.text, a.offset, line)
		}
	}
	lines := bytes.Count(h, []byte("\n"))
	if lines < 1+len(acks) || lines > 1+len(acks)+unacked {
		t.Fatalf("%d lines: want the meta, the %d acknowledged and at most %d whose answer was lost", lines, len(acks), unacked)
	}
}

// verify checks the database and bucket with pgstore.Verify.
func (c cluster) verify(t *testing.T) {
	t.Helper()
	bucket, err := objstore.OpenS3(t.Context(), c.s3)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgstore.Open(t.Context(), c.dsn, pgstore.Options{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	problems, err := s.Verify(t.Context())
	if err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v, %v", problems, err)
	}
}

// TestThreeNodesAppendToOneThread: concurrent appends to one thread through
// three nodes get contiguous offsets and every acknowledged line is where
// it was acknowledged, read through any node; a fork made on one node reads
// byte-identical on the others.
func TestThreeNodesAppendToOneThread(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.start(t), c.start(t), c.start(t)}
	th, err := nodes[0].client.Create(t.Context(), client.CreateOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].client.Append(t.Context(), th.ID, userItem("first prompt")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	for n, nd := range nodes {
		for w := range 4 {
			wg.Go(func() {
				for i := range 20 {
					text := fmt.Sprintf("node %d writer %d line %d", n, w, i)
					res, err := nd.client.Append(t.Context(), th.ID, item(text))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					acks = append(acks, ack{res.Offsets[0], text})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	h := readAll(t, nodes[2].client, th.ID)
	// The first prompt is an acknowledged line too.
	checkAcks(t, h, acks, 1)
	if bytes.Count(h, []byte("\n")) != 2+len(acks) {
		t.Fatalf("%d lines, want the meta, the prompt and %d appends: offsets are not contiguous", bytes.Count(h, []byte("\n")), len(acks))
	}

	// A fork made on node 1 reads the same on every node.
	if _, err := nodes[1].client.Append(t.Context(), th.ID, userItem("second prompt")); err != nil {
		t.Fatal(err)
	}
	one := 1
	fork, err := nodes[1].client.Fork(t.Context(), th.ID, client.ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, nodes[1].client, fork.ID)
	for i, nd := range nodes {
		if got := readAll(t, nd.client, fork.ID); !bytes.Equal(got, want) {
			t.Fatalf("node %d reads the fork as %d bytes, node 1 as %d", i, len(got), len(want))
		}
	}
	if !bytes.HasPrefix(want, h) {
		t.Fatal("the fork before the second prompt does not start with the parent's history before it")
	}
	c.verify(t)
}

// TestKilledNodeLosesNothingAcknowledged: a node is killed with SIGKILL in
// the middle of appends through all three; every append any node
// acknowledged is in the history afterwards, the other nodes go on, and
// the database verifies clean.
func TestKilledNodeLosesNothingAcknowledged(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.start(t), c.start(t), c.start(t)}
	th, err := nodes[0].client.Create(t.Context(), client.CreateOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acks []ack
	var failed int
	halfway := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for n, nd := range nodes {
		for w := range 3 {
			wg.Go(func() {
				for i := range 40 {
					text := fmt.Sprintf("node %d writer %d line %d", n, w, i)
					ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
					res, err := nd.client.Append(ctx, th.ID, item(text))
					cancel()
					mu.Lock()
					if err != nil {
						failed++
						mu.Unlock()
						if n == 0 {
							return // its node is gone
						}
						t.Errorf("node %d: %v", n, err)
						return
					}
					acks = append(acks, ack{res.Offsets[0], text})
					if n == 0 && i == 10 {
						once.Do(func() { close(halfway) })
					}
					mu.Unlock()
				}
			})
		}
	}
	<-halfway
	nodes[0].Kill(t)
	wg.Wait()
	if failed == 0 {
		t.Fatal("no append failed on the killed node: it was killed too late to prove anything")
	}
	h := readAll(t, nodes[1].client, th.ID)
	// An append in flight when the node died may have committed without
	// its answer reaching the writer: at most one per writer of node 0.
	checkAcks(t, h, acks, 3)
	c.verify(t)
	t.Logf("%d acknowledged, %d failed with the node", len(acks), failed)
}

// TestFollowAcrossNodes: a reader following a thread on one node sees
// every line appended through the others, in order, as the history holds
// them.
func TestFollowAcrossNodes(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.start(t), c.start(t), c.start(t)}
	th, err := nodes[0].client.Create(t.Context(), client.CreateOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	const appends = 30
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	got := make(chan []byte)
	go func() {
		var lines []byte
		defer func() { got <- lines }()
		for l, err := range nodes[1].client.Follow(ctx, th.ID, 0) {
			if err != nil {
				return
			}
			lines = append(lines, l.Raw...)
			lines = append(lines, '\n')
			if bytes.Count(lines, []byte("\n")) == 1+appends {
				return
			}
		}
	}()
	for i := range appends {
		nd := nodes[[]int{0, 2}[i%2]]
		if _, err := nd.client.Append(t.Context(), th.ID, item(fmt.Sprintf("line %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	followed := <-got
	if want := readAll(t, nodes[2].client, th.ID); !bytes.Equal(followed, want) {
		t.Fatalf("the follower on node 1 saw %d bytes (%d lines), the history has %d", len(followed), bytes.Count(followed, []byte("\n")), len(want))
	}
}
