package rollout

import (
	"encoding/json"
	"strings"
	"time"
)

// timestampLayouts are the envelope timestamp forms accepted on read,
// tried in order; a layout without a zone is read as UTC.
var timestampLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// ParseTimestamp reads an envelope or session_meta timestamp. Codex writes
// RFC 3339 in UTC with milliseconds; on read the format is free, so RFC
// 3339 with or without fractional seconds, zone or the "T" is accepted,
// around spaces trimmed. ok is false for anything else. It is the one
// parser of timestamps, so a live index and a rebuilt one agree.
func ParseTimestamp(s string) (t time.Time, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// BaseInstructions returns the text of base_instructions in a session_meta
// line ("" when it is null, missing, or the line does not decode).
func BaseInstructions(metaLine []byte) string {
	var env struct {
		Payload struct {
			BaseInstructions *struct {
				Text string `json:"text"`
			} `json:"base_instructions"`
		} `json:"payload"`
	}
	if json.Unmarshal(metaLine, &env) != nil || env.Payload.BaseInstructions == nil {
		return ""
	}
	return env.Payload.BaseInstructions.Text
}
