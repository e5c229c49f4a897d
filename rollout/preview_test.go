package rollout_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// TestPreview: the preview each line gives, as Codex 0.169 lists it
// (compat.TestPreviewsAsCodex checks the same cases against the binary).
func TestPreview(t *testing.T) {
	long := strings.Repeat("long words ", 30)
	tests := []struct {
		name string
		line string
		want string
		ok   bool
	}{
		{"legacy echo", `{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":" hi there ","images":[],"local_images":[]}}`, "hi there", true},
		{"blank echo", `{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":" \n\t","images":[],"local_images":[]}}`, "", false},
		{"image only", `{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":"","images":["data:image/png;base64,AA=="]}}`, rollout.ImagePreview, true},
		{"local image only", `{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":"  ","local_images":["/tmp/a.png"]}}`, rollout.ImagePreview, true},
		{"text and image", `{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":"look","images":["data:image/png;base64,AA=="]}}`, "look", true},
		{"never shortened", `{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":"` + long + `"}}`, strings.TrimSpace(long), true},
		{"after the request marker", `{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":"ctx\n## My request for Codex:\n do it "}}`, "do it", true},
		{"context is not filtered", `{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":"<environment_context>x</environment_context>"}}`, "<environment_context>x</environment_context>", true},
		{"paginated echo", `{"timestamp":"t","ordinal":3,"type":"event_msg","payload":{"type":"item_completed","item":{"type":"UserMessage","content":[{"type":"text","text":" a "},{"type":"text","text":"  "},{"type":"text","text":"b"}]}}}`, "a   b", true},
		{"paginated, a part encoding/json refuses", `{"timestamp":"t","type":"event_msg","payload":{"type":"item_completed","item":{"type":"UserMessage","content":[{"type":"text","text":"hi"},5]}}}`, "", false},
		{"paginated, a text that is no string", `{"timestamp":"t","type":"event_msg","payload":{"type":"item_completed","item":{"type":"UserMessage","content":[{"type":"text","text":"hi"},{"type":"text","text":7}]}}}`, "", false},
		{"paginated blank", `{"timestamp":"t","type":"event_msg","payload":{"type":"item_completed","item":{"type":"UserMessage","content":[{"type":"text","text":" "}]}}}`, "", false},
		{"paginated image", `{"timestamp":"t","type":"event_msg","payload":{"type":"item_completed","item":{"type":"UserMessage","content":[{"type":"image","image_url":"data:x"}]}}}`, rollout.ImagePreview, true},
		{"paginated local image", `{"timestamp":"t","type":"event_msg","payload":{"type":"item_completed","item":{"type":"UserMessage","content":[{"type":"local_image","path":"/a.png"}]}}}`, rollout.ImagePreview, true},
		{"paginated text and image", `{"timestamp":"t","type":"event_msg","payload":{"type":"item_completed","item":{"type":"UserMessage","content":[{"type":"image","image_url":"data:x"},{"type":"text","text":" with image "}]}}}`, "with image", true},
		{"agent echo", `{"timestamp":"t","type":"event_msg","payload":{"type":"item_completed","item":{"type":"AgentMessage","content":[{"type":"Text","text":"answer"}]}}}`, "", false},
		{"the prompt item", `{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"prompt"}]}}`, "", false},
		{"agent message", `{"timestamp":"t","type":"event_msg","payload":{"type":"agent_message","message":"answer"}}`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := rollout.Preview(rollout.NewLine([]byte(tc.line), 0, 0))
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Preview = %q, %v, want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestPreviewManyPartsMemory: the echo of a prompt of millions of
// one-letter parts or images gives its preview with memory in proportion
// to the line, where decoding them into slices took ten to thirty times
// the line.
func TestPreviewManyPartsMemory(t *testing.T) {
	const parts = 1 << 20
	build := func(head, part, tail string) []byte {
		raw := []byte(head + part)
		for range parts - 1 {
			raw = append(raw, ","+part...)
		}
		return append(raw, tail...)
	}
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"item parts", build(`{"timestamp":"t","type":"event_msg","payload":{"type":"item_completed","item":{"type":"UserMessage","content":[`,
			`{"type":"text","text":"a"}`, `]}}}`), strings.Repeat("a", parts)},
		{"images", build(`{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":" ","images":[`,
			`"a"`, `]}}`), rollout.ImagePreview},
		{"local images", build(`{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":" ","local_images":[`,
			`"a"`, `]}}`), rollout.ImagePreview},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			got, ok := rollout.Preview(rollout.NewLine(tt.raw, 0, 0))
			runtime.ReadMemStats(&after)
			if !ok || got != tt.want {
				t.Fatalf("Preview = %.20q (%d bytes), %v; want %.20q (%d bytes)", got, len(got), ok, tt.want, len(tt.want))
			}
			allocated := after.TotalAlloc - before.TotalAlloc
			if limit := uint64(2 * len(tt.raw)); allocated > limit {
				t.Errorf("Preview of a %d-byte line allocated %d bytes, want at most %d", len(tt.raw), allocated, limit)
			}
		})
	}
}
