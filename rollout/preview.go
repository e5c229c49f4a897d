package rollout

import (
	"bytes"
	"encoding/json"
	"strings"
)

// ImagePreview is the preview Codex shows for a prompt of images alone.
const ImagePreview = "[Image]"

// userMessagePrefix is the marker before the prompt proper in the prompts
// of older Codex versions; the preview is what follows it.
const userMessagePrefix = "## My request for Codex:"

// previewLine is the part of a prompt's echo event Preview decodes: a
// legacy user_message (message, images, local_images) or a paginated
// item_completed UserMessage (item.content). The images are only counted
// and the content parts decoded one at a time, so that an echo of millions
// of them costs memory in proportion to its text (decoded into slices,
// four million one-letter images of a 16 MB line took half a gigabyte).
type previewLine struct {
	Payload struct {
		Message     string      `json:"message"`
		Images      hasElements `json:"images"`
		LocalImages hasElements `json:"local_images"`
		Item        *struct {
			Type    string       `json:"type"`
			Content contentParts `json:"content"`
		} `json:"item"`
	} `json:"payload"`
}

// hasElements records whether a JSON array has an element: whether a
// []json.RawMessage decoded from it would be non-empty, without holding
// the elements. Like that slice, it takes null as empty and fails on any
// other value.
type hasElements bool

func (h *hasElements) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case string(data) == "null":
		*h = false
	case len(data) >= 2 && data[0] == '[':
		*h = len(bytes.TrimSpace(data[1:len(data)-1])) > 0
	default:
		return errNotArray
	}
	return nil
}

// Preview returns the thread preview Codex 0.169 takes from line l, and
// whether l gives one. A thread's preview is the first line of its
// history that gives one, and it never changes after (see docs/CODEX.md,
// Previews): only the echo of a prompt gives one, an event_msg
// user_message (legacy) or item_completed UserMessage (paginated), in a
// history of either mode. Its text is the message (a paginated item's
// text parts joined), after "## My request for Codex:" when it holds
// that, without surrounding white space, and never shortened; a message
// of white space alone with an image gives ImagePreview, without one it
// gives none. The response_item a counted user message comes from gives
// none, nor does a rollback or revert take a preview back.
func Preview(l *Line) (string, bool) {
	if l.Err != nil || l.Type != TypeEventMsg || l.TooDeep() {
		return "", false
	}
	switch l.PayloadType {
	case "user_message", "item_completed":
	default:
		return "", false
	}
	var ev previewLine
	if err := json.Unmarshal(l.Raw, &ev); err != nil {
		return "", false
	}
	p := ev.Payload
	completed := l.PayloadType == "item_completed"
	if completed && (p.Item == nil || p.Item.Type != "UserMessage") {
		return "", false
	}
	var itemText strings.Builder
	itemImages := false
	if p.Item != nil {
		// A part encoding/json would refuse (contentParts checks only a
		// content member a later one replaces) gives no preview, as the
		// line failing to decode did.
		err := eachElement(p.Item.Content, func(elem []byte) error {
			part, ok := decodePart(elem)
			if !ok {
				return errPartType
			}
			switch part.Type {
			case "text":
				itemText.WriteString(part.Text())
			case "image", "local_image":
				itemImages = true
			}
			return nil
		})
		if err != nil {
			return "", false
		}
	}
	text, images := p.Message, bool(p.Images || p.LocalImages)
	if completed {
		text, images = itemText.String(), itemImages
	}
	if i := strings.Index(text, userMessagePrefix); i >= 0 {
		text = text[i+len(userMessagePrefix):]
	}
	if text = strings.TrimSpace(text); text != "" {
		return text, true
	}
	if images {
		return ImagePreview, true
	}
	return "", false
}
