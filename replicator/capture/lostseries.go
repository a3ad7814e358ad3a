package capture

import (
	"context"
	"fmt"
	"time"

	"github.com/mongopg/replicator/replicator/buffer"
)

// lostSeries bounds the automatic recoveries from lost history
// (on_history_lost: resync) that follow each other: each recovery restarts
// the stream at a resync's T0, and if that T0 falls off the oplog again
// before the stream gets going (an oplog window shorter than the copy, or
// a T0 that was already old), recovering again at once would purge the
// buffer and stall every collection in a loop. So a series of losses
// without HistoryLostQuiet of streaming in between waits HistoryLostBackoff,
// doubling, before each recovery after the first, logs each one, and after
// HistoryLostRetries recoveries stops capture with an error that says why.
type lostSeries struct {
	n    int       // recoveries in the current series
	last time.Time // when the last one finished
}

// next is called on every loss before recovering. It returns an error
// when the series is over its bound, after waiting its backoff otherwise.
func (s *lostSeries) next(ctx context.Context, c *Capture, pos buffer.Position) error {
	if s.n > 0 && time.Since(s.last) >= c.cfg.HistoryLostQuiet {
		s.n = 0
	}
	if s.n >= c.cfg.HistoryLostRetries {
		return fmt.Errorf("the automatic resync (on_history_lost: resync) lost the history again %d times in a row, each within %s of the last: the oplog window is shorter than the resync needs",
			s.n, c.cfg.HistoryLostQuiet)
	}
	if s.n > 0 {
		wait := c.cfg.HistoryLostBackoff << (s.n - 1)
		c.log.Warn("change stream history lost again soon after a recovery; waiting before the next one",
			"source", c.cfg.Source, "recovery", s.n+1, "of", c.cfg.HistoryLostRetries, "wait", wait, "cluster_time", pos.ClusterTime)
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.n++
	s.last = time.Now()
	return nil
}
