package hostiletest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowSenders is how many connections TestSlowSendersDoNotHoldSlots opens:
// as many as spoold has in-flight slots by default.
const slowSenders = 256

// TestSlowSendersDoNotHoldSlots opens 256 connections that each announce
// a 1000-byte append, are told by spoold to send it (100 Continue: spoold
// is reading that body now) and send one byte. Before issue #14 each held
// one of the 256 in-flight slots and every API call was answered 503;
// now GET /v1/threads still answers 200. Then, with nothing more sent,
// spoold answers each of them 408 once -body-timeout (1s here) has passed,
// and nothing was written.
func TestSlowSendersDoNotHoldSlots(t *testing.T) {
	p := startSpoold(t, "-body-timeout", "1s")
	id := p.createThread(t)
	before := p.snapshot(t)

	conns := make([]*bufio.Reader, slowSenders)
	for i := range conns {
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { conn.Close() })
		// A failsafe so that a broken server fails the test instead of
		// hanging it; the test does not wait on it.
		conn.SetDeadline(time.Now().Add(60 * time.Second))
		fmt.Fprintf(conn, "POST /v1/threads/%s/items HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
			"Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n", id, p.Addr)
		r := bufio.NewReader(conn)
		status, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100") {
			t.Fatalf("connection %d: got %q, %v; want 100 Continue", i, status, err)
		}
		if blank, err := r.ReadString('\n'); err != nil || blank != "\r\n" {
			t.Fatalf("connection %d: after 100 Continue got %q, %v", i, blank, err)
		}
		if _, err := conn.Write([]byte("{")); err != nil {
			t.Fatalf("connection %d: send a byte: %v", i, err)
		}
		conns[i] = r
	}

	// All 256 bodies are being read: the API still answers.
	p.call(t, "GET", "/v1/threads", "", http.StatusOK)
	p.call(t, "GET", "/v1/threads/"+id, "", http.StatusOK)

	timedOut := 0
	for i, r := range conns {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("connection %d: read answer: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusRequestTimeout {
			timedOut++
		}
	}
	t.Logf("%d slow senders held connections while GET /v1/threads answered 200; %d were answered 408", slowSenders, timedOut)
	if timedOut != slowSenders {
		t.Errorf("%d of %d slow senders answered 408, want all", timedOut, slowSenders)
	}
	p.snapshot(t).sameAs(t, before, "slow senders")
}

// largeAppends and largeBody are the size of TestLargeAppendsBoundedMemory:
// 16 concurrent appends of 60 MB, which took spoold to 4.7 GB before
// issue #14. maxPeakRSS is tighter than the issue's 1 GiB (issuePeakRSS):
// spoold holds two copies of an accepted body of one item (the body, its
// line), about 500 MiB for the four the budget admits; with four copies
// it reached 1 GiB.
//
// Two shapes are bounded by the issue's 1 GiB instead, each measured at
// about 700 MiB, too near maxPeakRSS for a bound: a whole turn of one 60
// MB prompt, which one request alone takes there (its lines hold the
// prompt twice, the index reads it twice, and the preview it takes of the
// echo is all of it until it is cut; the budget counts a turn's body four
// times, so that one is admitted at a time; four admitted at once took
// spoold to 2.1 GB), and many short lines, where the index's work per line
// and its garbage dominate.
const (
	largeAppends = 16
	largeBody    = 60 << 20
	maxPeakRSS   = 768 << 20
	issuePeakRSS = 1 << 30
)

// largeRequest is one body TestLargeAppendsBoundedMemory sends, of
// largeBody bytes, to route (the thread's path under /v1/threads/ID); each
// accepted one grows the rollout by minGrowth to maxGrowth bytes.
type largeRequest struct {
	route                string
	body                 []byte
	minGrowth, maxGrowth int64
	// maxPeak bounds spoold's peak RSS: maxPeakRSS, or issuePeakRSS.
	maxPeak int64
	ndjson  bool
}

func (r largeRequest) contentType() string {
	if r.ndjson {
		return "application/x-ndjson"
	}
	return "application/json"
}

// largeBodies are the bodies TestLargeAppendsBoundedMemory sends: one long
// tool output, a user message of two million one-letter parts, which the
// index decodes to count and search it (four of them took spoold to 2.6
// GB before it decoded them one part at a time), and a whole turn of one
// long prompt, which the turn's lines carry twice (four took spoold to 2.1
// GB while each was copied about twenty times), and an NDJSON body of
// 61,440 lines of 1 KiB.
func largeBodies() map[string]largeRequest {
	output := []byte(`{"type":"response_item","payload":{"type":"function_call_output","call_id":"c","output":"`)
	output = append(output, bytes.Repeat([]byte("0123456789abcdef"), largeBody/16)[:largeBody-len(output)-3]...)
	output = append(output, `"}}`...)

	const part = `{"type":"input_text","text":"a"}`
	parts := []byte(`{"type":"response_item","payload":{"type":"message","role":"user","content":[` + part)
	end := `]}}`
	for len(parts)+len(","+part)+len(end) <= largeBody {
		parts = append(parts, ","+part...)
	}
	parts = append(parts, end...)
	parts = append(parts[:len(parts)-len(end)], bytes.Repeat([]byte(" "), largeBody-len(parts))...)
	parts = append(parts, end...)

	turn := []byte(`{"answer":"ok","prompt":"`)
	turn = append(turn, bytes.Repeat([]byte("0123456789abcdef"), largeBody/16)[:largeBody-len(turn)-2]...)
	turn = append(turn, `"}`...)
	// NDJSON lines of 1 KiB with their timestamps, padded to the size.
	line := `{"timestamp":"2026-11-29T00:00:00.000Z","type":"response_item","payload":{"type":"function_call_output","call_id":"c","output":"` + strings.Repeat("x", 1024-132) + `"}}` + "\n"
	count := largeBody / len(line)
	lines := bytes.Repeat([]byte(line), count)
	lines = append(lines, bytes.Repeat([]byte("\n"), largeBody-len(lines))...)
	return map[string]largeRequest{
		// One line: the body, a timestamp member and a newline.
		"one long output":   {"/items", output, largeBody, largeBody + 64, maxPeakRSS, false},
		"two million parts": {"/items", parts, largeBody, largeBody + 64, maxPeakRSS, false},
		// Seven lines, two of them carrying the prompt.
		"one long prompt": {"/turns", turn, 2 * (largeBody - 64), 2*largeBody + 8<<10, issuePeakRSS, false},
		// Each line with its ordinal; the padding's blank lines skipped.
		"many lines": {"/items", lines, int64(count * len(line)), int64(count * (len(line) + 32)), issuePeakRSS, true},
	}
}

