package indexer

import (
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// TestThreadPreview: a thread's preview is the first prompt echo that
// gives one, as Codex 0.169 lists it (rollout.Preview; the cases of
// compat.TestPreviewsAsCodex), shortened to PreviewRunes; a scan of the
// whole file and a catch-up from any line give the same preview, at the
// same position.
func TestThreadPreview(t *testing.T) {
	const ts = "2026-06-01T09:00:00.000Z"
	long := strings.Repeat("é", PreviewRunes+10)
	imageEcho := line(ts, "event_msg", map[string]any{"type": "user_message", "message": "", "images": []any{"data:image/png;base64,AA=="}})
	tests := []struct {
		name  string
		lines []string
		want  string
		at    int // the line that gives it
	}{
		{"first prompt", []string{userLine(ts, "first"), echoLine(ts, "first"), userLine(ts, "second"), echoLine(ts, "second")}, "first", 2},
		{"blank first prompt", []string{userLine(ts, "  "), echoLine(ts, " \n "), userLine(ts, "second"), echoLine(ts, "second")}, "second", 4},
		{"image-only first prompt", []string{userLine(ts, ""), imageEcho, userLine(ts, "second"), echoLine(ts, "second")}, rollout.ImagePreview, 2},
		{"rolled-back first prompt", []string{userLine(ts, "first"), echoLine(ts, "first"), rollbackLine(ts, 1), userLine(ts, "second"), echoLine(ts, "second")}, "first", 2},
		{"everything rolled back", []string{userLine(ts, "first"), echoLine(ts, "first"), rollbackLine(ts, 1)}, "first", 2},
		{"prompt without echo", []string{userLine(ts, "item only"), userLine(ts, "echoed"), echoLine(ts, "echoed")}, "echoed", 3},
		{"no echo at all", []string{userLine(ts, "item only")}, "", 0},
		{"long prompt", []string{userLine(ts, long), echoLine(ts, long)}, long[:2*PreviewRunes], 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			rel := "sessions/2026/06/01/rollout-2026-06-01T09-00-00-" + idX + ".jsonl"
			lines := append([]string{metaLine(ts, idX, "")}, tc.lines...)
			writeRollout(t, root, rel, lines...)
			fsys := rolloutfs.Local{Root: root}
			rec, _, err := ScanFile(t.Context(), fsys, rel)
			if err != nil {
				t.Fatal(err)
			}
			wantAt := int64(len(strings.Join(lines[:tc.at], "")))
			if got := rec.Thread; got.Preview != tc.want || (tc.want != "" && got.PreviewOffset != wantAt) {
				t.Fatalf("scan: preview %q at %d, want %q at %d", got.Preview, got.PreviewOffset, tc.want, wantAt)
			}
			// Catch up from every line: what the index holds after the
			// first k lines, then the rest.
			for k := 1; k < len(lines); k++ {
				writeRollout(t, root, rel, lines[:k]...)
				head, _, err := ScanFile(t.Context(), fsys, rel)
				if err != nil {
					t.Fatal(err)
				}
				writeRollout(t, root, rel, lines...)
				p, _, err := CatchUp(t.Context(), fsys, head.Thread)
				if err != nil {
					t.Fatal(err)
				}
				got, gotAt := head.Thread.Preview, head.Thread.PreviewOffset
				if p.Preview != nil {
					if got != "" {
						t.Fatalf("catch-up after %d lines replaces preview %q with %q", k, got, *p.Preview)
					}
					got, gotAt = *p.Preview, p.PreviewOffset
				}
				if got != tc.want || (tc.want != "" && gotAt != wantAt) {
					t.Fatalf("catch-up after %d lines: preview %q at %d, want %q at %d", k, got, gotAt, tc.want, wantAt)
				}
			}
		})
	}
}

// TestRevertKeepsPreview: a revert, even one before the prompt that gave
// the preview, leaves the thread's preview, as Codex lists the thread; a
// Sync of the files and a rescan agree.
func TestRevertKeepsPreview(t *testing.T) {
	for _, turn := range []int{0, 1} {
		t.Run(fmt.Sprintf("before turn %d", turn), func(t *testing.T) {
			root := t.TempDir()
			st := openStore(t)
			rt := newRevertedThread(t, root, 2)
			rt.revert(t, root, rt.data, rt.hist.Turns[turn].Offset, "019dab90-9999-7000-8000-000000000001", rt.created.Add(24*time.Hour))
			for _, full := range []bool{false, true} {
				mustSync(t, st, root, SyncOptions{Full: full})
				th, err := st.Get(t.Context(), rt.id)
				if err != nil {
					t.Fatal(err)
				}
				if th.Preview != "prompt 0" {
					t.Fatalf("full %v: preview %q, want prompt 0", full, th.Preview)
				}
			}
			mustVerifyClean(t, st, root)
		})
	}
}

