package backendtest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// imageEcho is the echo of a prompt of an image alone.
func imageEcho() rollout.Item {
	payload, _ := json.Marshal(map[string]any{"type": "user_message", "message": "", "images": []string{"data:image/png;base64,AA=="}, "local_images": []string{}})
	return rollout.Item{Type: rollout.TypeEventMsg, Payload: payload}
}

// testPreviewsAsCodex: a thread's preview is the one Codex 0.169 lists
// (docs/CODEX.md, Previews): the first prompt echo that gives one (a blank
// prompt gives none, an image alone "[Image]"), which neither a rollback
// nor a revert takes back, cut at indexer.PreviewRunes runes; a fork keeps
// its parent's when its cut is after the echo that gave it, else takes its
// own. Every read of the row (the append's answer, Get, List) agrees.
func testPreviewsAsCodex(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	check := func(t *testing.T, what string, th manager.Thread, want string) {
		t.Helper()
		got, err := b.Get(ctx, th.ID)
		if err != nil {
			t.Fatal(err)
		}
		page, err := b.List(ctx, manager.ListOptions{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		listed := "(not listed)"
		for _, x := range page.Threads {
			if x.ID == th.ID {
				listed = x.Preview
			}
		}
		if th.Preview != want || got.Preview != want || listed != want {
			t.Fatalf("%s: preview %q (Get %q, List %q), want %q", what, th.Preview, got.Preview, listed, want)
		}
	}
	appendTo := func(t *testing.T, th manager.Thread, items ...rollout.Item) manager.Thread {
		t.Helper()
		res, err := b.AppendWith(ctx, th.ID, items, manager.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Thread
	}
	long := strings.Repeat("é", indexer.PreviewRunes+10)
	for _, mode := range []string{string(rollout.HistoryLegacy), string(rollout.HistoryPaginated)} {
		t.Run(mode, func(t *testing.T) {
			blank := appendTo(t, startIn(t, b, mode), userItem(" "), echoItem(" \n"), answerItem("?"))
			check(t, "a blank first prompt", blank, "")
			blank = appendTo(t, blank, userItem("second"), echoItem("second"), answerItem("ok"))
			check(t, "a blank first prompt, then a second", blank, "second")

			image := appendTo(t, startIn(t, b, mode), userItem(""), imageEcho(), userItem("words"), echoItem("words"))
			check(t, "an image-only first prompt", image, rollout.ImagePreview)

			check(t, "a long prompt", appendTo(t, startIn(t, b, mode), userItem(long), echoItem(long)), long[:2*indexer.PreviewRunes])
			check(t, "no echo", appendTo(t, startIn(t, b, mode), userItem("item alone")), "")

			// A fork before the second prompt holds only the blank one;
			// one before the third keeps the second.
			blank = appendTo(t, blank, userItem("third"), echoItem("third"))
			one, two := 1, 2
			for _, fm := range []string{manager.ForkCopy, ""} {
				f, err := b.Fork(ctx, blank.ID, manager.ForkOptions{BeforeUserMessage: &one, Mode: fm})
				if err != nil {
					t.Fatal(err)
				}
				check(t, "a fork before the echo that gave the preview", f, "")
				check(t, "that fork's own first prompt", appendTo(t, f, userItem("own"), echoItem("own")), "own")
				f, err = b.Fork(ctx, blank.ID, manager.ForkOptions{BeforeUserMessage: &two, Mode: fm})
				if err != nil {
					t.Fatal(err)
				}
				check(t, "a fork after the echo that gave the preview", f, "second")
				check(t, "that fork after a prompt of its own", appendTo(t, f, userItem("own"), echoItem("own")), "second")
			}
		})
	}

	// A rollback (legacy) does not take the preview back.
	rolled := appendTo(t, startIn(t, b, string(rollout.HistoryLegacy)), userItem("first"), echoItem("first"), rollbackItem(1), userItem("again"), echoItem("again"))
	check(t, "a rolled-back first prompt", rolled, "first")
	zero := 0
	f, err := b.Fork(ctx, rolled.ID, manager.ForkOptions{BeforeUserMessage: &zero})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "a fork before the prompt after the rollback", f, "first")

	// Nor does a revert.
	th := withTurns(t, b, 3)
	reverted, err := reverter(t, b).Revert(ctx, th.ID, manager.RevertOptions{BeforeUserMessage: &zero})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "a thread reverted before its first prompt", reverted, "prompt 0")
}
