package server

import (
	"fmt"

	"github.com/spoolhq/spool/manager"
)

// capability returns the backend as C, or an error that answers 501
// not_supported naming what is missing.
func capability[C any](s *Server, what string) (C, error) {
	c, ok := s.m.(C)
	if !ok {
		return c, fmt.Errorf("%s: %w", what, manager.ErrNotSupported)
	}
	return c, nil
}
