package capture

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/transform"
)

// Holds stop one collection on the capture side while the others stream
// on (buffer.Hold): a drop or rename of the collection, or an event its
// mapping cannot transform under on_error: halt. The ordered stage owns the
// holds of a running capture: it writes a new hold to the buffer's KV
// bucket before it reads on, so a restart finds it, and it re-reads the
// bucket every holdSyncInterval to see releases a resync asks for
// (ReleaseHolds).
const holdSyncInterval = 500 * time.Millisecond

// syncHolds re-reads the holds when holdSyncInterval has passed: it
// answers release requests with the current position (every event after it
// is published, so a resync starting there misses nothing), and forgets a
// released hold once the resync has taken its release and the saved
// position is past the event that held it (a restart can then no longer
// read that event and hold the collection again; the events after it that
// a restart would publish instead of skipping are harmless, the version
// guard keeps the resync's newer rows).
func (c *Capture) syncHolds(ctx context.Context, r *reader) error {
	if time.Since(r.holdsSynced) < holdSyncInterval {
		return nil
	}
	// A release names the position reached: every grouped event before it
	// must be handed to the publisher first.
	if err := c.flushGroups(ctx, r); err != nil {
		return err
	}
	r.holdsSynced = time.Now()
	store := c.buf.Holds()
	list, err := store.List(ctx, c.cfg.Source)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	c.saveMu.Lock()
	saved := c.lastSaved.ClusterTime
	c.saveMu.Unlock()
	now := map[string]buffer.Hold{}
	for _, h := range list {
		switch {
		case h.ReleaseRequested && !h.Released():
			h.ReleasedAt = r.pos.ClusterTime
			if h.ReleasedAt.IsZero() {
				h.ReleasedAt = h.ClusterTime
			}
			if err := store.Put(ctx, c.cfg.Source, h); err != nil {
				return fmt.Errorf("capture: %w", err)
			}
			c.log.Info("capture hold released for a resync; the collection's events after the release are published again",
				"collection", h.Collection, "released_at", h.ReleasedAt)
		case h.Released() && h.ReleaseTaken && h.ClusterTime.Before(saved):
			if err := store.Delete(ctx, c.cfg.Source, h.Collection); err != nil {
				return fmt.Errorf("capture: %w", err)
			}
			continue
		}
		now[h.Collection] = h
	}
	for ns := range r.holds {
		if _, ok := now[ns]; !ok {
			c.setHeldGauge(ns, false)
		}
	}
	for ns, h := range now {
		c.setHeldGauge(ns, !h.Released())
	}
	r.holds = now
	return nil
}

func (c *Capture) setHeldGauge(ns string, held bool) {
	if _, ok := c.mappings[ns]; !ok {
		return // a rename target not (yet) configured: no label for it
	}
	v := 0.0
	if held {
		v = 1
	}
	c.met.held.WithLabelValues(ns).Set(v)
}

// skips reports whether the event of ns at ct belongs to a held collection
// and is read past without publishing.
func (r *reader) skips(ns string, ct transform.ClusterTime) bool {
	h, ok := r.holds[ns]
	return ok && h.Skips(ct)
}

// held reports whether ns is held and not yet released (no heartbeat then,
// so its apply lag grows).
func (r *reader) held(ns string) bool {
	h, ok := r.holds[ns]
	return ok && !h.Released()
}

// hold stores a hold of ns caused by the event at ct, before capture reads
// past that event, and tells the operator.
func (c *Capture) hold(ctx context.Context, r *reader, ns, reason, recovery string, ct transform.ClusterTime) error {
	h := buffer.Hold{Collection: ns, Reason: reason, Recovery: recovery, ClusterTime: ct, Since: time.Now().UTC()}
	if err := c.buf.Holds().Put(ctx, c.cfg.Source, h); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	if r.holds == nil {
		r.holds = map[string]buffer.Hold{}
	}
	r.holds[ns] = h
	c.setHeldGauge(ns, true)
	c.log.Error("capture holds a collection; the others stream on", "collection", ns, "reason", reason,
		"cluster_time", ct, "recovery", recovery)
	return nil
}