// TestRevertBeforeFirstTurnKeepsPreview: Codex's revert before a thread's
// first turn writes a segment whose meta has no history_base (the history
// starts afresh); Codex still lists the thread with its preview, and so
// does spool, after a Sync (whichever file it reads first), a rescan and
// a catch-up of a later prompt.
func TestRevertBeforeFirstTurnKeepsPreview(t *testing.T) {
	root := t.TempDir()
	st := openStore(t)
	rt := newRevertedThread(t, root, 1)
	at := rt.created.Add(24 * time.Hour)
	ts := rollout.FormatTimestamp(at)
	seg := baselessSegment(t, root, rt, at, "")
	for _, full := range []bool{false, true} {
		mustSync(t, st, root, SyncOptions{Full: full})
		th, err := st.Get(t.Context(), rt.id)
		if err != nil {
			t.Fatal(err)
		}
		if th.RolloutPath != seg || th.Preview != "prompt 0" {
			t.Fatalf("full %v: %s with preview %q, want %s with prompt 0", full, th.RolloutPath, th.Preview, seg)
		}
	}
	appendTo(t, root, seg, string(mustOrdinal(t, echoLine(ts, "after the revert"), 1)))
	mustSync(t, st, root, SyncOptions{})
	if th, err := st.Get(t.Context(), rt.id); err != nil || th.Preview != "prompt 0" {
		t.Fatalf("after a prompt: preview %q, %v; want prompt 0", th.Preview, err)
	}
	mustVerifyClean(t, st, root)
}

// baselessSegment writes the segment Codex's revert before the first turn
// writes for rt at at (a meta without history_base), followed by lines, and
// returns its path.
func baselessSegment(t *testing.T, root string, rt *revertedThread, at time.Time, lines string) string {
	t.Helper()
	name, err := rollout.SegmentFileName(at, rt.id, "019dab90-9999-7000-8000-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	day, _ := rollout.SessionPath(rollout.FileName(at, rt.id))
	seg := path.Join(path.Dir(day), name)
	writeRollout(t, root, seg, string(pagedMeta(t, rt.id, at))+lines)
	return seg
}

// TestBaselessSegmentCompressed: a thread whose first file gave no
// preview takes it from its baseless revert segment's own echo (Codex's
// revert before the first turn). Once Codex compressed that segment, the
// rescan of the thread from it dropped the record of its first file (out
// of the history, but still the thread's: a delete or archive must take
// it), and read the row's preview as one from another file, for the row
// named the plain file. The thread keeps both, as before the compression.
func TestBaselessSegmentCompressed(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	st := openStore(t)
	rt := newRevertedThread(t, root, 0)
	at := rt.created.Add(24 * time.Hour)
	seg := baselessSegment(t, root, rt, at, string(mustOrdinal(t, echoLine(rollout.FormatTimestamp(at), "after the revert"), 1)))
	mustSync(t, st, root, SyncOptions{})
	before, err := st.Get(ctx, rt.id)
	if err != nil {
		t.Fatal(err)
	}
	if before.RolloutPath != seg || before.Preview != "after the revert" || before.PreviewOffset == PreviewCutAway {
		t.Fatalf("plain: %s, preview %q at %d; want %s, its own echo's", before.RolloutPath, before.Preview, before.PreviewOffset, seg)
	}
	zrel := fixtures.CompressRollout(t, root, seg) // the plain file goes, as Codex compresses
	mustSync(t, st, root, SyncOptions{})
	after, err := st.Get(ctx, rt.id)
	if err != nil {
		t.Fatal(err)
	}
	if after.RolloutPath != zrel || after.Preview != before.Preview || after.PreviewOffset != before.PreviewOffset {
		t.Fatalf("compressed: %s, preview %q at %d; want %s, %q at %d", after.RolloutPath, after.Preview, after.PreviewOffset, zrel, before.Preview, before.PreviewOffset)
	}
	mustVerifyClean(t, st, root)
}
