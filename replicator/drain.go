package replicator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// DrainSources is what a Drainer reads: the buffer and the target, both
// open, the capture source's name and the collections to wait for.
type DrainSources struct {
	Buffer *buffer.Buffer
	Target *pgxpool.Pool
	Source string
	// Collections lists apply units (config.Units): namespaces, or the
	// partitions of a partitioned collection.
	Collections []string
}

// DrainState is one reading of how far the apply of the collections has
// come towards a source cluster time (the target): the drain part of
// `replicator cutover`'s report, whose JSON field names are stable.
type DrainState struct {
	// TargetClusterTime is the source cluster time every collection must
	// reach; TargetTime is its seconds as a time.
	TargetClusterTime transform.ClusterTime `json:"target_cluster_time"`
	TargetTime        time.Time             `json:"target_time"`
	// Drained is true when every collection is drained.
	Drained bool `json:"drained"`
	// Capture is capture's saved position (null when none is saved or it
	// could not be read, CaptureWaiting says which); CaptureReached is true
	// once its cluster time is past the target.
	Capture        *PositionStatus   `json:"capture_position"`
	CaptureReached bool              `json:"capture_reached"`
	CaptureWaiting string            `json:"capture_waiting,omitempty"`
	Collections    []DrainCollection `json:"collections"`
	ReadAt         time.Time         `json:"read_at"`
}

// DrainCollection is one collection's part of a DrainState.
type DrainCollection struct {
	Collection string `json:"collection"`
	Drained    bool   `json:"drained"`
	// Held: capture holds the collection (buffer.Hold), not released.
	Held bool `json:"held"`
	// Snapshotting: a snapshot or resync run of it has not finished.
	Snapshotting bool `json:"snapshotting"`
	// Pending is what its apply consumer has not delivered or not had
	// acknowledged; null when the consumer does not exist.
	Pending *uint64 `json:"pending"`
	// The apply checkpoint; null when the collection has none (and
	// ClusterTime and SourceTime when it has no source time).
	AppliedSeq  *uint64                `json:"applied_seq"`
	ClusterTime *transform.ClusterTime `json:"cluster_time"`
	SourceTime  *time.Time             `json:"source_time"`
	CommittedAt *time.Time             `json:"committed_at"`
	// Waiting says why the collection is not drained; empty once it is.
	Waiting string `json:"waiting,omitempty"`
}

// Drainer waits until the apply of some collections has caught up with a
// source cluster time T: the drain step of `replicator cutover`. A
// collection is drained at T when, read in this order:
//
//  1. capture's saved position is past T. Capture saves only the
//     contiguous prefix of publishes the buffer acknowledged (guarantee
//     1), so every event up to T is stored in the buffer. Strictly past:
//     the events of one transaction share a cluster time, and a position
//     at T may be inside one. An idle source gets past T too (capture
//     moves on postBatchResumeToken, which the source's periodic no-op
//     writes advance).
//  2. capture does not hold the collection, and no snapshot or resync run
//     of it is unfinished (its copy writes beside the buffer).
//  3. its apply durable consumer (sink.Durable) has nothing pending:
//     every message stored when it was read, the events up to T among
//     them by 1, was delivered and acknowledged, and the applier
//     acknowledges only after COMMIT (guarantee 1).
//  4. its apply checkpoint's cluster time is at or past T: the applier
//     committed a message of T or later, an event or one of the
//     heartbeats capture publishes on every collection's subject, so an
//     idle collection gets there too while a replicator runs.
//
// Heartbeats are published without waiting for the events before them
// (buffer.Publisher.Heartbeat), so 4 alone would not prove that every
// earlier event is stored: 1 does. A Drainer only reads.
type Drainer struct {
	src    DrainSources
	target transform.ClusterTime
	stall  time.Duration

	// seen remembers, per collection, the checkpoint last read and since
	// when it has not moved; captureSeen the same for the capture
	// position.
	seen        map[string]sighting
	captureSeen sighting
}

// sighting is a position and when it was first seen as it is.
type sighting struct {
	key   string
	since time.Time
}

// observe records key at now and returns since when it has not changed.
// A position seen for the first time counts from first (its commit or
// save time) when that is earlier.
func (s *sighting) observe(key string, first, now time.Time) time.Time {
	switch {
	case s.since.IsZero():
		s.key, s.since = key, now
		if !first.IsZero() && first.Before(now) {
			s.since = first
		}
	case s.key != key:
		s.key, s.since = key, now
	}
	return s.since
}

// NewDrainer returns a Drainer for src towards target. A checkpoint or
// capture position that has not moved for stall is reported as stopped
// (no replicator applying, or running) rather than as on its way.
func NewDrainer(src DrainSources, target transform.ClusterTime, stall time.Duration) *Drainer {
	return &Drainer{src: src, target: target, stall: stall, seen: map[string]sighting{}}
}

