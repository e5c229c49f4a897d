package server

import (
	"net/http"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
)

func (s *Server) spawns(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	spawns, err := capability[manager.SpawnLineage](s, "spawns")
	if err != nil {
		return err
	}
	by, err := spawns.SpawnedBy(r.Context(), id)
	if err != nil {
		return err
	}
	spawned, err := spawns.Spawns(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Spawns{SpawnedBy: wireRelatives(by), Spawns: wireRelatives(spawned)})
	return nil
}
