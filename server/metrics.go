package server

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// latencyBuckets are the upper bounds, in seconds, of the request latency
// histogram.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics holds the counters the server exports at /metrics in the
// Prometheus text format. Gauges about threads and the index are read from
// the manager at scrape time instead.
type metrics struct {
	mu sync.Mutex // guards the maps and counters below
	// requests counts finished requests by route and status code.
	requests map[routeCode]uint64
	// latency is the request latency histogram by route.
	latency map[string]*histogram
	// appendedLines and appendedBytes count what appends wrote to rollouts.
	appendedLines uint64
	appendedBytes uint64
}

type routeCode struct {
	route string
	code  int
}

type histogram struct {
	counts []uint64 // counts[i]: observations <= latencyBuckets[i] (not cumulative)
	sum    float64
	count  uint64
}

func newMetrics() *metrics {
	return &metrics{requests: make(map[routeCode]uint64), latency: make(map[string]*histogram)}
}

// observeRequest records one finished request.
func (m *metrics) observeRequest(route string, code int, elapsed time.Duration) {
	seconds := elapsed.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[routeCode{route, code}]++
	h := m.latency[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets))}
		m.latency[route] = h
	}
	if i, _ := slices.BinarySearch(latencyBuckets, seconds); i < len(latencyBuckets) {
		h.counts[i]++
	}
	h.sum += seconds
	h.count++
}

// observeAppend records lines and bytes appended to a rollout.
func (m *metrics) observeAppend(lines int, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appendedLines += uint64(lines)
	if bytes > 0 {
		m.appendedBytes += uint64(bytes)
	}
}

// scraped is a value read at scrape time: a gauge, or a counter kept
// elsewhere (the manager's).
type scraped struct {
	name, help string
	value      float64
	counter    bool
}

// writeTo writes every metric, in a stable order, followed by the values
// read at scrape time.
func (m *metrics) writeTo(w io.Writer, values []scraped) error {
	bw := bufio.NewWriter(w)
	m.mu.Lock()
	keys := make([]routeCode, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b routeCode) int {
		if c := strings.Compare(a.route, b.route); c != 0 {
			return c
		}
		return a.code - b.code
	})
	fmt.Fprintln(bw, "# HELP spool_http_requests_total HTTP requests served, by route and status code.")
	fmt.Fprintln(bw, "# TYPE spool_http_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(bw, "spool_http_requests_total{route=%s,code=\"%d\"} %d\n", quoteLabel(k.route), k.code, m.requests[k])
	}

	routes := make([]string, 0, len(m.latency))
	for r := range m.latency {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	fmt.Fprintln(bw, "# HELP spool_http_request_duration_seconds HTTP request latency, by route.")
	fmt.Fprintln(bw, "# TYPE spool_http_request_duration_seconds histogram")
	for _, r := range routes {
		h := m.latency[r]
		label := quoteLabel(r)
		var cumulative uint64
		for i, upper := range latencyBuckets {
			cumulative += h.counts[i]
			fmt.Fprintf(bw, "spool_http_request_duration_seconds_bucket{route=%s,le=\"%s\"} %d\n",
				label, strconv.FormatFloat(upper, 'g', -1, 64), cumulative)
		}
		fmt.Fprintf(bw, "spool_http_request_duration_seconds_bucket{route=%s,le=\"+Inf\"} %d\n", label, h.count)
		fmt.Fprintf(bw, "spool_http_request_duration_seconds_sum{route=%s} %s\n", label, strconv.FormatFloat(h.sum, 'g', -1, 64))
		fmt.Fprintf(bw, "spool_http_request_duration_seconds_count{route=%s} %d\n", label, h.count)
	}

	fmt.Fprintln(bw, "# HELP spool_appended_lines_total Lines appended to rollout files through the API.")
	fmt.Fprintln(bw, "# TYPE spool_appended_lines_total counter")
	fmt.Fprintf(bw, "spool_appended_lines_total %d\n", m.appendedLines)
	fmt.Fprintln(bw, "# HELP spool_appended_bytes_total Bytes appended to rollout files through the API.")
	fmt.Fprintln(bw, "# TYPE spool_appended_bytes_total counter")
	fmt.Fprintf(bw, "spool_appended_bytes_total %d\n", m.appendedBytes)
	m.mu.Unlock()

	for _, v := range values {
		kind := "gauge"
		if v.counter {
			kind = "counter"
		}
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n%s %s\n",
			v.name, v.help, v.name, kind, v.name, strconv.FormatFloat(v.value, 'g', -1, 64))
	}
	return bw.Flush()
}

// quoteLabel quotes a label value as the Prometheus text format wants:
// backslash, double quote and newline escaped.
func quoteLabel(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
