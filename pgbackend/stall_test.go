//go:build distributed

package pgbackend

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/server"
)

// withPoolSize returns dsn asking pgxpool for at most n connections.
func withPoolSize(t *testing.T, dsn string, n string) string {
	t.Helper()
	return disttest.WithParam(t, dsn, "pool_max_conns", n)
}

// stallReaders opens n GET /v1/threads/{id}/items requests to srv and
// reads no more than their status lines: each stream stalls once the
// socket buffers between them fill. Each must answer within 10 s.
func stallReaders(t *testing.T, srv *httptest.Server, id string, n int) {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("GET /v1/threads/" + id + "/items HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		status, err := bufio.NewReaderSize(c, 16).ReadString('\n')
		if err != nil || status != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("stalled reader %d: status %q, %v; want 200 within 10 s", i, status, err)
		}
	}
}

// TestStalledReadersHoldNoConnection: readers of a thread's items that
// stop reading (their streams stall on the socket, for up to the server's
// 30 s stream write timeout) hold no PostgreSQL connection meanwhile:
// with a pool of 2 connections (pool_max_conns in the DSN), 3 stalled
// readers of a 16 MiB history, unsealed or in segments, are all answered,
// and a list and an append on the same node answer within 5 s.
func TestStalledReadersHoldNoConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bucket func(t *testing.T) objstore.Bucket
	}{
		{"chunks", func(*testing.T) objstore.Bucket { return nil }},
		{"segments", func(t *testing.T) objstore.Bucket { return disttest.Bucket(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := tc.bucket(t)
			b, err := Open(t.Context(), Options{DSN: withPoolSize(t, disttest.DSN(t), "2"), Bucket: bucket, SealEvery: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			th := bigThread(t, b, 16<<20)
			if bucket != nil {
				if _, err := b.store.Seal(t.Context(), th.ID, 1); err != nil {
					t.Fatal(err)
				}
			}
			srv := httptest.NewServer(server.New(b, server.Config{}).Handler())
			t.Cleanup(srv.Close)
			t.Cleanup(srv.CloseClientConnections)

			stallReaders(t, srv, th.ID, 3)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if _, err := b.List(ctx, manager.ListOptions{}); err != nil {
				t.Fatalf("list beside 3 stalled readers: %v", err)
			}
			if _, err := b.AppendTurn(ctx, th.ID, manager.TurnOptions{Prompt: "still there?", Answer: "yes"}); err != nil {
				t.Fatalf("append beside 3 stalled readers: %v", err)
			}
			resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(srv.URL + "/v1/threads?limit=1")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /v1/threads: %s", resp.Status)
			}
		})
	}
}
