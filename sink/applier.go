package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Applier applies every configured collection's buffer messages to
// PostgreSQL. See the package documentation for its promises.
type Applier struct {
	cols    []*collection
	claimer Claimer // nil: every unit is applied here (Share)
	conf    Config
	log     *slog.Logger
}

// New checks the configuration and registers the metrics with reg (nil:
// not registered). The pool's database must hold the metadata schema
// (schemas.Migrate) and the target tables.
func New(pool *pgxpool.Pool, cols []Collection, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Applier, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sink config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var names []string
	seen := map[string]bool{}
	for _, c := range cols {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("sink config: %w", err)
		}
		if seen[c.Namespace] {
			return nil, fmt.Errorf("sink config: collection %s configured twice", c.Namespace)
		}
		seen[c.Namespace] = true
		names = append(names, envelope.Units(c.Namespace, c.Partitions)...)
	}
	m := newMetrics(names)
	if reg != nil {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("sink metrics: %w", err)
		}
	}
	a := &Applier{conf: cfg, log: log}
	for _, c := range cols {
		for _, p := range envelope.Partitions(c.Partitions) {
			// Each unit has its own table set: it holds per-session state
			// (noInsertTriggers) that the unit's goroutine sets.
			ts, _ := compileTables(c.Tables) // validated above
			ts.filtered = c.Filtered
			rels := newRelations(c.Namespace, ts)
			unit := p.Unit(c.Namespace)
			a.cols = append(a.cols, &collection{
				cfg: c, part: p, unit: unit, conf: cfg, ts: ts, rels: rels, pool: pool,
				m: m, clock: m.clocks[unit], log: log,
			})
		}
	}
	return a, nil
}

// Units lists what the applier applies, in configuration order: each
// collection's namespace, or its partitions' unit names
// (envelope.Partition.Unit). A Claimer is asked for these.
func (a *Applier) Units() []string {
	out := make([]string, len(a.cols))
	for i, c := range a.cols {
		out[i] = c.unit
	}
	return out
}

// Run consumes and applies every collection until ctx ends, each on its own
// goroutine so a halted or slow collection never stalls another. It returns
// nil when ctx ends (in-flight uncommitted batches are abandoned, never
// acknowledged) and an error joining every *HaltError once all collections
// have halted. NATS and PostgreSQL outages are retried without end; the
// connection behind js should reconnect forever (nats.MaxReconnects(-1)).
func (a *Applier) Run(ctx context.Context, js jetstream.JetStream) error {
	if len(a.cols) == 0 {
		<-ctx.Done()
		return nil
	}
	var (
		g      errgroup.Group
		mu     sync.Mutex
		halted []error
	)
	for _, c := range a.cols {
		g.Go(func() error {
			err := a.runUnit(ctx, c, js)
			if err != nil {
				a.log.Error("collection halted", "collection", c.unit, "err", err)
				c.m.halted.WithLabelValues(c.unit).Set(1)
				mu.Lock()
				halted = append(halted, err)
				mu.Unlock()
			}
			return nil
		})
	}
	gcCtx, stopGC := context.WithCancel(ctx)
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		if a.conf.TombstoneRetention > 0 {
			a.collectTombstones(gcCtx)
		}
	}()
	_ = g.Wait()
	stopGC()
	<-gcDone
	if len(halted) == len(a.cols) {
		return fmt.Errorf("apply: every collection halted: %w", errors.Join(halted...))
	}
	return nil
}
