package server

import (
	"net/http"

	"github.com/spoolhq/spool/manager"
)

// appendTurnRequest is the body of POST /v1/threads/{id}/turns: one
// complete user turn, written as Codex writes one.
type appendTurnRequest struct {
	Prompt string `json:"prompt"`
	Answer string `json:"answer"`
	TurnID string `json:"turn_id"`
	Model  string `json:"model"`
}

func (s *Server) appendTurn(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	var req appendTurnRequest
	if err := readBody(r, &req, true); err != nil {
		return err
	}
	dropBody(r) // req holds copies of its texts
	if req.Prompt == "" {
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "prompt is required")
	}
	safe, err := appendOptions(r)
	if err != nil {
		return err
	}
	turns, err := capability[manager.TurnWriter](s, "append turn")
	if err != nil {
		return err
	}
	res, err := turns.AppendTurn(r.Context(), id, manager.TurnOptions{Prompt: req.Prompt, Answer: req.Answer, TurnID: req.TurnID, Model: req.Model, Safe: safe})
	if err != nil {
		return err
	}
	if len(res.Offsets) > 0 && !res.Replayed { // a replay wrote nothing
		s.metrics.observeAppend(len(res.Offsets), res.Thread.HistorySize()-res.Offsets[0])
	}
	writeJSON(w, http.StatusOK, wireAppendResult(res))
	return nil
}
