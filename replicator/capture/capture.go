package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/redact"
	"github.com/mongopg/replicator/transform"
)

// StartHook runs on the first start of a source (no saved position), before
// the start time T0 is saved and the change stream opens at T0. The initial
// snapshot plugs in here: it records a copy of every collection as of T0
// while the buffer receives every change from T0 on. It must be idempotent:
// a crash after it and before the save calls it again, with a later T0.
type StartHook func(ctx context.Context, t0 transform.ClusterTime) error

// HistoryLostHook is the on_history_lost: resync policy. Capture calls it
// when its resume point is no longer in the oplog (ChangeStreamHistoryLost)
// with that error; it records a resync of every collection and returns the
// resync's T0, from which capture then reads again (see Capture.Run).
type HistoryLostHook func(ctx context.Context, cause error) (transform.ClusterTime, error)

// Capture is one source's change-stream reader.
type Capture struct {
	cfg      Config
	buf      *buffer.Buffer
	reg      *transform.Registry
	mappings map[string]*transform.Mapping
	names    []string // configured namespaces, sorted
	log      *slog.Logger
	met      *metrics

	skew      skew            // the source's clock minus this host's (skew.go)
	saveMu    sync.Mutex      // serialises saves (saveLoop, history-lost recovery, Run's last)
	lastSaved buffer.Position // guarded by saveMu
	streaming atomic.Bool     // a change stream is open

	// OnFirstStart, if set, runs on the first start (see StartHook).
	OnFirstStart StartHook
	// OnHistoryLost, if set, recovers from a lost resume point instead of
	// stopping (see HistoryLostHook); nil is the policy stop.
	OnHistoryLost HistoryLostHook
	// Checkpoints is the target database holding the apply checkpoints;
	// with OnHistoryLost, the purge of superseded events moves them past
	// the purged sequences (PurgeBuffered); a change of a collection's
	// partitions is accepted once they show the old layout applied
	// (checkLayouts). nil: no target, and such a change is refused.
	Checkpoints checkpoints.Querier
	// started is closed once the start position is settled (saved or
	// loaded) under the lease.
	started     chan struct{}
	startedOnce sync.Once
}

// New returns a capture of the namespaces of mappings. reg transforms the
// events; nil builds a registry of the mappings themselves.
func New(cfg Config, buf *buffer.Buffer, mappings []*transform.Mapping, reg *transform.Registry,
	promReg prometheus.Registerer, log *slog.Logger) (*Capture, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(mappings) == 0 {
		return nil, errors.New("capture: no collections configured")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Capture{cfg: cfg, buf: buf, reg: reg, mappings: map[string]*transform.Mapping{}, log: log, met: newMetrics(promReg),
		started: make(chan struct{})}
	if c.reg == nil {
		c.reg = transform.NewRegistry()
		for _, m := range mappings {
			if err := c.reg.Register(m.Namespace(), m); err != nil {
				return nil, fmt.Errorf("capture: %w", err)
			}
		}
	}
	for _, m := range mappings {
		if _, dup := c.mappings[m.Namespace()]; dup {
			return nil, fmt.Errorf("capture: collection %s is configured twice", m.Namespace())
		}
		c.mappings[m.Namespace()] = m
		c.names = append(c.names, m.Namespace())
		// Series start at zero, so increase() sees the first event.
		c.met.deadLetters.WithLabelValues(m.Namespace())
		c.met.heldEvents.WithLabelValues(m.Namespace())
		c.met.held.WithLabelValues(m.Namespace())
	}
	sort.Strings(c.names)
	return c, nil
}

// Run captures until ctx ends or the stream stops. On cancellation it stops
// reading, drains in-flight publishes and saves the durable position, both
// within ShutdownTimeout, and returns nil. A stop that needs an operator is a
// *StopError. An error from the source names its cause (SourceError).
func (c *Capture) Run(ctx context.Context) error {
	return SourceError(c.cfg.URI, c.run(ctx))
}

func (c *Capture) run(ctx context.Context) error {
	client, err := mongo.Connect(options.Client().ApplyURI(c.cfg.URI).SetAppName("replicator-capture"))
	if err != nil {
		return fmt.Errorf("capture: connect: %w", redact.Error(err))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
	}()

	if err := c.measureSkew(ctx, client); err != nil && ctx.Err() == nil {
		c.log.Warn("source clock skew not measured; lag assumes the clocks agree until it is", "err", SourceError(c.cfg.URI, err))
	}

	lease, err := c.buf.AcquireLease(ctx, c.cfg.Source, c.cfg.LeaseTTL)
	if err != nil {
		return err // "capture lease: …"
	}
	defer lease.Release(context.Background())
	if err := c.checkLayouts(ctx); err != nil {
		return err
	}

	positions := c.buf.Positions()
	start, err := c.start(ctx, client, positions)
	if err != nil {
		return err
	}
	c.startedOnce.Do(func() { close(c.started) })
	pub := c.buf.NewPublisher(start, c.met.publisher)
	c.setDurable(start)

	// The publisher outlives the reader so the reader's last publishes
	// drain; pubCtx ends only after that (or with the drain timeout).
	pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPub()
	outer, octx := errgroup.WithContext(pubCtx)
	outer.Go(func() error { return pub.Run(octx) })
	outer.Go(func() error { return lease.Run(octx) })

	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	go func() {
		// A publisher or lease failure stops the reader too.
		select {
		case <-octx.Done():
			stopRead()
		case <-readCtx.Done():
		}
	}()
	inner, ictx := errgroup.WithContext(readCtx)
	inner.Go(func() error { return c.read(ictx, client, pub, start) })
	inner.Go(func() error { return c.saveLoop(ictx, positions, pub) })
	inner.Go(func() error { return c.skewLoop(ictx, client) })
	readErr := inner.Wait()
	if errors.Is(readErr, context.Canceled) {
		// Asked to stop (ctx), or stopped because the publisher or the
		// lease failed, which outer.Wait reports below.
		readErr = nil
	}

	// Drain: everything read is published before the position is saved.
	// Both fit in ShutdownTimeout, so a stop ends before an orchestrator's
	// grace period that was sized by it. The last save keeps a reserve of
	// its own: a flush that used the whole drain (publishes never
	// acknowledged) must not also cost the progress acknowledged before
	// it, nor turn a requested stop into an error.
	end := time.Now().Add(c.cfg.ShutdownTimeout)
	dctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), end.Add(-saveReserve(c.cfg.ShutdownTimeout)))
	flushErr := pub.Flush(dctx)
	cancel()
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), end)
	saveErr := c.save(sctx, positions, pub)
	cancel()
	stopPub()
	if err := outer.Wait(); err != nil && !errors.Is(err, context.Canceled) && readErr == nil {
		readErr = fmt.Errorf("capture: %w", err)
	}
	if flushErr != nil {
		c.log.Warn("capture stopped with publishes unacknowledged; they are read again on restart", "err", flushErr)
	}
	if readErr == nil && saveErr != nil {
		readErr = saveErr
	}
	final := pub.Durable()
	c.log.Info("capture stopped", "source", c.cfg.Source, "token", final.Token, "cluster_time", final.ClusterTime)
	return readErr
}

