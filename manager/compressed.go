package manager

import (
	"fmt"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// refuseCompressed fails with ErrCompressed when row's rollout is a
// compressed one (rollout.IsCompressed): spool reads, indexes and forks
// those, but never writes to them. It runs before anything touches the
// file, so a refused append leaves it as it was.
func refuseCompressed(row store.Thread) error {
	if rollout.IsCompressed(row.RolloutPath) {
		return fmt.Errorf("append to %s: %s: %w", row.ID, row.RolloutPath, ErrCompressed)
	}
	return nil
}
