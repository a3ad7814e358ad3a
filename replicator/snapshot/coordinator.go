package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mongopg/replicator/transform"
)

// Coordinator runs the initial snapshot and automatic resyncs beside
// streaming in `replicator run`. Wire it as:
//
//	co := snapshot.NewCoordinator(deps, cfg)
//	capture.OnFirstStart = co.OnFirstStart   // no saved position yet
//	capture.OnHistoryLost = co.OnHistoryLost // only with on_history_lost: resync
//	g.Go(func() error { return co.Run(gctx) })
//
// The hooks return quickly, after the run is durably recorded at its T0,
// so capture opens (or reopens) its change stream at T0 at once; Run copies
// concurrently with streaming, and the version guard makes the order of the
// two irrelevant. After a restart capture resumes from its saved position
// and calls no hook: Run then resumes the unfinished runs recorded in
// PostgreSQL.
type Coordinator struct {
	deps Deps
	cfg  Config

	mu      sync.Mutex
	queue   chan *Snapshot // prepared runs, newest supersedes older
	current *Snapshot
}

// NewCoordinator returns a Coordinator for deps and cfg (cfg.T0 and
// cfg.OnT0 are set by the hooks).
func NewCoordinator(deps Deps, cfg Config) *Coordinator {
	return &Coordinator{deps: deps, cfg: cfg, queue: make(chan *Snapshot, 1)}
}

// OnFirstStart records an initial snapshot of every collection at capture's
// start time t0 and returns; it matches capture.StartHook. An unfinished
// snapshot older than t0 starts over (the buffer lacks the changes between
// the two).
func (c *Coordinator) OnFirstStart(ctx context.Context, t0 transform.ClusterTime) error {
	cfg := c.cfg
	cfg.T0, cfg.OnT0 = t0, nil
	s, err := Start(ctx, c.deps, cfg)
	if err != nil {
		return err
	}
	c.submit(s)
	return nil
}

// OnHistoryLost is the policy on_history_lost: resync. Capture calls it
// when its change stream fails with ChangeStreamHistoryLost (code 286): it
// logs the decision, counts it in
// replicator_snapshot_history_lost_resyncs_total, records a resync of every
// collection and returns its T0. An unfinished resync is resumed only if
// its T0 is still in the oplog (Config.NotBefore, OplogFloor); otherwise
// every collection starts over at a new T0. Capture then drops the buffered
// events (capture.PurgeBuffered; they are all older than T0 and superseded by the
// resync) and reopens its stream at T0, while Run copies and sweeps.
func (c *Coordinator) OnHistoryLost(ctx context.Context, cause error) (transform.ClusterTime, error) {
	c.deps.Logger.Warn("change stream history lost; resyncing every collection (on_history_lost: resync)", "cause", cause)
	if m := c.deps.Metrics; m != nil {
		m.historyLost.Inc()
	}
	cfg := c.cfg
	cfg.Collections, cfg.T0, cfg.OnT0 = nil, transform.ClusterTime{}, nil
	floor, err := OplogFloor(ctx, c.deps.Source)
	if err != nil {
		if m := c.deps.Metrics; m != nil {
			m.recoveryFails.Inc()
		}
		return transform.ClusterTime{}, fmt.Errorf("snapshot: recover from lost history: %w", err)
	}
	cfg.NotBefore = floor
	s, err := StartResync(ctx, c.deps, cfg)
	if err != nil {
		if m := c.deps.Metrics; m != nil {
			m.recoveryFails.Inc()
		}
		return transform.ClusterTime{}, fmt.Errorf("snapshot: recover from lost history: %w", err)
	}
	c.submit(s)
	return s.T0(), nil
}

// submit queues s, replacing a queued run that has not started.
func (c *Coordinator) submit(s *Snapshot) {
	for {
		select {
		case c.queue <- s:
			return
		default:
		}
		select {
		case <-c.queue:
		default:
		}
	}
}

// Remaining is the running copy's estimated remaining time, -1 when none
// runs or it is unknown (for the oplog-window guard).
func (c *Coordinator) Remaining() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current == nil {
		return -1
	}
	return c.current.Remaining()
}

// Run resumes the unfinished runs recorded in PostgreSQL, then copies each
// run the hooks record, until ctx ends. A run recorded while another is
// copying supersedes it: the older one is stopped (its runs in PostgreSQL
// are already marked superseded). Run returns nil when ctx ends, or the
// error that stopped a run (running again resumes it). A run whose only
// failures are halted collections (*HaltError, on_error: halt) does not
// stop it: the halts are logged and Run waits for the next run, so one
// collection's halt never stops the process or makes it restart in a
// loop.
func (c *Coordinator) Run(ctx context.Context) error {
	open, err := Unfinished(ctx, c.deps.Target)
	if err != nil {
		return err
	}
	open = slices.DeleteFunc(open, func(ns string) bool {
		return !slices.ContainsFunc(c.deps.Mappings, func(m *transform.Mapping) bool { return m.Namespace() == ns })
	})
	var next *Snapshot
	if len(open) > 0 {
		cfg := c.cfg
		cfg.Collections = open
		if next, err = Start(ctx, c.deps, cfg); err != nil {
			return err
		}
	}
	for {
		if next == nil {
			select {
			case <-ctx.Done():
				return nil
			case next = <-c.queue:
			}
		}
		s := next
		next = nil
		c.mu.Lock()
		c.current = s
		c.mu.Unlock()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		select {
		case err = <-done:
		case next = <-c.queue:
			cancel()
			<-done
			c.deps.Logger.Info("snapshot superseded by a newer one", "t0", fmtTS(s.T0()), "new_t0", fmtTS(next.T0()))
			err = nil
		}
		cancel()
		c.mu.Lock()
		c.current = nil
		c.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return nil
			}
			if onlyHalts(err) {
				// The halted collections wait for the operator (the
				// error names the recovery); the others are done, and
				// stopping the process would only halt again on restart.
				c.deps.Logger.Error("snapshot halted; the other collections are done", "err", err)
				continue
			}
			return err
		}
	}
}