// saveReserve is the part of a stop's ShutdownTimeout kept for the last
// save of the position: a fifth, at most 5s.
func saveReserve(timeout time.Duration) time.Duration { return min(timeout/5, 5*time.Second) }

// Started is closed once Run holds the lease and has loaded its saved
// position, or on the first start has run OnFirstStart and saved T0. A
// process that must not work beside a standby capture waits for it.
func (c *Capture) Started() <-chan struct{} { return c.started }

// start loads the saved position, or on the first start runs OnFirstStart
// with T0 (the current majority-committed cluster time) and then saves T0.
// The hook runs first so that a crash between the two leaves no position:
// the next start runs the hook again rather than resuming at a T0 whose
// snapshot was never recorded.
func (c *Capture) start(ctx context.Context, client *mongo.Client, positions *buffer.Positions) (buffer.Position, error) {
	pos, err := positions.Load(ctx, c.cfg.Source)
	if err == nil {
		c.log.Info("capture resuming", "source", c.cfg.Source, "token", pos.Token, "cluster_time", pos.ClusterTime, "saved_at", pos.SavedAt)
		return pos, nil
	}
	if !errors.Is(err, buffer.ErrNoPosition) {
		return pos, fmt.Errorf("capture: %w", err)
	}
	t0, err := ClusterTime(ctx, client)
	if err != nil {
		return pos, fmt.Errorf("capture: %w", err) // "read cluster time: …"
	}
	pos = buffer.Position{ClusterTime: t0}
	if c.OnFirstStart != nil {
		if err := c.OnFirstStart(ctx, t0); err != nil {
			return pos, fmt.Errorf("capture: first start: %w", err)
		}
	}
	if err := positions.Save(ctx, c.cfg.Source, pos); err != nil {
		return pos, fmt.Errorf("capture: %w", err)
	}
	c.log.Info("capture starting at the current cluster time (first start)", "source", c.cfg.Source, "cluster_time", t0)
	return pos, nil
}

func (c *Capture) setDurable(p buffer.Position) {
	if !p.ClusterTime.IsZero() {
		c.met.durableCT.Store(int64(p.ClusterTime.T))
	}
}

// saveLoop saves the durable position every SaveInterval when it moved.
func (c *Capture) saveLoop(ctx context.Context, positions *buffer.Positions, pub *buffer.Publisher) error {
	t := time.NewTicker(c.cfg.SaveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := c.save(ctx, positions, pub); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The buffer may be restarting; the next tick tries again.
			c.log.Warn("capture position not saved; retrying", "err", err)
		}
	}
}

func (c *Capture) save(ctx context.Context, positions *buffer.Positions, pub *buffer.Publisher) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	d := pub.Durable()
	if d.IsZero() || d == c.lastSaved {
		return nil
	}
	if err := positions.Save(ctx, c.cfg.Source, d); err != nil {
		return err
	}
	c.lastSaved = d
	c.setDurable(d)
	c.met.saves.Inc()
	return nil
}

// Ready reports nil while a change stream is open.
func (c *Capture) Ready() error {
	if !c.streaming.Load() {
		return errors.New("change stream not open")
	}
	return nil
}
