package server

import (
	"net/http"

	"github.com/spoolhq/spool/store"
)

// spawnsResponse is the body of GET /v1/threads/{id}/spawns: the
// sub-agent lineage of a thread, the second kind of edge besides forks.
type spawnsResponse struct {
	// SpawnedBy is the chain of threads that spawned this one, nearest first.
	SpawnedBy []store.Relative `json:"spawned_by"`
	// Spawns are the sub-agents it spawned, directly or through theirs.
	Spawns []store.Relative `json:"spawns"`
}

func (s *Server) spawns(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	by, err := s.m.SpawnedBy(r.Context(), id)
	if err != nil {
		return err
	}
	spawned, err := s.m.Spawns(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, spawnsResponse{SpawnedBy: nonNil(by), Spawns: nonNil(spawned)})
	return nil
}
