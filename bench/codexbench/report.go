package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// sample is one timed operation and the peak RSS (VmHWM, KiB) of its
// process during it (0 when not measured).
type sample struct {
	d     time.Duration
	hwmKB int64
}

// report collects the samples of every figure, by side (codex, spool,
// ...), in the order they were first added.
type report struct {
	order []string
	figs  map[string]map[string][]sample
	sides map[string][]string
}

func newReport() *report {
	return &report{figs: map[string]map[string][]sample{}, sides: map[string][]string{}}
}

func (r *report) add(fig, side string, s sample) {
	if s.d == 0 {
		return // the operation failed; the error is returned
	}
	if r.figs[fig] == nil {
		r.figs[fig] = map[string][]sample{}
		r.order = append(r.order, fig)
	}
	if r.figs[fig][side] == nil {
		r.sides[fig] = append(r.sides[fig], side)
	}
	r.figs[fig][side] = append(r.figs[fig][side], s)
}

// median returns the median duration and the largest peak RSS of side's
// samples of fig, and how many there are.
func (r *report) median(fig, side string) (time.Duration, int64, int) {
	ss := r.figs[fig][side]
	if len(ss) == 0 {
		return 0, 0, 0
	}
	ds := make([]time.Duration, len(ss))
	var hwm int64
	for i, s := range ss {
		ds[i] = s.d
		hwm = max(hwm, s.hwmKB)
	}
	slices.Sort(ds)
	m := ds[len(ds)/2]
	if len(ds)%2 == 0 {
		m = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	return m, hwm, len(ss)
}

func (r *report) print(w io.Writer, c config) {
	fmt.Fprintf(w, "\n## spool against Codex 0.169.0, medians of this run\n\n")
	fmt.Fprintf(w, "| figure | side | median | n | samples | peak RSS | Codex / this |\n|---|---|---:|---:|---|---:|---:|\n")
	for _, fig := range r.order {
		codexMedian, _, _ := r.median(fig, "codex")
		for _, side := range r.sides[fig] {
			m, hwm, n := r.median(fig, side)
			var all []string
			for _, s := range r.figs[fig][side] {
				all = append(all, short(s.d))
			}
			ratio := ""
			if codexMedian > 0 && !strings.HasPrefix(side, "codex") {
				ratio = ratioText(float64(codexMedian) / float64(m))
			}
			rss := "–"
			if hwm > 0 {
				rss = fmt.Sprintf("%.1f MB", float64(hwm)/1024)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s |\n", fig, side, short(m), n, strings.Join(all, " "), rss, ratio)
		}
	}
	r.goals(w, c)
}

// goal is one goal of issue #16.
type goal struct {
	title    string
	fig      string
	num, den string  // ratio num/den of medians; den "" for an absolute limit on num
	atLeast  float64 // the ratio must be at least this
	atMostMS float64 // or the absolute median must be at most this many ms
	rss      bool    // compare peak RSS instead of time: den's peak / num's peak at most 1/atLeast
}

func (r *report) goals(w io.Writer, c config) {
	maxN := slices.Max(c.threads)
	size := func(mode string) string { return fmt.Sprintf("%s/%dMiB", mode, c.bigMB) }
	goals := []goal{
		{title: "list newest 50, warm, HTTP", fig: fmt.Sprintf("list-warm/threads=%d", maxN), num: "codex", den: "spool", atLeast: 100},
		{title: "cold process to first page", fig: fmt.Sprintf("list-cold/threads=%d", maxN), num: "spool", atMostMS: 50},
		{title: "fork of the paginated thread", fig: "fork-late/" + size("paginated"), num: "codex", den: "spool", atLeast: 5000},
		{title: "copy fork of the legacy thread, sync=always", fig: "fork-late/" + size("legacy"), num: "codex", den: "spool", atLeast: 10},
		{title: "copy fork of the legacy thread, sync=none", fig: "fork-late/" + size("legacy"), num: "codex", den: "spool-sync=none", atLeast: 20},
		{title: "last turn vs thread/turns/list (legacy)", fig: "last-turn/" + size("legacy"), num: "codex", den: "spool", atLeast: 100},
		{title: "last turn vs resume + turns (paginated)", fig: "last-turn/" + size("paginated"), num: "codex", den: "spool", atLeast: 100},
		{title: "first index of a 10,000-thread home", fig: "first-index/threads=10000", num: "codex", den: "spool", atLeast: 10},
		{title: "peak RSS during the legacy fork <= 1% of Codex's", fig: "fork-late/" + size("legacy"), num: "codex", den: "spool", atLeast: 100, rss: true},
	}
	fmt.Fprintf(w, "\n## goals (sizes of this run: %v threads, %d MiB; the goals are stated at 100,000 threads and 1 GiB)\n\n", c.threads, c.bigMB)
	for _, g := range goals {
		if r.figs[g.fig] == nil {
			fmt.Fprintf(w, "- %s (%s): not measured in this run\n", g.title, g.fig)
			continue
		}
		nm, nh, _ := r.median(g.fig, g.num)
		switch {
		case g.atMostMS > 0:
			ms := float64(nm) / 1e6
			fmt.Fprintf(w, "- %s (%s): %s, goal <= %g ms: %s\n", g.title, g.fig, short(nm), g.atMostMS, verdict(ms <= g.atMostMS))
		case g.rss:
			_, dh, _ := r.median(g.fig, g.den)
			ratio := float64(nh) / float64(max(dh, 1))
			fmt.Fprintf(w, "- %s (%s): %s %.1f MB vs %s %.1f MB = %.2f%%, goal <= %.2g%%: %s\n", g.title, g.fig,
				g.den, float64(dh)/1024, g.num, float64(nh)/1024, 100/ratio, 100/g.atLeast, verdict(ratio >= g.atLeast))
		default:
			dm, _, _ := r.median(g.fig, g.den)
			if dm == 0 {
				fmt.Fprintf(w, "- %s (%s): %s not measured\n", g.title, g.fig, g.den)
				continue
			}
			ratio := float64(nm) / float64(dm)
			fmt.Fprintf(w, "- %s (%s): %s / %s = %s / %s = %s, goal >= %gx: %s\n", g.title, g.fig, g.num, g.den,
				short(nm), short(dm), ratioText(ratio), g.atLeast, verdict(ratio >= g.atLeast))
		}
	}
}

func verdict(met bool) string {
	if met {
		return "MET"
	}
	return "MISS"
}

func ratioText(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0fx", r)
	}
	return fmt.Sprintf("%.3gx", r)
}

// short prints a duration with three significant digits.
func short(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3gs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3gms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.3gµs", float64(d)/1e3)
	}
}
