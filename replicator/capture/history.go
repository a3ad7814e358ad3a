package capture

import (
	"context"
	"fmt"
	"time"

	"github.com/mongopg/replicator/replicator/buffer"
)

// recoverHistory is the policy on_history_lost: resync, run by the reader
// when its resume point r.pos is no longer in the oplog. In order:
//
//  1. flush the publisher, so nothing read before the loss is still on its
//     way into the buffer;
//  2. OnHistoryLost records a resync of every collection at a new T0 and
//     returns T0 (the resync copies concurrently, beside streaming);
//  3. purge the configured collections' buffered events: all are older
//     than T0 and superseded by the resync, and dropping them keeps a stale
//     event from racing the resync's sweep (PurgeBuffered);
//  4. make {ClusterTime: T0} the durable position and save it, and forget
//     the holds (the resync copies held collections too);
//  5. the caller reopens the stream at T0.
//
// A crash before step 4 leaves the lost position saved: the next start
// fails the same way and runs the policy again, and OnHistoryLost resumes
// the unfinished resync. The lease is held throughout, so no other capture
// publishes meanwhile.
func (c *Capture) recoverHistory(ctx context.Context, r *reader, cause error) error {
	c.log.Warn("change stream resume point lost; resyncing every collection and restarting capture at the resync's T0 (on_history_lost: resync)",
		"source", c.cfg.Source, "token", r.pos.Token, "cluster_time", r.pos.ClusterTime, "err", cause)
	if err := r.pub.Flush(ctx); err != nil {
		return err
	}
	t0, err := c.OnHistoryLost(ctx, cause)
	if err != nil {
		return err
	}
	if t0.IsZero() {
		return fmt.Errorf("the resync reported no T0")
	}
	if err := PurgeBuffered(ctx, c.buf, c.Checkpoints, c.units()); err != nil {
		return err
	}
	p := buffer.Position{ClusterTime: t0}
	if err := r.pub.Advance(ctx, p); err != nil {
		return err
	}
	if err := r.pub.Flush(ctx); err != nil {
		return err
	}
	if err := c.save(ctx, c.buf.Positions(), r.pub); err != nil {
		return err
	}
	// The resync copies every collection, held ones included.
	if err := clearHolds(ctx, c.buf.Holds(), c.cfg.Source, c.names); err != nil {
		return err
	}
	for ns := range r.holds {
		c.setHeldGauge(ns, false)
	}
	r.holds, r.holdsSynced = nil, time.Time{}
	r.pos = p
	c.log.Info("capture restarting at the resync's T0", "source", c.cfg.Source, "cluster_time", t0)
	return nil
}
