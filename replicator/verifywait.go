package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/replicator/verify"
	"github.com/mongopg/replicator/transform"
)

// appliedStall is how long capture's position or an apply checkpoint may
// stand still before verify stops waiting for it: longer than an idle
// replica set's 10 s between no-op writes, which is how often capture's
// position moves on an idle source.
const appliedStall = 30 * time.Second

// AppliedWaiter returns verify's wait for the applier, sound while writes
// go on (a drain, which waits for nothing pending, would not end under
// load). Every change of collection ns up to cluster time ct is applied
// once:
//
//  1. capture's saved position is past ct: capture saves only the
//     contiguous prefix of acknowledged publishes (guarantee 1), so every
//     event up to ct is stored in the buffer; strictly past, as the events
//     of one transaction share a cluster time;
//  2. the last message on ns's subject, read after 1, has sequence L: the
//     events up to ct are at or below it;
//  3. ns's apply checkpoint is at L or later: the applier commits messages
//     in sequence order with their checkpoint.
//
// A partitioned collection has one subject and one checkpoint per
// partition: units(ns) lists them (config.UnitLookup), and 2 and 3 hold
// for each.
//
// A collection capture holds, or whose snapshot or resync has not
// finished, is not waited for (its rows are written beside the buffer).
// source is capture's source name (config ForCapture().Source).
func AppliedWaiter(buf *buffer.Buffer, target *pgxpool.Pool, source string, units func(ns string) []string) verify.AppliedFunc {
	return func(ctx context.Context, ns string, ct transform.ClusterTime, timeout time.Duration) error {
		w := &appliedWait{buf: buf, target: target, source: source, ns: ns, units: units(ns), ct: ct,
			deadline: time.Now().Add(timeout), stall: min(appliedStall, timeout)}
		return w.wait(ctx)
	}
}

type appliedWait struct {
	buf      *buffer.Buffer
	target   *pgxpool.Pool
	source   string
	ns       string
	units    []string // ns's apply units: ns, or its partitions
	ct       transform.ClusterTime
	deadline time.Time
	stall    time.Duration
}

func (w *appliedWait) notApplying(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", verify.ErrNotApplying, w.ns, fmt.Sprintf(format, args...))
}

func (w *appliedWait) wait(ctx context.Context) error {
	if err := w.beside(ctx); err != nil {
		return err
	}
	last, err := w.captured(ctx)
	if err != nil {
		return err
	}
	// A hold taken while capture caught up keeps changes up to ct out of
	// the buffer: look again.
	if err := w.beside(ctx); err != nil {
		return err
	}
	for i, unit := range w.units {
		if last[i] == 0 {
			continue
		}
		if err := w.applied(ctx, unit, last[i]); err != nil {
			return err
		}
	}
	return nil
}

// beside refuses a collection whose rows are being written beside the
// buffer or held back.
func (w *appliedWait) beside(ctx context.Context) error {
	runs, err := snapshot.Unfinished(ctx, w.target)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return w.notApplying("the target has no replicator metadata: no replicator ever applied it")
	}
	if err != nil {
		return fmt.Errorf("snapshot runs: %w", err)
	}
	if slices.Contains(runs, w.ns) {
		return w.notApplying("its snapshot or resync has not finished")
	}
	holds, err := w.buf.Holds().List(ctx, w.source)
	if err != nil {
		return w.buf.Cause(err)
	}
	for _, h := range holds {
		if h.Collection == w.ns && !h.Released() {
			return w.notApplying("capture holds it: %s; to recover: %s", h.Reason, h.Recovery)
		}
	}
	return nil
}

// captured waits for 1 and returns L of 2 for each unit (0: nothing on
// its subject).
func (w *appliedWait) captured(ctx context.Context) ([]uint64, error) {
	var seen sighting
	for {
		pos, err := w.buf.Positions().Load(ctx, w.source)
		switch {
		case errors.Is(err, buffer.ErrNoPosition):
			return nil, w.notApplying("capture never saved a position for source %s", w.source)
		case err != nil:
			return nil, w.buf.Cause(err)
		}
		if w.ct.Before(pos.ClusterTime) {
			break
		}
		at := fmt.Sprintf("capture's saved position is at cluster time %s, not past %s", FormatClusterTime(pos.ClusterTime), FormatClusterTime(w.ct))
		if err := w.standing(ctx, &seen, fmt.Sprint(pos.ClusterTime, pos.Token), pos.SavedAt, at, "is a replicator capturing?"); err != nil {
			return nil, err
		}
	}
	m, err := w.buf.JetStream().Stream(ctx, w.buf.Config().Stream)
	if err != nil {
		return nil, w.buf.Cause(err)
	}
	last := make([]uint64, len(w.units))
	for i, unit := range w.units {
		msg, err := m.GetLastMsgForSubject(ctx, w.buf.UnitSubject(unit))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, w.buf.Cause(err)
		}
		last[i] = msg.Sequence
	}
	return last, nil
}

// applied waits for 3.
func (w *appliedWait) applied(ctx context.Context, unit string, last uint64) error {
	var seen sighting
	for {
		cp, err := checkpoints.Get(ctx, w.target, unit)
		switch {
		case errors.Is(err, checkpoints.ErrNotFound):
			return w.notApplying("no apply checkpoint: nothing was ever applied")
		case err != nil:
			return err
		}
		if cp.Seq >= last {
			return nil
		}
		at := fmt.Sprintf("the apply checkpoint is at buffer sequence %d, below %d", cp.Seq, last)
		if err := w.standing(ctx, &seen, fmt.Sprint(cp.Epoch, cp.Seq), cp.UpdatedAt, at, "is a replicator applying?"); err != nil {
			return err
		}
	}
}

// standing follows a position (key, first seen at first) that is not
// there yet: one that has not moved for the stall time means no
// replicator moves it (question says which); otherwise it waits for the
// next reading.
func (w *appliedWait) standing(ctx context.Context, seen *sighting, key string, first time.Time, at, question string) error {
	now := time.Now()
	if since := seen.observe(key, first, now); now.Sub(since) >= w.stall {
		return w.notApplying("%s and has not moved for %s: %s", at, roundDuration(now.Sub(since)), question)
	}
	return w.pause(ctx, at)
}

// pause waits before the next reading, or reports the timeout with what
// was last seen.
func (w *appliedWait) pause(ctx context.Context, at string) error {
	if time.Now().After(w.deadline) {
		return w.notApplying("%s at the end of the wait", at)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(250 * time.Millisecond):
		return nil
	}
}
