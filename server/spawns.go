package server

import (
	"net/http"

	"github.com/spoolhq/spool/api"
)

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
	writeJSON(w, http.StatusOK, api.Spawns{SpawnedBy: wireRelatives(by), Spawns: wireRelatives(spawned)})
	return nil
}
