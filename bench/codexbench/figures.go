package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"syscall"
	"time"
)

// pageSize is the page of every list figure.
const pageSize = 50

// timed runs op between a reset of pid's peak RSS and a reading of it,
// after settle.
func timed(pid int, op func() error) (sample, error) {
	settle()
	if err := resetPeak(pid); err != nil {
		return sample{}, fmt.Errorf("reset peak RSS of %d: %w", pid, err)
	}
	start := time.Now()
	if err := op(); err != nil {
		return sample{}, err
	}
	d := time.Since(start)
	p, err := readPeak(pid)
	return sample{d: d, hwmKB: p.hwmKB}, err
}

// settle writes back every dirty page of the machine (sync(2)) before a
// sample is timed, so that no sample waits behind the writeback of what
// the sample before it wrote: a fork or an index commit fsynced right
// after Codex wrote gigabytes would otherwise measure Codex's writeback.
func settle() { syscall.Sync() }

// sides runs codex and spool once each, codex first on even repetitions.
func sides(rep int, codex, spool func() error) error {
	if rep%2 == 0 {
		if err := codex(); err != nil {
			return err
		}
		return spool()
	}
	if err := spool(); err != nil {
		return err
	}
	return codex()
}

// codexList asks Codex for the newest pageSize threads and checks it got
// them.
func codexList(ctx context.Context, cx *codex) error {
	var page codexPage
	if err := cx.call(ctx, "thread/list", map[string]any{"limit": pageSize}, &page); err != nil {
		return err
	}
	return page.check()
}

// codexPage is a thread/list answer as the benchmark's client decodes it.
type codexPage struct {
	Data []json.RawMessage `json:"data"`
}

func (p codexPage) check() error {
	if len(p.Data) != pageSize {
		return fmt.Errorf("codex thread/list: %d threads, want %d", len(p.Data), pageSize)
	}
	return nil
}

// decodeFigures times, n times each, the client's decoding of one page of
// each side (spool's body, Codex's result) into what codexList and
// spoold.list decode it into: the part of a list-warm sample that is the
// benchmark's client, not the server.
func decodeFigures(ctx context.Context, r *report, fig string, n int, cx *codex, sp *spoold) error {
	var codexRaw json.RawMessage
	if err := cx.call(ctx, "thread/list", map[string]any{"limit": pageSize}, &codexRaw); err != nil {
		return err
	}
	spoolRaw, err := sp.do(ctx, http.MethodGet, fmt.Sprintf("/v1/threads?limit=%d", pageSize), "", http.StatusOK)
	if err != nil {
		return err
	}
	logf("%s: codex page %d bytes, spool page %d bytes", fig, len(codexRaw), len(spoolRaw))
	for range n {
		start := time.Now()
		var page codexPage
		if err := json.Unmarshal(codexRaw, &page); err != nil {
			return err
		}
		r.add(fig, "codex", sample{d: time.Since(start)})
		if err := page.check(); err != nil {
			return err
		}
		start = time.Now()
		if err := checkSpoolPage(spoolRaw, pageSize); err != nil {
			return err
		}
		r.add(fig, "spool", sample{d: time.Since(start)})
	}
	return nil
}

