package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spoolhq/spool/rollout"
)

// check shows that Codex accepts the home src as it is: on a linked copy,
// Codex lists every thread (up to 200), and for the first few shows every
// turn, completed, with the ids, prompts and answers the files hold
// (after a thread/resume for a paginated thread, which Codex needs once).
func check(ctx context.Context, c config, src string, w io.Writer) error {
	home, err := linkedHome(c.work, "codex-check", src)
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	cx, err := startCodex(ctx, c.codex, home)
	if err != nil {
		return err
	}
	defer cx.Close()
	var page struct {
		Data []struct {
			ID          string `json:"id"`
			Path        string `json:"path"`
			HistoryMode string `json:"historyMode"`
			Preview     string `json:"preview"`
		} `json:"data"`
	}
	if err := cx.call(ctx, "thread/list", map[string]any{"limit": 200}, &page); err != nil {
		return err
	}
	want := countRollouts(src)
	fmt.Fprintf(w, "codex lists %d threads of %d in %s\n", len(page.Data), want, src)
	if len(page.Data) != min(want, 200) {
		return fmt.Errorf("codex lists %d threads, want %d", len(page.Data), min(want, 200))
	}
	for _, t := range page.Data[:min(len(page.Data), 5)] {
		msgs, err := userMessagesOf(t.Path)
		if err != nil {
			return err
		}
		if t.HistoryMode == string(rollout.HistoryPaginated) {
			if err := cx.call(ctx, "thread/resume", map[string]any{"threadId": t.ID, "excludeTurns": true}, nil); err != nil {
				return err
			}
		}
		var turns struct {
			Data []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
				Items  []struct {
					Type    string `json:"type"`
					Text    string `json:"text"`
					Content []struct {
						Text string `json:"text"`
					} `json:"content"`
				} `json:"items"`
			} `json:"data"`
		}
		params := map[string]any{"threadId": t.ID, "limit": 100, "sortDirection": "asc", "itemsView": "full"}
		if err := cx.call(ctx, "thread/turns/list", params, &turns); err != nil {
			return err
		}
		if len(turns.Data) != len(msgs) {
			return fmt.Errorf("thread %s (%s): codex shows %d turns, the file holds %d user messages", t.ID, t.HistoryMode, len(turns.Data), len(msgs))
		}
		for i, tn := range turns.Data {
			var user, agent string
			for _, it := range tn.Items {
				switch it.Type {
				case "userMessage":
					if len(it.Content) > 0 {
						user = it.Content[0].Text
					}
				case "agentMessage":
					agent = it.Text
				}
			}
			if tn.Status != "completed" || user != msgs[i] || agent == "" {
				return fmt.Errorf("thread %s turn %d (%s): status %q, prompt %q (want %q), answer %q", t.ID, i, tn.ID, tn.Status, user, msgs[i], agent)
			}
		}
		fmt.Fprintf(w, "  %s %s: %d turns, all completed with their prompts and answers; preview %.40q\n", t.ID, t.HistoryMode, len(turns.Data), t.Preview)
	}
	return cx.Close()
}

// userMessagesOf returns the texts of the counted user messages of the
// rollout at path.
func userMessagesOf(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := rollout.NewReader(f, 0, 0)
	var texts []string
	for r.Next() {
		if c := rollout.Classify(r.Line()); c.Kind == rollout.KindUserMessage {
			texts = append(texts, c.Text)
		}
	}
	return texts, r.Err()
}

// countRollouts returns how many rollout files root/sessions holds.
func countRollouts(root string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(root, rollout.SessionsDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".jsonl") {
			n++
		}
		return err
	})
	return n
}
