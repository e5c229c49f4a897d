package rollout

import (
	"errors"
	"testing"
	"time"
)

func TestSegmentFileName(t *testing.T) {
	const thread, segment = "019dab90-0000-7000-8000-000000000001", "01a21489-c520-7c33-a44c-59d898a97f3f"
	created := time.Date(2026, 11, 25, 21, 8, 22, 0, time.UTC)
	// The name Codex 0.169 wrote for a revert (compat: TestCodexRevertWritesSegment).
	const want = "rollout-2026-11-25T21-08-22-019dab90-0000-7000-8000-000000000001_01a21489-c520-7c33-a44c-59d898a97f3f.jsonl"
	got, err := SegmentFileName(created, "019DAB90-0000-7000-8000-000000000001", segment)
	if err != nil || got != want {
		t.Fatalf("SegmentFileName = %q, %v, want %q", got, err, want)
	}
	th, seg, at, err := ParseSegmentFileName(want)
	if err != nil || th != thread || seg != segment || !at.Equal(created) {
		t.Fatalf("ParseSegmentFileName = %q %q %v %v", th, seg, at, err)
	}
	// Compressed by Codex as any cold rollout: the same segment.
	if th, seg, at, err := ParseSegmentFileName(want + CompressedSuffix); err != nil || th != thread || seg != segment || !at.Equal(created) {
		t.Fatalf("ParseSegmentFileName(compressed) = %q %q %v %v", th, seg, at, err)
	}
	if _, _, err := ParseFileName(want); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("ParseFileName(segment name) error = %v, want ErrInvalidID", err)
	}
	if _, err := SegmentFileName(created, "x", segment); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("SegmentFileName(bad thread) error = %v", err)
	}
	if _, err := SegmentFileName(created, thread, "../x"); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("SegmentFileName(bad segment) error = %v", err)
	}
	for _, name := range []string{
		"rollout-2026-11-25T21-08-22-019dab90-0000-7000-8000-000000000001.jsonl",
		"rollout-2026-11-25T21-08-22-019dab90-0000-7000-8000-000000000001-01a21489-c520-7c33-a44c-59d898a97f3f.jsonl",
		"rollout-2026-11-25T21-08-22-019dab90-0000-7000-8000-000000000001_01a21489-c520-7c33-a44c-59d898a97f3g.jsonl",
		"rollout-2026-13-25T21-08-22-019dab90-0000-7000-8000-000000000001_01a21489-c520-7c33-a44c-59d898a97f3f.jsonl",
		"rollout-2026-11-25T21-08-22-019dab90-0000-7000-8000-000000000001_01a21489-c520-7c33-a44c-59d898a97f3f.json",
		"x/llout-2026-11-25T21-08-22-019dab90-0000-7000-8000-000000000001_01a21489-c520-7c33-a44c-59d898a97f3f.jsonl",
		"rollout-2026-11-25T21-08-22-019dab90-0000-7000-8000-000000000001_01a21489-c520-7c33-a44c-59d898a97f3f.jsonl.gz",
	} {
		if _, _, _, err := ParseSegmentFileName(name); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseSegmentFileName(%q) error = %v, want ErrInvalidID", name, err)
		}
	}
}
