package rollout_test

import (
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
