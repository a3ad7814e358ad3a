package snapshot

import (
	"context"
)

// StartResync prepares a resync of cfg.Collections (all mappings when
// empty): it resumes each collection's unfinished resync, or captures a new
// T0 (one for all) and records a new plan, superseding an unfinished
// initial snapshot of the same collection.
func StartResync(ctx context.Context, deps Deps, cfg Config) (*Snapshot, error) {
	return prepare(ctx, deps, cfg, KindResync)
}

// Resync re-copies collections in place while the others keep streaming:
// StartResync, cfg.OnT0, then (*Snapshot).Run, which loads every document
// at (T0, 0) under the version guard and then sweeps the rows the copy did
// not see. Readers never see a table empty or half-loaded: rows are only
// overwritten, and removed once their absence from the source is known.
//
// Recovery from a lost resume point (resync --all) must also move the
// capture position to T0: pass that in cfg.OnT0 (see capture.ResetCapture), or let
// Coordinator.OnHistoryLost do it inside `replicator run`.
func Resync(ctx context.Context, deps Deps, cfg Config) error {
	s, err := StartResync(ctx, deps, cfg)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