// Wait reads the state every poll until every collection is drained or
// ctx ends; then it returns the last state read in full and ctx's error.
// progress, when set, gets every state read that is not drained yet.
func (d *Drainer) Wait(ctx context.Context, poll time.Duration, progress func(DrainState)) (DrainState, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	var last DrainState
	for {
		st := d.Read(ctx)
		if st.Drained {
			return st, nil
		}
		if ctx.Err() != nil {
			// The end of ctx may have cut this reading short: the one
			// before says what the drain was waiting for.
			if last.ReadAt.IsZero() {
				return st, ctx.Err()
			}
			return last, ctx.Err()
		}
		last = st
		if progress != nil {
			progress(st)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-t.C:
		}
	}
}

// Read reads the state once. What cannot be read is named in the
// Waiting fields, never returned: the next Read tries again.
func (d *Drainer) Read(ctx context.Context) DrainState {
	now := time.Now()
	st := DrainState{TargetClusterTime: d.target, TargetTime: time.Unix(int64(d.target.T), 0).UTC(),
		Collections: make([]DrainCollection, 0, len(d.src.Collections))}
	// Capture's position first (1): what is read after it is judged by it.
	captureStalled := d.readCapture(ctx, now, &st)
	r := d.readApply(ctx)
	st.Drained = true
	for _, ns := range d.src.Collections {
		c := r.collection(ns)
		c.Waiting = d.waiting(r, &c, now, &st, captureStalled)
		c.Drained = c.Waiting == ""
		st.Drained = st.Drained && c.Drained
		st.Collections = append(st.Collections, c)
	}
	st.ReadAt = time.Now().UTC()
	return st
}

// readCapture fills st's capture fields and reports whether capture's
// position is behind the target and has not moved for the stall time.
func (d *Drainer) readCapture(ctx context.Context, now time.Time, st *DrainState) (stalled bool) {
	b := d.src.Buffer
	pos, err := b.Positions().Load(ctx, d.src.Source)
	switch {
	case errors.Is(err, buffer.ErrNoPosition):
		st.CaptureWaiting = fmt.Sprintf("no position saved for source %s: capture never ran", d.src.Source)
		return true
	case err != nil:
		st.CaptureWaiting = "position not read: " + noAnswer("NATS", b.Cause(err))
		return false
	}
	st.Capture = NewPositionStatus(pos, now)
	st.CaptureReached = d.target.Before(pos.ClusterTime)
	since := d.captureSeen.observe(fmt.Sprint(pos.ClusterTime, pos.Token), pos.SavedAt, now)
	if st.CaptureReached {
		return false
	}
	st.CaptureWaiting = fmt.Sprintf("position at cluster time %d.%d (saved %s ago), not past the target yet",
		pos.ClusterTime.T, pos.ClusterTime.I, roundDuration(now.Sub(pos.SavedAt)))
	return now.Sub(since) >= d.stall
}

// applyReading is what one Read found on the apply side (2 to 4).
type applyReading struct {
	holds       map[string]buffer.Hold // not released
	holdsErr    error
	copying     map[string]bool // unfinished snapshot or resync runs
	runsErr     error
	pending     map[string]*uint64
	consumerErr map[string]error
	cps         map[string]checkpoints.Checkpoint
	cpErr       error
}

// readApply reads the holds, the unfinished snapshot and resync runs,
// then the consumers (3), then the checkpoints (4).
func (d *Drainer) readApply(ctx context.Context) *applyReading {
	r := &applyReading{holds: map[string]buffer.Hold{}, copying: map[string]bool{}, pending: map[string]*uint64{},
		consumerErr: map[string]error{}, cps: map[string]checkpoints.Checkpoint{}}
	var holds []buffer.Hold
	holds, r.holdsErr = d.src.Buffer.Holds().List(ctx, d.src.Source)
	for _, h := range holds {
		if !h.Released() {
			r.holds[h.Collection] = h
		}
	}
	var runs []string
	runs, r.runsErr = snapshot.Unfinished(ctx, d.src.Target)
	for _, ns := range runs {
		r.copying[ns] = true
	}
	for _, ns := range d.src.Collections {
		r.pending[ns], r.consumerErr[ns] = d.pending(ctx, ns)
	}
	var cps []checkpoints.Checkpoint
	cps, r.cpErr = checkpoints.List(ctx, d.src.Target)
	for _, c := range cps {
		r.cps[c.Collection] = c
	}
	return r
}

// collection is ns as r found it, without a judgement yet.
func (r *applyReading) collection(ns string) DrainCollection {
	col, _ := envelope.ParseUnit(ns) // a partition is held and copied with its collection
	_, held := r.holds[col]
	c := DrainCollection{Collection: ns, Held: held, Snapshotting: r.copying[col], Pending: r.pending[ns]}
	if cp, ok := r.cps[ns]; ok {
		seq, at := cp.Seq, cp.UpdatedAt.UTC()
		c.AppliedSeq, c.CommittedAt = &seq, &at
		if !cp.ClusterTime.IsZero() {
			ct := cp.ClusterTime
			c.ClusterTime = &ct
		}
		if !cp.WallTime.IsZero() {
			w := cp.WallTime.UTC()
			c.SourceTime = &w
		}
	}
	return c
}

