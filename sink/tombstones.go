package sink

import (
	"context"
	"fmt"
	"time"
)

// Tombstone garbage collection. A tombstone only matters while an event
// older than it could still be applied to its key:
//
//   - by delivery or replay from the buffer. Every older event of the key
//     was published before the delete that wrote the tombstone, and that was
//     before the tombstone's deleted_at (which a newer delete or a resync's
//     sweep moves forward), so once deleted_at is more than the buffer's
//     retention (buffer.max_age) ago, the buffer holds none of them;
//   - by a snapshot or resync still running (snapshot_runs in state copying
//     or sweeping) whose T0 is older than the tombstone: it may still copy
//     the document as it was at T0.
//
// So the applier periodically deletes each collection's tombstones whose
// deleted_at is older than Config.TombstoneRetention plus tombstoneGCMargin
// (clock differences between NATS and PostgreSQL) and that no such run
// needs, in batches of tombstoneGCBatch rows (each its own short
// statement, skipping rows a concurrent apply holds), at most
// tombstoneGCMaxBatches per collection and round, so one round's work is
// bounded however many tombstones have accumulated.

const (
	tombstoneGCMargin     = time.Hour
	tombstoneGCMaxBatches = 100
)

// tombstoneGCBatch is a variable so tests can exercise batching.
var tombstoneGCBatch = 5000

// collectTombstonesSQL deletes at most $4 tombstones of root table $1 older
// than $2 seconds that no active snapshot run of collection $3 needs.
const collectTombstonesSQL = `WITH doomed AS (
  SELECT tb.ctid FROM replicator.tombstones tb
  WHERE tb.table_name = $1 AND tb.deleted_at < now() - make_interval(secs => $2)
    AND NOT EXISTS (SELECT 1 FROM replicator.snapshot_runs r
      WHERE r.collection = $3 AND r.state IN ('copying', 'sweeping')
        AND (r.t0_ts, r.t0_inc, 0::bigint) < (tb.cluster_ts, tb.cluster_inc, tb.seq))
  LIMIT $4 FOR UPDATE SKIP LOCKED
)
DELETE FROM replicator.tombstones t USING doomed d WHERE t.ctid = d.ctid`

// collectTombstones runs one bounded round of garbage collection for the
// collection and returns how many tombstones it removed.
func (c *collection) collectTombstones(ctx context.Context, retention time.Duration) (int64, error) {
	age := (retention + tombstoneGCMargin).Seconds()
	var total int64
	for range tombstoneGCMaxBatches {
		tag, err := c.pool.Exec(ctx, collectTombstonesSQL, c.ts.root.def.Name, age, c.cfg.Namespace, tombstoneGCBatch)
		if err != nil {
			return total, fmt.Errorf("collect tombstones of %s: %w", c.ts.root.def.Name, err)
		}
		n := tag.RowsAffected()
		total += n
		c.m.tombstones.WithLabelValues(c.unit).Add(float64(n))
		if n < int64(tombstoneGCBatch) {
			break
		}
	}
	return total, nil
}

// collectTombstones runs a garbage collection round for every collection
// now and then every TombstoneGCInterval until ctx ends. Failures are
// logged and retried at the next round: they only delay the cleanup.
func (a *Applier) collectTombstones(ctx context.Context) {
	t := time.NewTicker(a.conf.TombstoneGCInterval)
	defer t.Stop()
	for {
		for _, c := range a.cols {
			if c.part.Index > 0 || !c.clock.held.Load() {
				continue // one unit per collection collects: its first partition's holder
			}
			n, err := c.collectTombstones(ctx, a.conf.TombstoneRetention)
			if err != nil && ctx.Err() == nil {
				a.log.Warn("tombstone garbage collection failed", "collection", c.cfg.Namespace, "err", err)
			}
			if n > 0 {
				a.log.Debug("tombstones removed", "collection", c.cfg.Namespace, "count", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
