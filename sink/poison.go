package sink

import (
	"context"
	"errors"
)

// Poison isolation (ARCHITECTURE.md, guarantee 6). A batch that fails on
// an event's fault (classEvent) is split in two and each half applied on
// its own, down to the event at fault, which becomes a dead letter. The
// checkpoint is a stream sequence, so the events of one batch message
// (envelope.Frames) commit together: batches split only between messages,
// and inside one message the event at fault is found by trial transactions
// that roll back (isolateFrame); the message then commits whole, its bad
// event as a dead letter. Nothing is committed twice, so a crash during
// isolation cannot record a dead letter twice.

// split returns where to split msgs for isolation: the boundary between
// buffer messages nearest the middle, or 0 when msgs are the events of one
// message.
func split(msgs []message) int {
	mid := len(msgs) / 2
	for d := 0; d <= mid; d++ {
		for _, i := range [2]int{mid - d, mid + d} {
			if i > 0 && i < len(msgs) && msgs[i].seq != msgs[i-1].seq {
				return i
			}
		}
	}
	return 0
}

// errTrialPassed: the events of a batch message that failed to commit
// apply in a trial: what failed has cleared (a row another collection
// was about to write, a concurrent resync), and the commit is tried again.
var errTrialPassed = errors.New("the batch message applies in a trial transaction")

// isolateFrame finds the event at fault among msgs, the events of one
// buffer message, which failed together with failed (an error of class
// classEvent), and makes it a dead letter (isolate). It looks for the
// shortest failing prefix by bisection, each trial a transaction that
// checks deferred constraints and rolls back: the last event of that
// prefix fails given the events before it, as the event at fault does
// when a batch of single-event messages is applied in halves. When no
// shorter prefix fails, a trial of the whole message confirms the
// failure; if it passes, errTrialPassed. A trial failing for another
// reason is retried after a backoff when transient; any other failure
// stops as apply would.
func (c *collection) isolateFrame(ctx context.Context, msgs []message, failed error) error {
	bo := newBackoff(c.conf.MaxRetryBackoff)
	// try applies msgs[:k] in a trial: fault is its error when an event
	// is at fault, stop any other failure that ends the isolation.
	try := func(k int) (fault, stop error) {
		for {
			err := c.commit(ctx, msgs[:k], false, true)
			if err == nil {
				return nil, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var halt *HaltError
			if errors.As(err, &halt) || errors.Is(err, errEpochChanged) || errors.Is(err, errCheckpointMoved) {
				return nil, err
			}
			switch class, reason := c.classify(err); class {
			case classEvent:
				return err, nil
			case classRetry:
				c.m.retries.WithLabelValues(c.unit, reason).Inc()
				if err := bo.wait(ctx); err != nil {
					return nil, err
				}
			default:
				return nil, c.schemaHalt(msgs[0].seq, err)
			}
		}
	}
	lo, hi := 0, len(msgs) // msgs[:lo] applies; msgs[:hi] fails with failed
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		fault, stop := try(mid)
		if stop != nil {
			return stop
		}
		if fault != nil {
			hi, failed = mid, fault
		} else {
			lo = mid
		}
	}
	if hi == len(msgs) {
		fault, stop := try(hi)
		if stop != nil {
			return stop
		}
		if fault == nil {
			return errTrialPassed
		}
		failed = fault
	}
	return c.isolate(&msgs[hi-1], failed)
}