// waiting says what keeps c from being drained, "" when nothing does.
func (d *Drainer) waiting(r *applyReading, c *DrainCollection, now time.Time, st *DrainState, captureStalled bool) string {
	ns, b := c.Collection, d.src.Buffer
	cp, hasCP := r.cps[ns]
	var notMoved time.Duration
	if hasCP {
		s := d.seen[ns]
		notMoved = now.Sub(s.observe(fmt.Sprint(cp.Epoch, cp.Seq, cp.ClusterTime), cp.UpdatedAt, now))
		d.seen[ns] = s
	}
	switch {
	case r.holdsErr != nil:
		return "holds not read: " + noAnswer("NATS", b.Cause(r.holdsErr))
	case r.runsErr != nil:
		return "snapshot runs not read: " + noAnswer("PostgreSQL", r.runsErr)
	case r.consumerErr[ns] != nil:
		return "apply consumer not read: " + noAnswer("NATS", b.Cause(r.consumerErr[ns]))
	case r.cpErr != nil:
		return "apply checkpoint not read: " + noAnswer("PostgreSQL", r.cpErr)
	case c.Held:
		col, _ := envelope.ParseUnit(ns)
		h := r.holds[col]
		return fmt.Sprintf("capture holds it: %s; to recover: %s", h.Reason, h.Recovery)
	case c.Snapshotting:
		return "its snapshot or resync has not finished"
	case !hasCP:
		return "no apply checkpoint: nothing was ever applied (is a replicator running?)"
	case c.Pending == nil:
		return "its apply consumer does not exist: no applier has started since its checkpoint was set"
	case cp.ClusterTime.IsZero():
		return fmt.Sprintf("its checkpoint has no source time (moved by checkpoints set) and has not moved for %s: is an applier running?", roundDuration(notMoved))
	case cp.ClusterTime.Before(d.target) || *c.Pending > 0:
		return d.behind(cp.ClusterTime, *c.Pending, notMoved, captureStalled)
	case !st.CaptureReached:
		return "waiting for capture: " + st.CaptureWaiting
	}
	return ""
}

// behind describes a checkpoint that is not at the target yet, or has
// messages pending: on its way, or stopped for stall.
func (d *Drainer) behind(ct transform.ClusterTime, pending uint64, notMoved time.Duration, captureStalled bool) string {
	if notMoved < d.stall {
		return fmt.Sprintf("checkpoint at cluster time %d.%d, %d message(s) pending", ct.T, ct.I, pending)
	}
	stopped := fmt.Sprintf("its checkpoint (cluster time %d.%d) has not moved for %s", ct.T, ct.I, roundDuration(notMoved))
	switch {
	case pending > 0:
		return fmt.Sprintf("no replicator is applying: %s with %d message(s) pending", stopped, pending)
	case captureStalled:
		return fmt.Sprintf("no replicator is running: %s and capture's position is behind the target", stopped)
	default:
		return fmt.Sprintf("%s and nothing is pending: waiting for capture's heartbeat past the target", stopped)
	}
}

// pending reads the messages ns's apply consumer has not delivered or not
// had acknowledged; nil when the consumer does not exist.
func (d *Drainer) pending(ctx context.Context, ns string) (*uint64, error) {
	b := d.src.Buffer
	s, err := b.JetStream().Stream(ctx, b.Config().Stream)
	if err != nil {
		return nil, err
	}
	c, err := sink.UnitConsumer(ctx, s, ns)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info := c.CachedInfo() // read by UnitConsumer just now
	n := info.NumPending + uint64(info.NumAckPending)
	return &n, nil
}

// NewPositionStatus describes a capture position at now, as status
// reports it.
func NewPositionStatus(pos buffer.Position, now time.Time) *PositionStatus {
	ct := time.Unix(int64(pos.ClusterTime.T), 0).UTC()
	return &PositionStatus{
		ClusterTime: pos.ClusterTime, Time: ct, LagSeconds: seconds(now.Sub(ct)),
		Token: pos.Token, SavedAt: pos.SavedAt.UTC(), AgeSeconds: seconds(now.Sub(pos.SavedAt)),
	}
}

// FormatClusterTime prints a cluster time as T.I with its time in UTC.
func FormatClusterTime(ct transform.ClusterTime) string {
	return fmt.Sprintf("%d.%d (%s)", ct.T, ct.I, time.Unix(int64(ct.T), 0).UTC().Format(time.RFC3339))
}

func roundDuration(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d.Round(100 * time.Millisecond)
}
