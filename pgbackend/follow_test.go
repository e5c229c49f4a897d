//go:build distributed

package pgbackend

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

// TestFollowSurvivesAnOutage: a follow stream open while PostgreSQL is
// unreachable (its listening connection broken, new ones refused) stays
// open, and once PostgreSQL is back it is sent the lines another node
// appended after, whether they were committed before the node listened
// again or after.
func TestFollowSurvivesAnOutage(t *testing.T) {
	direct := disttest.DSN(t)
	dsn, pg := disttest.ProxyURL(t, direct)
	b, err := Open(t.Context(), Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	// Another node, which reaches PostgreSQL throughout.
	other, err := Open(t.Context(), Options{DSN: direct})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	srv := server.New(b, server.Config{})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.Drain(); ts.Close() })
	th, err := b.Start(t.Context(), manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ts.URL + "/v1/threads/" + th.ID + "/items?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	pg.Down()
	pg.Up()
	if _, err := other.AppendTurn(t.Context(), th.ID, manager.TurnOptions{Prompt: "after the outage", Answer: "heard"}); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended (%v, Spool-Stream-End %q) before the line appended after the outage",
				err, resp.Trailer.Get("Spool-Stream-End"))
		}
		if strings.Contains(line, "after the outage") {
			return
		}
	}
}