// holdRelease bounds how long ReleaseHolds waits for a running capture.
const holdRelease = 2 * time.Minute

// ReleaseHolds releases the holds of namespaces so that a resync of them
// can start, and returns the cluster time the resync must take as its T0
// (zero when none of them is held): capture publishes every event of the
// collections after it, and skipped only events at or before it, whose
// effect the resync's copy reads.
//
// A running capture releases the holds itself, at its current position
// (syncHolds), when asked through the bucket. When no capture runs (its
// lease is free), ReleaseHolds takes the lease and releases them at the
// source's current cluster time, which a capture started later reaches
// from its saved position. clusterTime reads that time.
func ReleaseHolds(ctx context.Context, buf *buffer.Buffer, source string, namespaces []string,
	clusterTime func(context.Context) (transform.ClusterTime, error)) (transform.ClusterTime, error) {
	store := buf.Holds()
	var t0 transform.ClusterTime
	pending := map[string]bool{}
	for _, ns := range namespaces {
		h, _, err := store.Get(ctx, source, ns)
		if errors.Is(err, buffer.ErrNoHold) {
			continue
		}
		if err != nil {
			return t0, err
		}
		if h.Released() {
			// Released for an earlier resync that did not finish.
			t0 = later(t0, h.ReleasedAt)
			if !h.ReleaseTaken {
				h.ReleaseTaken = true
				if err := store.Put(ctx, source, h); err != nil {
					return t0, err
				}
			}
			continue
		}
		h.ReleaseRequested = true
		if err := store.Put(ctx, source, h); err != nil {
			return t0, err
		}
		pending[h.Collection] = true
	}
	deadline := time.Now().Add(holdRelease)
	for len(pending) > 0 {
		for ns := range pending {
			h, _, err := store.Get(ctx, source, ns)
			if err != nil && !errors.Is(err, buffer.ErrNoHold) {
				return t0, err
			}
			if err == nil && !h.Released() {
				continue
			}
			if err == nil {
				t0 = later(t0, h.ReleasedAt)
				h.ReleaseTaken = true
				if err := store.Put(ctx, source, h); err != nil {
					return t0, err
				}
			}
			delete(pending, ns)
		}
		if len(pending) == 0 {
			break
		}
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		lease, err := buf.AcquireLease(lctx, source, time.Minute)
		cancel()
		if err == nil {
			at, err := releaseStopped(ctx, store, source, pending, clusterTime)
			lease.Release(context.WithoutCancel(ctx))
			return later(t0, at), err
		}
		if ctx.Err() != nil {
			return t0, ctx.Err()
		}
		if time.Now().After(deadline) {
			return t0, fmt.Errorf("release capture holds: capture of source %q holds its lease but did not release the holds within %s", source, holdRelease)
		}
		time.Sleep(holdSyncInterval)
	}
	return t0, nil
}

// releaseStopped releases the pending holds of a stopped capture (the
// caller holds its lease) at the current cluster time.
func releaseStopped(ctx context.Context, store *buffer.Holds, source string, pending map[string]bool,
	clusterTime func(context.Context) (transform.ClusterTime, error)) (transform.ClusterTime, error) {
	at, err := clusterTime(ctx)
	if err != nil {
		return at, fmt.Errorf("release capture holds: %w", err)
	}
	for ns := range pending {
		h, _, err := store.Get(ctx, source, ns)
		if errors.Is(err, buffer.ErrNoHold) {
			continue
		}
		if err != nil {
			return at, err
		}
		if !h.Released() {
			h.ReleasedAt, h.ReleaseTaken = at, true
			if err := store.Put(ctx, source, h); err != nil {
				return at, err
			}
		}
	}
	return at, nil
}

func later(a, b transform.ClusterTime) transform.ClusterTime {
	if a.Before(b) {
		return b
	}
	return a
}
