package server

import (
	"net/http"
	"strconv"

	"github.com/spoolhq/spool/manager"
)

// Response headers of GET /v1/threads/{id}/turns/by-id/{turn_id}: where the
// turn lies in the thread's history and how it ended.
const (
	headerTurnOffset      = "Turn-Offset"       // position of its first line (task_started or turn_context)
	headerTurnEnd         = "Turn-End"          // position just past its task_complete or turn_aborted line
	headerTurnStatus      = "Turn-Status"       // completed, aborted or in_progress
	headerTurnUserMessage = "Turn-User-Message" // ordinal of its first counted user message (the k of /turns/{k})
)

// readTurnByID streams the lines of the Codex turn named by its id, from
// its start to its end, with the span in the Turn-* headers.
func (s *Server) readTurnByID(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	turnID := r.PathValue("turn_id")
	turns, err := capability[manager.TurnReader](s, "turns by id")
	if err != nil {
		return err
	}
	lines, span, err := turns.ReadTurnByID(r.Context(), id, turnID)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set(headerTurnOffset, strconv.FormatInt(span.Offset, 10))
	h.Set(headerTurnEnd, strconv.FormatInt(span.End, 10))
	h.Set(headerTurnStatus, span.Status)
	h.Set(headerTurnUserMessage, strconv.Itoa(span.UserMessage))
	return s.streamNDJSON(r.Context(), w, lines)
}