// TestLargeAppendsBoundedMemory sends 16 concurrent 60 MB appends to the
// real spoold binary with the default settings (64 MiB per body, 256 MiB of
// bodies in flight, -sync always) and reads the peak RSS of its process
// (VmHWM) afterwards: it must stay under the shape's bound (maxPeakRSS,
// or the issue's 1 GiB for a whole turn and for many lines).
// Appends past the budget are answered 503 with Retry-After and write
// nothing; the accepted ones are all in the file.
func TestLargeAppendsBoundedMemory(t *testing.T) {
	for name, req := range largeBodies() {
		t.Run(name, func(t *testing.T) {
			if len(req.body) != largeBody {
				t.Fatalf("body is %d bytes, want %d", len(req.body), largeBody)
			}
			testLargeAppends(t, req)
		})
	}
}

func testLargeAppends(t *testing.T, large largeRequest) {
	p := startSpoold(t, "-sync", "always") // the default, which the others trade for speed
	id := p.createThread(t)
	before := p.snapshot(t)

	// Expect: 100-continue lets spoold refuse a body before it is sent.
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 30 * time.Second}}
	t.Cleanup(client.CloseIdleConnections)
	var (
		wg                    sync.WaitGroup
		mu                    sync.Mutex
		accepted, unavailable int
		other                 []string
	)
	for range largeAppends {
		wg.Go(func() {
			// A failsafe: the accepted appends of one thread are
			// written one after the other, each taking seconds on a
			// loaded machine.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", p.URL+"/v1/threads/"+id+large.route, bytes.NewReader(large.body))
			req.Header.Set("Content-Type", large.contentType())
			req.Header.Set("Expect", "100-continue")
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				other = append(other, err.Error())
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				accepted++
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
				unavailable++
			default:
				other = append(other, resp.Status)
			}
		})
	}
	wg.Wait()

	peak := vmHWM(t, p.Cmd.Process.Pid)
	t.Logf("%d concurrent %d MiB appends: %d accepted, %d answered 503 with Retry-After; spoold peak RSS (VmHWM) %d MiB",
		largeAppends, largeBody>>20, accepted, unavailable, peak>>20)
	if len(other) > 0 {
		t.Errorf("answers neither 200 nor 503 with Retry-After: %v", other)
	}
	if accepted == 0 {
		t.Errorf("no append accepted")
	}
	if peak >= large.maxPeak {
		t.Errorf("spoold peak RSS %d MiB, want under %d MiB", peak>>20, large.maxPeak>>20)
	}
	after := p.snapshot(t)
	for path, size := range after.files {
		grown := size - before.files[path]
		if grown == 0 || accepted == 0 {
			continue // no append accepted is an error above
		}
		n := int64(accepted)
		if grown < n*large.minGrowth || grown > n*large.maxGrowth {
			t.Errorf("rollout grew by %d bytes for %d accepted appends of %d bytes", grown, accepted, largeBody)
		}
	}
}

// vmHWM returns the peak resident set size of process pid in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc status: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parse VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// idleConns is -max-conns in TestIdleConnectionsDoNotKeepOthersOut.
const idleConns = 16

// TestIdleConnectionsDoNotKeepOthersOut fills spoold's -max-conns with
// connections that each asked one question and stay open, idle, as a
// keep-alive client leaves them. Without a bound a client did that 19,980
// times in 22 s until spoold ran out of file descriptors: new clients got
// nothing, and a connected client's create failed ("too many open files")
// for the two minutes idle connections are kept. With every connection
// open, spoold closes the idle ones, so a new client is answered, and the
// store keeps its files.
func TestIdleConnectionsDoNotKeepOthersOut(t *testing.T) {
	p := startSpoold(t, "-max-conns", strconv.Itoa(idleConns))
	idle := make([]net.Conn, idleConns)
	for i := range idle {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", p.Addr); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// The last fills spoold, which may close it at once.
		if resp.StatusCode != http.StatusOK || resp.Close && i < idleConns-1 {
			t.Fatalf("connection %d: %d, closing %t; want 200 on a connection kept open", i, resp.StatusCode, resp.Close)
		}
		idle[i] = c
	}
	// Every connection is open: a new client is answered all the same,
	// and can create a thread.
	p.createThread(t)
	closed := 0
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			closed++
		}
	}
	if closed == 0 {
		t.Fatal("no idle connection was closed")
	}
	// Said after the idle connections were closed, by then or soon after.
	p.WaitLog(t, "every connection the server may hold is open")
}
