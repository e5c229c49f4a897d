// Command benchsum summarizes the output of the spool benchmarks (go test
// -bench ./bench/, several -count runs) read from standard input: the
// median of every metric of every benchmark, then each figure of
// BENCHMARKS.md as a ratio of medians measured in the same run, with its
// goal and whether it was met. It needs nothing beyond the standard
// library, so benchstat is optional.
//
// Usage:
//
//	go test -run '^$' -bench . -count 5 ./bench/ | go run ./bench/benchsum
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// results maps a benchmark name (without the -GOMAXPROCS suffix) to its
// metrics, each with the values of every run.
type results map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader, echo io.Writer) (results, []string, error) {
	res := make(results)
	var order []string
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		fmt.Fprintln(echo, line)
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		if res[name] == nil {
			res[name] = make(map[string][]float64)
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res, order, s.Err()
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// find returns the median of metric for the benchmark named prefix, or for
// the first whose name starts with prefix when prefix ends in "/".
func (r results) find(order []string, prefix, metric string) (string, float64, bool) {
	for _, name := range order {
		if name == prefix || (strings.HasSuffix(prefix, "/") && strings.HasPrefix(name, prefix)) {
			if vs, ok := r[name][metric]; ok {
				return name, median(vs), true
			}
		}
	}
	return "", 0, false
}

func main() {
	res, order, err := parse(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchsum:", err)
		os.Exit(1)
	}
	fmt.Println("\n== medians ==")
	for _, name := range order {
		var parts []string
		units := make([]string, 0, len(res[name]))
		for u := range res[name] {
			units = append(units, u)
		}
		slices.Sort(units)
		for _, u := range units {
			if u == "ns/op" {
				parts = append(parts, human(median(res[name][u]), u)+"/op")
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %s", human(median(res[name][u]), u), u))
		}
		fmt.Printf("%-58s n=%d  %s\n", name, len(res[name]["ns/op"]), strings.Join(parts, "  "))
	}

	fmt.Println("\n== figures (ratios of medians from this run) ==")
	ratio := func(title, num, den, metric string, goal float64, atMost bool) {
		nn, nv, ok1 := res.find(order, num, metric)
		dn, dv, ok2 := res.find(order, den, metric)
		if !ok1 || !ok2 || dv == 0 {
			fmt.Printf("%-44s not measured in this run\n", title)
			return
		}
		r := nv / dv
		met := r >= goal
		cmp := ">="
		if atMost {
			met, cmp = r <= goal, "<="
		}
		fmt.Printf("%-44s %9sx  goal %s %gx  %s   (%s / %s, %s)\n", title, ratioText(r), cmp, goal, verdict(met), short(nn), short(dn), metric)
	}
	absolute := func(title, prefix, metric string, limit, scale float64, unit string) {
		for _, name := range order {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			vs, ok := res[name][metric]
			if !ok {
				continue
			}
			v := median(vs) / scale
			fmt.Printf("%-44s %9.2f %s  goal < %g %s  %s   (%s)\n", title, v, unit, limit, unit, verdict(v < limit), short(name))
		}
	}
	ratio("1. fork, sync=always: spool vs Codex way", "BenchmarkFork/codex", "BenchmarkFork/spool/sync=always", "ns/op", 20, false)
	ratio("1. fork, sync=none: spool vs Codex way", "BenchmarkFork/codex", "BenchmarkFork/spool/sync=none", "ns/op", 20, false)
	ratio("1. fork, sync=none: spool vs plain copy", "BenchmarkFork/spool/sync=none", "BenchmarkFork/copy", "ns/op", 1.5, true)
	ratio("1. copy fork, sync=none vs copy after meta", "BenchmarkFork/spool/sync=none", "BenchmarkFork/copy-after-meta", "ns/op", 1.2, true)
	ratio("2. list newest 50: spool vs dir scan", "BenchmarkList/scan/", "BenchmarkList/spool/", "ns/op", 1000, false)
	absolute("2. list page in process", "BenchmarkListIndex/", "ns/op", 5, 1e6, "ms")
	ratio("3. resume last turn: spool vs backward read", "BenchmarkResume/codex", "BenchmarkResume/spool", "ns/op", 1000, false)
	ratio("3. resume, sync=none: spool vs backward read", "BenchmarkResume/codex", "BenchmarkResume/spool/sync=none", "ns/op", 1000, false)
	ratio("3. resume, spool incl. manager.Open", "BenchmarkResume/codex", "BenchmarkResume/spool-open", "ns/op", 1000, false)
	ratio("4. append, 64 writers: batch vs always", "BenchmarkAppend/sync=batch/writers=64", "BenchmarkAppend/sync=always/writers=64", "appends/s", 5, false)
	ratio("4. append, 64 writers: batch vs none", "BenchmarkAppend/sync=batch/writers=64", "BenchmarkAppend/sync=none/writers=64", "appends/s", 0.6, false)
	spread := func(title, name, tail string, goal float64) {
		_, t, ok1 := res.find(order, name, tail)
		_, m, ok2 := res.find(order, name, "p50-µs")
		if !ok1 || !ok2 || m == 0 {
			fmt.Printf("%-44s not measured in this run\n", title)
			return
		}
		r := t / m
		fmt.Printf("%-44s %9sx  goal <= %gx  %s   (%s, %s / p50-µs)\n", title, ratioText(r), goal, verdict(r <= goal), short(name), tail)
	}
	for _, p := range []string{"always", "batch", "none"} {
		name := "BenchmarkAppend/sync=" + p + "/writers=64"
		spread("4. append p99 / p50, "+p+", 64 writers", name, "p99-µs", 3)
		spread("4. append p99.9 / p50, "+p+", 64 writers", name, "p99.9-µs", 10)
	}
	ratio("5. full reindex vs plain read (MB/s)", "BenchmarkReindex/spool-full/", "BenchmarkReindex/read/", "MB/s", 0.5, false)
	ratio("5. full reindex, ref forks vs plain read", "BenchmarkReindex/spool-full-forks/", "BenchmarkReindex/read-forks/", "MB/s", 0.5, false)
	// What reference forks cost a full rebuild: the same number of
	// paginated files without forks, which no goal states.
	if _, f, ok1 := res.find(order, "BenchmarkReindex/spool-full-forks/", "MB/s"); ok1 {
		if _, p, ok2 := res.find(order, "BenchmarkReindex/spool-full-paginated/", "MB/s"); ok2 && p > 0 {
			fmt.Printf("%-44s %9sx  no goal   (spool-full-forks / spool-full-paginated, MB/s)\n", "5. full reindex, ref forks vs none", ratioText(f/p))
		}
	}
	absolute("5. incremental reindex, unchanged", "BenchmarkReindexIncremental/", "ns/op", 2, 1e9, "s")
	absolute("6. peak RSS", "BenchmarkMemory/", "peak-MB", 100, 1, "MB")
	absolute("7. cold start to the first page", "BenchmarkColdStart/", "ms/start", 50, 1, "ms")
	absolute("7. another process's new thread listed, p99", "BenchmarkWatchLatency/", "p99-ms", 1000, 1, "ms")
	absolute("8. reference fork p50", "BenchmarkReferenceFork/sync=", "p50-ms", 1, 1, "ms")
	absolute("8. durable one-line file p50 (floor)", "BenchmarkReferenceFork/floor/", "p50-ms", 1, 1, "ms")
	ratio("8. last turn 10 forks deep vs plain file", "BenchmarkReferenceChain/depth=10", "BenchmarkReferenceChain/plain", "ns/op", 2, true)
	var peaks []float64
	for _, name := range order {
		if strings.HasPrefix(name, "BenchmarkMemory/") {
			peaks = append(peaks, median(res[name]["peak-MB"]))
		}
	}
	if len(peaks) > 1 && peaks[0] > 0 {
		growth := peaks[len(peaks)-1] / peaks[0]
		fmt.Printf("%-44s %9.2fx  goal flat (<= 1.2x)  %s   (largest / smallest index)\n", "6. peak RSS growth", growth, verdict(growth <= 1.2))
	}
}

// ratioText prints a ratio with three significant digits, without an
// exponent.
func ratioText(r float64) string {
	if r >= 100 {
		return strconv.FormatFloat(r, 'f', 0, 64)
	}
	return strconv.FormatFloat(r, 'g', 3, 64)
}

// Benchmark names in the figures are shown without the "Benchmark" prefix.
func short(name string) string { return strings.TrimPrefix(name, "Benchmark") }

func verdict(met bool) string {
	if met {
		return "MET "
	}
	return "MISS"
}

func human(v float64, unit string) string {
	if unit == "ns/op" {
		switch {
		case v >= 1e9:
			return fmt.Sprintf("%.3gs", v/1e9)
		case v >= 1e6:
			return fmt.Sprintf("%.3gms", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.3gµs", v/1e3)
		}
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