// listFigures measures the newest page warm, from a cold process, and on a
// home that has no index yet, at n threads.
func listFigures(ctx context.Context, c config, r *report, n int) error {
	warm, cold, first := fmt.Sprintf("list-warm/threads=%d", n), fmt.Sprintf("list-cold/threads=%d", n), fmt.Sprintf("first-index/threads=%d", n)
	if !c.only.MatchString(warm) && !c.only.MatchString(cold) && !c.only.MatchString(first) {
		return nil
	}
	src, err := listCorpus(ctx, n)
	if err != nil {
		return err
	}
	if c.only.MatchString(warm) || c.only.MatchString(cold) {
		codexHome, err := linkedHome(c.work, "codex-list", src)
		if err != nil {
			return err
		}
		spoolRoot, err := linkedHome(c.work, "spool-list", src)
		if err != nil {
			return err
		}
		// Both indexes are built before anything is timed.
		cx, err := startCodex(ctx, c.codex, codexHome)
		if err != nil {
			return err
		}
		if err := codexList(ctx, cx); err != nil {
			return err
		}
		if err := spoolIndex(ctx, spoolRoot); err != nil {
			return err
		}
		sp, err := startSpoold(ctx, c.spoold, spoolRoot, "always")
		if err != nil {
			return err
		}
		if err := sp.list(ctx, pageSize); err != nil {
			return err
		}
		if c.only.MatchString(warm) {
			logf("%s: %d x %d calls each", warm, c.reps, c.warmCalls)
			for rep := range c.reps {
				err := sides(rep, func() error {
					for range c.warmCalls {
						s, err := timed(cx.Pid(), func() error { return codexList(ctx, cx) })
						if err != nil {
							return err
						}
						r.add(warm, "codex", s)
					}
					return nil
				}, func() error {
					for range c.warmCalls {
						s, err := timed(sp.pid(), func() error { return sp.list(ctx, pageSize) })
						if err != nil {
							return err
						}
						r.add(warm, "spool", s)
					}
					// The floor of any request through spoold's HTTP stack.
					for range c.warmCalls {
						s, err := timed(sp.pid(), func() error {
							_, err := sp.do(ctx, http.MethodGet, "/healthz", "", http.StatusOK)
							return err
						})
						if err != nil {
							return err
						}
						r.add(warm, "spool GET /healthz", s)
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("%s: %w", warm, err)
				}
			}
		}
		if c.only.MatchString(warm) {
			if err := decodeFigures(ctx, r, warm+"/client-decode", c.reps*c.warmCalls, cx, sp); err != nil {
				return fmt.Errorf("%s: %w", warm, err)
			}
		}
		if err := cx.Close(); err != nil {
			return fmt.Errorf("codex exit: %w", err)
		}
		if err := sp.stop(); err != nil {
			return fmt.Errorf("spoold exit: %w", err)
		}
		if c.only.MatchString(cold) {
			logf("%s: %d repetitions", cold, c.reps)
			for rep := range c.reps {
				err := sides(rep, func() error {
					s, _, err := codexFirstPage(ctx, c, codexHome)
					r.add(cold, "codex", s)
					return err
				}, func() error {
					s, err := spoolFirstPage(ctx, c, spoolRoot, 0)
					r.add(cold, "spool", s)
					return err
				})
				if err != nil {
					return fmt.Errorf("%s: %w", cold, err)
				}
			}
		}
	}
	if c.only.MatchString(first) {
		logf("%s: %d repetitions", first, c.reps)
		for rep := range c.reps {
			err := sides(rep, func() error {
				home, err := linkedHome(c.work, "codex-first", src)
				if err != nil {
					return err
				}
				defer os.RemoveAll(home)
				s, initDone, err := codexFirstPage(ctx, c, home)
				r.add(first, "codex", s)
				r.add(first, "codex-initialize", sample{d: initDone})
				return err
			}, func() error {
				root, err := linkedHome(c.work, "spool-first", src)
				if err != nil {
					return err
				}
				defer os.RemoveAll(root)
				s, err := spoolFirstPage(ctx, c, root, n)
				r.add(first, "spool", s)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", first, err)
			}
		}
	}
	return nil
}

// codexFirstPage starts Codex on home and asks for the newest page: the
// time from the start of the process to the page, the peak RSS of the
// process by then, and when initialize answered.
func codexFirstPage(ctx context.Context, c config, home string) (sample, time.Duration, error) {
	settle()
	start := time.Now()
	cx, err := startCodex(ctx, c.codex, home)
	if err != nil {
		return sample{}, 0, err
	}
	defer cx.Close()
	initDone := time.Since(start)
	if err := codexList(ctx, cx); err != nil {
		return sample{}, 0, err
	}
	d := time.Since(start)
	p, err := readPeak(cx.Pid())
	if err != nil {
		return sample{}, 0, err
	}
	return sample{d: d, hwmKB: p.hwmKB}, initDone, cx.Close()
}

// spoolFirstPage starts spoold on root and asks for the newest page. spoold
// serves before its reconcile walk ends; on a home it has never indexed
// (indexed > 0, the number of threads in it), the page is taken once the
// index holds them all (spool_index_threads in /metrics), so the figure is
// the first complete index, as Codex's first page is.
func spoolFirstPage(ctx context.Context, c config, root string, indexed int) (sample, error) {
	settle()
	start := time.Now()
	sp, err := startSpoold(ctx, c.spoold, root, "always")
	if err != nil {
		return sample{}, err
	}
	if indexed > 0 {
		if err := sp.waitIndexed(ctx, indexed); err != nil {
			_ = sp.stop()
			return sample{}, err
		}
	}
	if err := sp.list(ctx, pageSize); err != nil {
		_ = sp.stop()
		return sample{}, err
	}
	d := time.Since(start)
	p, err := readPeak(sp.pid())
	if serr := sp.stop(); err == nil {
		err = serr
	}
	return sample{d: d, hwmKB: p.hwmKB}, err
}

// bigFigures measures the forks and the last turn of the big thread, legacy
// or paginated.
func bigFigures(ctx context.Context, c config, r *report, paginated bool) error {
	mode := "legacy"
	if paginated {
		mode = "paginated"
	}
	size := fmt.Sprintf("%s/%dMiB", mode, c.bigMB)
	late, whole, last := "fork-late/"+size, "fork-whole/"+size, "last-turn/"+size
	if !c.only.MatchString(late) && !c.only.MatchString(whole) && !c.only.MatchString(last) {
		return nil
	}
	src, err := bigCorpus(ctx, c.codex, c.bigMB, paginated)
	if err != nil {
		return err
	}
	info, err := describeBig(src)
	if err != nil {
		return err
	}
	n := len(info.turnIDs)
	// Codex gets a copy: loading a thread may append to its file.
	codexHome, err := freshDir(c.work, "codex-big")
	if err != nil {
		return err
	}
	if err := copyTree(src, codexHome, false); err != nil {
		return err
	}
	defer os.RemoveAll(codexHome)
	spools := map[string]*spoold{}
	for _, policy := range []string{"always", "none"} {
		root, err := linkedHome(c.work, "spool-big-"+policy, src)
		if err != nil {
			return err
		}
		if err := spoolIndex(ctx, root); err != nil {
			return err
		}
		sp, err := startSpoold(ctx, c.spoold, root, policy)
		if err != nil {
			return err
		}
		defer sp.stop()
		spools[policy] = sp
	}
	logf("%s: thread %s, %d turns, %d bytes", size, info.id, n, info.size)

	if paginated {
		// Codex reads a paginated thread's turns from a projection it
		// builds when it first loads the thread: build it, once, untimed
		// (its time is reported).
		cx, err := startCodex(ctx, c.codex, codexHome)
		if err != nil {
			return err
		}
		s, err := timed(cx.Pid(), func() error {
			return cx.call(ctx, "thread/resume", map[string]any{"threadId": info.id, "excludeTurns": true}, nil)
		})
		if err != nil {
			return fmt.Errorf("codex first resume: %w", err)
		}
		r.add("first-resume/"+size, "codex", s)
		if err := cx.Close(); err != nil {
			return err
		}
	}

	forks := []struct {
		name  string
		codex map[string]any
		spool string
	}{
		{late, map[string]any{"threadId": info.id, "lastTurnId": info.turnIDs[n-3], "excludeTurns": true}, fmt.Sprintf(`{"before_user_message":%d}`, n-2)},
		{whole, map[string]any{"threadId": info.id, "excludeTurns": true}, `{}`},
	}
	for _, f := range forks {
		if !c.only.MatchString(f.name) {
			continue
		}
		logf("%s: %d repetitions", f.name, c.reps)
		for rep := range c.reps {
			err := sides(rep, func() error {
				s, err := codexFork(ctx, c, codexHome, f.codex)
				r.add(f.name, "codex", s)
				return err
			}, func() error {
				for _, policy := range []string{"always", "none"} {
					s, err := spoolFork(ctx, spools[policy], info.id, f.spool)
					if err != nil {
						return err
					}
					side := "spool"
					if policy != "always" {
						side = "spool-sync=" + policy
					}
					r.add(f.name, side, s)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
		}
	}

	if c.only.MatchString(last) {
		logf("%s: %d repetitions", last, c.reps)
		sp := spools["always"]
		for rep := range c.reps {
			err := sides(rep, func() error {
				first, again, err := codexLastTurn(ctx, c, codexHome, info, paginated)
				r.add(last, "codex", first)
				r.add(last, "codex-again", again)
				return err
			}, func() error {
				// The last turn's items decoded, as Codex answers it.
				s, err := timed(sp.pid(), func() error {
					b, err := sp.do(ctx, http.MethodGet, fmt.Sprintf("/v1/threads/%s/turns?view=full&order=desc&limit=1", info.id), "", http.StatusOK)
					if err != nil {
						return err
					}
					return checkSpoolTurn(b, n-1)
				})
				r.add(last, "spool", s)
				if err != nil {
					return err
				}
				// The same turn's lines as written, not decoded.
				s, err = timed(sp.pid(), func() error {
					b, err := sp.do(ctx, http.MethodGet, fmt.Sprintf("/v1/threads/%s/turns/%d", info.id, n-1), "", http.StatusOK)
					if err == nil && len(b) == 0 {
						err = fmt.Errorf("spool: an empty last turn")
					}
					return err
				})
				r.add(last, "spool-raw", s)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", last, err)
			}
		}
	}
	return nil
}

// codexFork starts Codex on home, forks with params (timed) and deletes
// the fork again.
func codexFork(ctx context.Context, c config, home string, params map[string]any) (sample, error) {
	cx, err := startCodex(ctx, c.codex, home)
	if err != nil {
		return sample{}, err
	}
	defer cx.Close()
	var ans struct {
		Thread struct {
			ID   string `json:"id"`
			Path string `json:"path"`
		} `json:"thread"`
	}
	s, err := timed(cx.Pid(), func() error { return cx.call(ctx, "thread/fork", params, &ans) })
	if err != nil {
		return s, err
	}
	if ans.Thread.ID == "" {
		return s, fmt.Errorf("codex thread/fork: no thread in the answer")
	}
	if err := cx.call(ctx, "thread/delete", map[string]any{"threadId": ans.Thread.ID}, nil); err != nil {
		logf("codex thread/delete of its fork: %v; removing %s", err, ans.Thread.Path)
		if ans.Thread.Path != "" {
			os.Remove(ans.Thread.Path)
		}
	}
	return s, cx.Close()
}

// spoolFork forks through spool's API (timed) and deletes the fork again.
func spoolFork(ctx context.Context, sp *spoold, id, body string) (sample, error) {
	var child struct {
		ID string `json:"id"`
	}
	s, err := timed(sp.pid(), func() error {
		b, err := sp.do(ctx, http.MethodPost, "/v1/threads/"+id+"/fork", body, http.StatusCreated)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &child)
	})
	if err != nil {
		return s, err
	}
	_, err = sp.do(ctx, http.MethodDelete, "/v1/threads/"+child.ID, "", http.StatusNoContent)
	return s, err
}

// codexLastTurn starts Codex on home and reads the thread's last turn with
// its items (after thread/resume when paginated), timed, then once more in
// the same process.
func codexLastTurn(ctx context.Context, c config, home string, info bigInfo, paginated bool) (first, again sample, err error) {
	cx, err := startCodex(ctx, c.codex, home)
	if err != nil {
		return first, again, err
	}
	defer cx.Close()
	want := info.turnIDs[len(info.turnIDs)-1]
	lastTurn := func() error {
		var page struct {
			Data []struct {
				ID     string            `json:"id"`
				Status string            `json:"status"`
				Items  []json.RawMessage `json:"items"`
			} `json:"data"`
		}
		params := map[string]any{"threadId": info.id, "limit": 1, "sortDirection": "desc", "itemsView": "full"}
		if err := cx.call(ctx, "thread/turns/list", params, &page); err != nil {
			return err
		}
		if len(page.Data) != 1 || page.Data[0].ID != want || len(page.Data[0].Items) == 0 {
			return fmt.Errorf("codex thread/turns/list: %d turns (want 1, %s, with items): %+v", len(page.Data), want, page.Data)
		}
		return nil
	}
	first, err = timed(cx.Pid(), func() error {
		if paginated {
			if err := cx.call(ctx, "thread/resume", map[string]any{"threadId": info.id, "excludeTurns": true}, nil); err != nil {
				return err
			}
		}
		return lastTurn()
	})
	if err != nil {
		return first, again, err
	}
	if again, err = timed(cx.Pid(), lastTurn); err != nil {
		return first, again, err
	}
	return first, again, cx.Close()
}
