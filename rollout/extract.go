package rollout

import (
	"encoding/json"
	"time"
)

// ParseTimestamp reads an envelope timestamp. Codex writes RFC 3339 in UTC
// with milliseconds; on read the format is free, so RFC 3339 with or
// without fractional seconds and a zone is accepted. ok is false for
// anything else.
func ParseTimestamp(s string) (t time.Time, ok bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
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
