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

// isolateFrame finds the event at fault among msgs, the events of one
// buffer message, which fail together with failed (an error of class
// classEvent), and makes it a dead letter (isolate). It looks for the
// shortest failing prefix by bisection, each trial a transaction that
// rolls back: the last event of that prefix fails given the events before
// it, as the event at fault does when a batch of single-event messages is
// applied in halves. A trial failing for another reason is retried after
// a backoff when transient; any other failure stops as apply would.
func (c *collection) isolateFrame(ctx context.Context, msgs []message, failed error) error {
	lo, hi := 0, len(msgs) // msgs[:lo] applies; msgs[:hi] fails with failed
	bo := newBackoff(c.conf.MaxRetryBackoff)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		err := c.commit(ctx, msgs[:mid], false, true)
		if err == nil {
			lo = mid
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var halt *HaltError
		if errors.As(err, &halt) || errors.Is(err, errEpochChanged) || errors.Is(err, errCheckpointMoved) {
			return err
		}
		switch class, reason := c.classify(err); class {
		case classEvent:
			hi, failed = mid, err
		case classRetry:
			c.m.retries.WithLabelValues(c.unit, reason).Inc()
			if err := bo.wait(ctx); err != nil {
				return err
			}
		default:
			return c.schemaHalt(msgs[0].seq, err)
		}
	}
	return c.isolate(&msgs[hi-1], failed)
}
