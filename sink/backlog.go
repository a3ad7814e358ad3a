package sink

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The backlog of a collection is measured from its consumer's state, not
// from the messages it happens to fetch: when PostgreSQL stalls, the
// applier stops fetching, and a gauge set at fetch time would freeze at
// whatever it read last (0 when it was caught up) while the stream fills.
// backlogInterval is how often the consumer is asked.
const backlogInterval = 2 * time.Second

// stallAfter is how long a collection may hold a backlog without
// committing before the stall is logged (and then every stallRepeat).
const (
	stallAfter  = time.Minute
	stallRepeat = 5 * time.Minute
)

// consumerInfo is the part of jetstream.Consumer the watcher uses.
type consumerInfo interface {
	Info(ctx context.Context) (*jetstream.ConsumerInfo, error)
}

// watchBacklog sets replicator_buffer_pending_messages every
// backlogInterval to the messages the collection has not committed yet:
// those not yet delivered (NumPending) plus those delivered and not yet
// acknowledged (NumAckPending, acknowledged only after COMMIT). A backlog
// with no commit for stallAfter is logged as a stall. It returns when ctx
// ends; a failed query keeps the last value.
func (c *collection) watchBacklog(ctx context.Context, cons consumerInfo) {
	// A collection that never committed is measured from now.
	c.clock.commit.CompareAndSwap(0, time.Now().UnixNano())
	t := time.NewTicker(backlogInterval)
	defer t.Stop()
	var warned time.Time
	for {
		info, err := cons.Info(ctx)
		if err == nil {
			backlog := info.NumPending + uint64(info.NumAckPending)
			c.m.pending.WithLabelValues(c.unit).Set(float64(backlog))
			warned = c.checkStall(backlog, warned)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkStall logs a collection that holds a backlog and has committed
// nothing for stallAfter; warned is when it last did (zero: not stalled).
func (c *collection) checkStall(backlog uint64, warned time.Time) time.Time {
	last := time.Unix(0, c.clock.commit.Load())
	stalled := backlog > 0 && time.Since(last) >= stallAfter
	switch {
	case stalled && (warned.IsZero() || time.Since(warned) >= stallRepeat):
		c.log.Warn("apply stalled: messages wait in the buffer and nothing was committed", "collection", c.unit,
			"backlog", backlog, "last_commit", last.UTC().Format(time.RFC3339))
		return time.Now()
	case !stalled && !warned.IsZero():
		c.log.Info("apply resumed", "collection", c.unit, "backlog", backlog)
		return time.Time{}
	}
	return warned
}
