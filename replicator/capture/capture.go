package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/transform"
)

// StartHook runs on the first start of a source (no saved position), after
// the start time T0 is saved and before the change stream opens at T0. The
// initial snapshot plugs in here: it copies every collection as of T0 while
// the buffer receives every change from T0 on.
type StartHook func(ctx context.Context, t0 transform.ClusterTime) error

// Capture is one source's change-stream reader.
type Capture struct {
	cfg      Config
	buf      *buffer.Buffer
	reg      *transform.Registry
	mappings map[string]*transform.Mapping
	names    []string // configured namespaces, sorted
	log      *slog.Logger
	met      *metrics

	lastSaved buffer.Position // touched by saveLoop, then by Run after it ends
	streaming atomic.Bool     // a change stream is open

	// OnFirstStart, if set, runs on the first start (see StartHook).
	OnFirstStart StartHook
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
	c := &Capture{cfg: cfg, buf: buf, reg: reg, mappings: map[string]*transform.Mapping{}, log: log, met: newMetrics(promReg)}
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
	}
	sort.Strings(c.names)
	return c, nil
}

// Run captures until ctx ends or the stream stops. On cancellation it stops
// reading, drains in-flight publishes (bounded by ShutdownTimeout), saves
// the durable position and returns nil. A stop that needs an operator is a
// *StopError.
func (c *Capture) Run(ctx context.Context) error {
	client, err := mongo.Connect(options.Client().ApplyURI(c.cfg.URI).SetAppName("replicator-capture"))
	if err != nil {
		return fmt.Errorf("capture: connect: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
	}()

	lease, err := c.buf.AcquireLease(ctx, c.cfg.Source, c.cfg.LeaseTTL)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	defer lease.Release(context.Background())

	positions := c.buf.Positions()
	start, err := c.start(ctx, client, positions)
	if err != nil {
		return err
	}
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
	inner.Go(func() error { return c.headroomLoop(ictx, client) })
	readErr := inner.Wait()
	if errors.Is(readErr, context.Canceled) {
		// Asked to stop (ctx), or stopped because the publisher or the
		// lease failed, which outer.Wait reports below.
		readErr = nil
	}

	// Drain: everything read is published before the position is saved.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
	flushErr := pub.Flush(dctx)
	saveErr := c.save(dctx, positions, pub)
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

// start loads the saved position, or on the first start saves T0 (the
// current cluster time) and runs OnFirstStart.
func (c *Capture) start(ctx context.Context, client *mongo.Client, positions *buffer.Positions) (buffer.Position, error) {
	pos, err := positions.Load(ctx, c.cfg.Source)
	if err == nil {
		c.log.Info("capture resuming", "source", c.cfg.Source, "token", pos.Token, "cluster_time", pos.ClusterTime, "saved_at", pos.SavedAt)
		return pos, nil
	}
	if !errors.Is(err, buffer.ErrNoPosition) {
		return pos, fmt.Errorf("capture: %w", err)
	}
	t0, err := operationTime(ctx, client)
	if err != nil {
		return pos, fmt.Errorf("capture: read the current cluster time: %w", err)
	}
	pos = buffer.Position{ClusterTime: t0}
	if err := positions.Save(ctx, c.cfg.Source, pos); err != nil {
		return pos, fmt.Errorf("capture: %w", err)
	}
	c.log.Info("capture starting at the current cluster time (first start)", "source", c.cfg.Source, "cluster_time", t0)
	if c.OnFirstStart != nil {
		if err := c.OnFirstStart(ctx, t0); err != nil {
			return pos, fmt.Errorf("capture: first start: %w", err)
		}
	}
	return pos, nil
}

// operationTime returns the cluster's current operation time.
func operationTime(ctx context.Context, client *mongo.Client) (transform.ClusterTime, error) {
	var reply struct {
		OperationTime bson.Timestamp `bson:"operationTime"`
	}
	// A majority read so T0 does not run ahead of committed data.
	res := client.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}})
	if err := res.Decode(&reply); err != nil {
		return transform.ClusterTime{}, err
	}
	if reply.OperationTime.T == 0 {
		return transform.ClusterTime{}, errors.New("the server reported no operationTime (is it a replica set or mongos?)")
	}
	return transform.ClusterTime{T: reply.OperationTime.T, I: reply.OperationTime.I}, nil
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
