package replicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/transform"
)

// Options choose what one process runs.
type Options struct {
	// Capture and Apply select the halves to run; `replicator run` sets
	// both.
	Capture, Apply bool
	// Registry transforms events; nil registers every configured mapping.
	Registry *transform.Registry
	// Logger receives logs; nil builds one from the config's log section
	// on standard error.
	Logger *slog.Logger
	// Registry for metrics; nil creates one with the Go and process
	// collectors. Gatherer serves /metrics (defaults to the same registry).
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// MetricsListener, if set, serves the HTTP endpoint instead of
	// listening on metrics.listen. DisableHTTP turns the endpoint off.
	MetricsListener net.Listener
	DisableHTTP     bool
	// NoMigrate skips creating the metadata schema and the target tables:
	// `replicator migrate` must have run.
	NoMigrate bool
	// Snapshot runs the snapshot coordinator beside capture, with the
	// target: the initial snapshot on capture's first start, the resumption
	// of an unfinished snapshot or resync after a restart, and the
	// source.on_history_lost: resync policy (snapshot.go). `replicator run`
	// and `replicator capture` set it.
	Snapshot bool
	// OnFirstStart runs on capture's first start instead, when Snapshot is
	// not set (the caller runs its own coordinator).
	OnFirstStart capture.StartHook
}

// Run runs the selected components until ctx ends or one fails, then
// stops them all and returns the first error (nil on a requested stop).
// An error of the source names its cause (capture.SourceError).
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	err := run(ctx, cfg, opts)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// Stopped (SIGTERM, SIGINT) whatever step it was at, starting
		// included: a clean stop.
		return nil
	}
	return capture.SourceError(cfg.Source.URI, err)
}

func run(ctx context.Context, cfg *config.Config, opts Options) error {
	if !opts.Capture && !opts.Apply {
		return errors.New("run: nothing to run (neither capture nor apply selected)")
	}
	log := opts.Logger
	if log == nil {
		l, err := NewLogger(os.Stderr, cfg.Log.Level, cfg.Log.Format)
		if err != nil {
			return err
		}
		log = l
	}
	reg, gath := opts.Registerer, opts.Gatherer
	if reg == nil {
		r := NewRegistry()
		reg, gath = r, r
	}
	if gath == nil {
		if g, ok := reg.(prometheus.Gatherer); ok {
			gath = g
		}
	}
	mappings, err := cfg.Mappings()
	if err != nil {
		return err
	}
	if opts.Capture {
		if err := cfg.RequireSource(); err != nil {
			return err
		}
	}
	if opts.Apply || opts.Snapshot {
		if err := cfg.RequireTarget(); err != nil {
			return err
		}
	}
	if opts.Snapshot && (!opts.Capture || opts.OnFirstStart != nil) {
		return errors.New("run: the snapshot coordinator runs with capture and replaces OnFirstStart")
	}
	if opts.Capture && !opts.Snapshot && cfg.Source.OnHistoryLost == onHistoryLostResync {
		return errors.New("source.on_history_lost: resync needs the target: run capture with target.url set")
	}

	h := newHealth()
	ln := opts.MetricsListener
	if ln == nil && !opts.DisableHTTP {
		if ln, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics endpoint: %w", err)
		}
	}
	if ln != nil {
		defer ln.Close()
	}

	buf, err := buffer.Open(ctx, cfg.ForBuffer(), log)
	if err != nil {
		return err
	}
	defer buf.Close()
	if reg != nil {
		if err := reg.Register(buf.Collector()); err != nil {
			return fmt.Errorf("buffer metrics: %w", err)
		}
	}
	h.add("buffer", func() error {
		if !buf.Connected() {
			if last := buf.LastError(); last != nil {
				return fmt.Errorf("not connected to NATS: %w", last)
			}
			return errors.New("not connected to NATS")
		}
		return nil
	})

	g, gctx := errgroup.WithContext(ctx)
	var pool *pgxpool.Pool
	if opts.Apply || opts.Snapshot {
		parallelism := 0
		if opts.Snapshot {
			parallelism = cfg.Snapshot.Parallelism
		}
		if pool, err = openTarget(ctx, cfg, mappings, opts.NoMigrate, parallelism, log); err != nil {
			return err
		}
		defer pool.Close()
	}
	var capt *capture.Capture
	var side *sidecars
	if opts.Capture {
		c, err := capture.New(cfg.ForCapture(), buf, mappings, opts.Registry, reg, log.With("component", "capture"))
		if err != nil {
			return err
		}
		c.OnFirstStart = opts.OnFirstStart
		h.add("capture", c.Ready)
		capt = c
		if side, err = newSidecars(cfg, opts.Snapshot, c, buf, pool, mappings, reg, log); err != nil {
			return err
		}
		defer side.close()
	}
	var a *apply
	if opts.Apply {
		if a, err = newApply(pool, cfg, mappings, reg, log.With("component", "apply")); err != nil {
			return err
		}
		h.add("apply", a.ready)
	}
	var vl *verifyLoop
	switch {
	case !cfg.Verify.Enabled:
	case capt == nil || a == nil:
		log.Warn("verify.enabled: continuous verification runs only in a process that runs capture and apply (replicator run); not started")
	default:
		if vl, err = newVerifyLoop(ctx, cfg, mappings, side.client, buf, reg, log.With("component", "verify")); err != nil {
			return err
		}
		defer vl.close()
	}
	if ln != nil {
		src := &StatusSources{Buffer: buf, Target: pool, Source: cfg.ForCapture().Source, Collections: config.Units(mappings)}
		g.Go(func() error { return serveHTTP(gctx, ln, gath, h, cfg.Metrics.Pprof, src, log) })
	}
	if side != nil {
		side.start(gctx, g, capt, h)
	}
	if capt != nil {
		g.Go(func() error {
			err := capt.Run(gctx)
			if err != nil {
				h.fail(err)
			}
			return err
		})
	}
	if a != nil {
		g.Go(func() error {
			err := a.run(gctx, buf)
			if err != nil {
				h.fail(err)
			}
			return err
		})
	}
	if vl != nil {
		g.Go(func() error {
			vl.run(gctx, capt.Started())
			return nil
		})
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil
	}
	return err
}
