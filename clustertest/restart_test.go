//go:build distributed

package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolhq/spool/client"
)

// TestSurvivesRestarts restarts PostgreSQL, then the S3 gateway, under
// load from two nodes whose sealer runs after every kilobyte. Appends
// during an outage may fail, answered 503 unavailable (or not at all, a
// timeout); the writers go on, and appends succeed again
// once the server is back without restarting a node. Afterwards every
// acknowledged line is in the history and the database verifies clean.
//
// It stops the servers the other tests use, so scripts/test-distributed.sh
// runs it alone, after them, with the servers' directories and ports in
// SPOOL_TEST_PG_DIR, SPOOL_TEST_PG_PORT, SPOOL_TEST_S3_DIR and
// SPOOL_TEST_S3_PORT.
func TestSurvivesRestarts(t *testing.T) {
	env := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			t.Fatalf("%s is not set: run `make test-distributed`, which runs this test with the servers it may restart", name)
		}
		return v
	}
	pgDir, pgPort, s3Dir, s3Port := env("SPOOL_TEST_PG_DIR"), env("SPOOL_TEST_PG_PORT"), env("SPOOL_TEST_S3_DIR"), env("SPOOL_TEST_S3_PORT")
	c := newCluster(t)
	nodes := []*node{c.start(t, "-seal-bytes", "1KiB"), c.start(t, "-seal-bytes", "1KiB")}
	th, err := nodes[0].client.Create(t.Context(), client.CreateOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		acks []ack
		// refusals are the failed appends answered other than 503
		// unavailable.
		refusals []error
		failed   atomic.Int64
		acked    atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
		// progress is signalled after every acknowledged or failed append.
		progress = make(chan struct{}, 1)
	)
	signal := func() {
		select {
		case progress <- struct{}{}:
		default:
		}
	}
	for n, nd := range nodes {
		for w := range 2 {
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					text := fmt.Sprintf("node %d writer %d line %d", n, w, i)
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					res, err := nd.client.Append(ctx, th.ID, item(text))
					cancel()
					if err != nil {
						var apiErr *client.Error
						if errors.As(err, &apiErr) && apiErr.Code != "unavailable" {
							mu.Lock()
							refusals = append(refusals, err)
							mu.Unlock()
						}
						failed.Add(1)
						signal()
						continue
					}
					mu.Lock()
					acks = append(acks, ack{res.Offsets[0], text})
					mu.Unlock()
					acked.Add(1)
					signal()
				}
			})
		}
	}
	// waitFor waits until the writers' counters satisfy cond, woken by
	// each append's outcome.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.After(90 * time.Second)
		for !cond() {
			select {
			case <-progress:
			case <-deadline:
				stop.Store(true)
				wg.Wait()
				t.Fatalf("waited 90 s for %s (%d acknowledged, %d failed)", what, acked.Load(), failed.Load())
			}
		}
	}
	script := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	for _, outage := range []struct {
		name        string
		stop, start []string
		mustFail    bool
	}{
		// Appends need PostgreSQL: some must fail while it is down.
		{"PostgreSQL", []string{"../scripts/pg.sh", "stop", pgDir}, []string{"../scripts/pg.sh", "start", pgDir, pgPort}, true},
		// Appends do not need the bucket; sealing does, and waits.
		{"the S3 gateway", []string{"../scripts/s3.sh", "stop", s3Dir}, []string{"../scripts/s3.sh", "start", s3Dir, s3Port}, false},
	} {
		before := acked.Load()
		waitFor("appends before the outage of "+outage.name, func() bool { return acked.Load() >= before+20 })
		failedBefore := failed.Load()
		script(outage.stop...)
		if outage.mustFail {
			waitFor("an append to fail without "+outage.name, func() bool { return failed.Load() > failedBefore })
		} else {
			during := acked.Load()
			waitFor("appends without "+outage.name, func() bool { return acked.Load() >= during+20 })
		}
		script(outage.start...)
		after := acked.Load()
		waitFor("appends after "+outage.name+" came back", func() bool { return acked.Load() >= after+20 })
		t.Logf("%s restarted: %d acknowledged, %d failed so far", outage.name, acked.Load(), failed.Load())
	}
	stop.Store(true)
	wg.Wait()
	if len(refusals) > 0 {
		t.Errorf("%d appends during the outages were refused other than 503 unavailable, the first: %v", len(refusals), refusals[0])
		for i, n := range nodes {
			t.Logf("node %d's log:\n%s", i, n.Log())
		}
	}
	h := readAll(t, nodes[1].client, th.ID)
	checkAcks(t, h, acks, int(failed.Load()))
	c.verify(t)
}
