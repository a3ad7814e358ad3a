package snapshot

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/transform"
)

// sweep removes, after a resync copied every chunk, the rows of the
// collection whose version is older than the resync's T0: neither the
// resync (which wrote every document it read at (T0, 0), or found a newer
// row) nor streaming since T0 wrote them, so their documents no longer
// exist in the source. Each is deleted as a delete event at (T0, 0) would
// delete it (sink.Guard.DeleteOlder): its child rows go with it and it
// leaves a tombstone at (T0, 0) so an older buffered event cannot bring it
// back. A document the resync dead-lettered (isolate.go) has no row at T0
// either: a stale row of it is removed too, since the source no longer has
// that version, and its dead letter holds the document.
//
// It runs in one transaction under the root table lock of the load (see
// guardMerge): streaming writes of the collection wait for it, so none can
// slip a stale row in between the delete and its tombstone. Readers are
// not blocked.
func (s *Snapshot) sweep(ctx context.Context, j *job) (int64, error) {
	p, err := s.merger.plan(j.m.Table())
	if err != nil {
		return 0, err
	}
	var n int64
	err = pgx.BeginFunc(ctx, s.deps.Target, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, p.lock); err != nil {
			return err
		}
		n, err = p.guard.DeleteOlder(ctx, tx, transform.Version{ClusterTime: j.run.T0})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", j.m.Namespace(), err)
	}
	return n, nil
}
