package sink

import (
	"context"
	"errors"
)

// Claimer decides which of several apply processes applies each unit (a
// collection, or one partition of one: Applier.Units). Without one, an
// Applier applies every unit it is configured with. With one, a unit is
// applied only while this process holds its claim, so N processes on one
// buffer share the units, and a dead process's units are taken over
// (replicator/buffer, claims.go, implements it on NATS KV).
//
// A claim is for throughput, not for safety: should two processes apply
// one unit at once (a claim lost while a batch commits), the checkpoint
// row's guard (checkpoints.QueueAdvance) lets one commit per position and
// the version guard keeps every row at its newest version.
type Claimer interface {
	// Claim blocks until this process holds unit's claim, or ctx ends (the
	// error is then ctx's). The returned context ends when the claim is
	// lost, or handed to another process to even out the load; release
	// gives the claim up and must be called once the unit stopped
	// applying.
	Claim(ctx context.Context, unit string) (held context.Context, release func(), err error)
}

// Share makes the applier apply a unit only while it holds the unit's
// claim from cl. Call it before Run. Until a unit is claimed its lag and
// checkpoint age are not reported, and replicator_apply_claimed is 0.
func (a *Applier) Share(cl Claimer) {
	a.claimer = cl
	for _, c := range a.cols {
		c.clock.held.Store(false)
		c.m.claimed.WithLabelValues(c.unit).Set(0)
	}
}

// runUnit applies one unit: directly without a Claimer; with one, while
// its claim is held, claiming it again after losing it, until ctx ends or
// the unit halts. A halted unit keeps its claim as long as the Claimer
// lets it (until ctx ends, or the claim is lost or handed back), so that
// another process does not pick it up only to halt on the same message;
// then it is released, so the Claimer's account matches what it holds.
func (a *Applier) runUnit(ctx context.Context, c *collection, js consumers) error {
	if a.claimer == nil {
		return c.run(ctx, js)
	}
	for {
		held, release, err := a.claimer.Claim(ctx, c.unit)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.claimed()
		a.log.Info("applying", "collection", c.unit)
		err = c.run(held, js)
		var halt *HaltError
		if errors.As(err, &halt) {
			go func() { <-held.Done(); release() }()
			return err
		}
		c.unclaimed()
		release()
		if ctx.Err() != nil {
			return nil
		}
		a.log.Info("claim handed over or lost; another apply process applies it", "collection", c.unit)
	}
}

// claimed resets what this process knew of the unit, so the lag and age
// gauges start again from the checkpoint (loadPosition) rather than from
// the time this process last applied it.
func (c *collection) claimed() {
	c.clock.source.Store(0)
	c.clock.commit.Store(0)
	c.clock.held.Store(true)
	c.m.claimed.WithLabelValues(c.unit).Set(1)
}

// unclaimed stops this process reporting the unit's lag and backlog:
// the process that took it over reports them.
func (c *collection) unclaimed() {
	c.clock.held.Store(false)
	c.m.claimed.WithLabelValues(c.unit).Set(0)
	c.m.pending.WithLabelValues(c.unit).Set(0)
}
