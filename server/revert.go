package server

import (
	"net/http"

	"github.com/spoolhq/spool/manager"
)

// revertRequest is the body of POST /v1/threads/{id}/revert: where to cut
// the thread back, one of the two.
type revertRequest struct {
	BeforeTurnID      string `json:"before_turn_id"`
	BeforeUserMessage *int   `json:"before_user_message"`
}

// revertThread cuts a thread back before a turn, writing a revert segment
// as Codex's thread/revert does, and answers the thread.
func (s *Server) revertThread(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	var req revertRequest
	if err := readBody(r, &req, false); err != nil {
		return err
	}
	if req.BeforeUserMessage != nil && *req.BeforeUserMessage < 0 {
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "before_user_message must not be negative")
	}
	reverter, err := capability[manager.Reverter](s, "revert")
	if err != nil {
		return err
	}
	thread, err := reverter.Revert(r.Context(), id, manager.RevertOptions{BeforeTurnID: req.BeforeTurnID, BeforeUserMessage: req.BeforeUserMessage})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireThread(thread))
	return nil
}
