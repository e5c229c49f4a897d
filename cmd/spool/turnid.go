package main

import (
	"context"
	"encoding/json"
	"fmt"
)

// userMessageOfTurn returns the ordinal of the counted user message of the
// Codex turn turnID in thread id: the first one between the turn's start
// (its first turn_context or event_msg line carrying that turn_id) and the
// next turn's start. The index records no turn ids, so this reads the
// thread's history once; a fork-by-turn route on the server would seek
// instead.
func userMessageOfTurn(ctx context.Context, b backend, id, turnID string) (int, error) {
	turns, err := b.Turns(ctx, id)
	if err != nil {
		return 0, err
	}
	ordinalAt := turnOffsets(turns)
	started := false
	for line, err := range b.Items(ctx, id, -1) {
		if err != nil {
			return 0, err
		}
		if line.Type == "turn_context" || line.Type == "event_msg" {
			var p struct {
				TurnID string `json:"turn_id"`
			}
			if json.Unmarshal(line.Payload, &p) == nil && p.TurnID != "" {
				switch {
				case p.TurnID == turnID:
					started = true
				case started:
					return 0, fmt.Errorf("turn %s of thread %s has no user message that counts (rolled back, or setup only)", turnID, id)
				}
			}
		}
		if k, ok := ordinalAt[line.Offset]; ok && started {
			return k, nil
		}
	}
	if started {
		return 0, fmt.Errorf("turn %s of thread %s has no user message that counts (rolled back, or setup only)", turnID, id)
	}
	return 0, fmt.Errorf("thread %s has no turn %s", id, turnID)
}
