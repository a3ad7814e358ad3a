package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/replicator/verify"
	"github.com/mongopg/replicator/transform"
)

// VerifyConns is the size of continuous verification's own PostgreSQL
// pool: verify.Collection holds one connection for its staging tables
// while the other serves its other reads (waiting for the applier to
// catch up), the second session of each comparison (the actual side's
// sums) and the loop's snapshot-run check, one at a time.
const VerifyConns = 2

// verifyLoop is continuous verification inside run (the config's verify
// section): it verifies the selected collections one after another with
// verify.Collection, as `replicator verify` does, waits verify.interval,
// and starts over, until the process stops.
//
// What it promises:
//   - It never stops the process: a pass that fails is logged with its
//     cause, counted (result "error") and tried again on the next pass.
//   - It never delays a stop: every read and comparison runs under the
//     process's context, and a pass cut short by the stop is neither a
//     result nor an error.
//   - Its load is bounded: at most verify.rate documents read per second
//     (verify.Config.Rate), VerifyConns connections of its own to
//     PostgreSQL, and the source client the snapshot coordinator and the
//     oplog guard share.
//   - A collection whose snapshot or resync has not finished is not
//     verified (its rows are still being copied): such a pass is skipped,
//     before it starts or when one started while it ran.
type verifyLoop struct {
	pool     *pgxpool.Pool
	deps     verify.Deps
	mappings []*transform.Mapping // in verify.collections order
	cfg      verify.Config
	interval time.Duration
	metrics  *verifyMetrics
	uri      string // source.uri, to name the cause of source errors
	log      *slog.Logger
}

// newVerifyLoop opens the loop's pool and registers its metrics. source
// is the process's source client; the caller closes it.
func newVerifyLoop(ctx context.Context, cfg *config.Config, mappings []*transform.Mapping, source *mongo.Client, buf *buffer.Buffer,
	reg prometheus.Registerer, log *slog.Logger) (*verifyLoop, error) {
	selected := make([]*transform.Mapping, 0, len(mappings))
	for _, ns := range cfg.VerifyCollections() {
		i := slices.IndexFunc(mappings, func(m *transform.Mapping) bool { return m.Namespace() == ns })
		if i < 0 {
			return nil, fmt.Errorf("verify: collection %s is not mapped", ns)
		}
		selected = append(selected, mappings[i])
	}
	metrics, err := newVerifyMetrics(reg, selected)
	if err != nil {
		return nil, fmt.Errorf("verify metrics: %w", err)
	}
	pool, err := OpenTarget(ctx, cfg.Target.URL, VerifyConns)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	scfg := cfg.ForSnapshot()
	return &verifyLoop{
		pool:     pool,
		deps:     verify.Deps{Source: source, Target: pool, Applied: AppliedWaiter(buf, pool, cfg.ForCapture().Source, config.UnitLookup(mappings))},
		mappings: selected,
		cfg: verify.Config{ChunkSize: scfg.ChunkSize, BatchSize: scfg.BatchSize,
			MaxDifferences: cfg.Verify.MaxDifferences, Rate: cfg.Verify.Rate},
		interval: cfg.Verify.Interval,
		metrics:  metrics,
		uri:      cfg.Source.URI,
		log:      log,
	}, nil
}

// run waits until started is closed (capture holds its lease and has
// settled its start position: a standby verifies nothing), then verifies
// pass after pass until ctx ends. It returns nothing: no outcome of a
// pass stops the process.
func (l *verifyLoop) run(ctx context.Context, started <-chan struct{}) {
	select {
	case <-started:
	case <-ctx.Done():
		return
	}
	names := make([]string, len(l.mappings))
	for i, m := range l.mappings {
		names[i] = m.Namespace()
	}
	l.log.Info("continuous verification started", "collections", strings.Join(names, ","),
		"interval", l.interval, "rate", l.cfg.Rate)
	for {
		for _, m := range l.mappings {
			if ctx.Err() != nil {
				return
			}
			l.pass(ctx, m)
		}
		wait := time.NewTimer(l.interval)
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
	}
}

// pass verifies one collection once, and records and logs the outcome.
func (l *verifyLoop) pass(ctx context.Context, m *transform.Mapping) {
	ns := m.Namespace()
	start := time.Now()
	skip, err := l.copying(ctx, ns)
	if err == nil && skip {
		l.log.Info("verification skipped: a snapshot or resync of the collection has not finished", "collection", ns)
		return
	}
	var rep verify.Report
	if err == nil {
		cfg := l.cfg
		cfg.Progress = l.metrics.progress(ns)
		rep, err = verify.Collection(ctx, l.deps, m, cfg)
	}
	if ctx.Err() != nil {
		return // stopped mid-pass
	}
	if err == nil {
		// Rows a snapshot or resync started meanwhile is copying are not
		// the applier's: the comparison says nothing.
		if skip, err = l.copying(ctx, ns); err == nil && skip {
			l.log.Info("verification result discarded: a snapshot or resync of the collection started during the pass", "collection", ns)
			return
		}
	}
	if err != nil {
		l.metrics.failed(ns)
		l.log.Error("verification failed; retrying on the next pass", "collection", ns, "err", capture.SourceError(l.uri, err))
		return
	}
	end := time.Now()
	l.metrics.passed(ns, rep, end, end.Sub(start))
	l.logPass(ns, rep, end.Sub(start))
}

// logPass logs one complete pass: equal, or the difference counts.
func (l *verifyLoop) logPass(ns string, rep verify.Report, took time.Duration) {
	attrs := []any{"collection", ns, "documents", rep.Documents, "duration", took.Round(time.Millisecond),
		"rechecks", rep.Rechecks, "in_flight", rep.InFlight.Count}
	if rep.Note != "" {
		attrs = append(attrs, "note", rep.Note)
	}
	if rep.Equal {
		l.log.Info("verification pass: equal", attrs...)
		return
	}
	var missing, extra, different int64
	var tables []string
	for _, t := range rep.Tables {
		d := t.Differences
		missing, extra, different = missing+d.Missing, extra+d.Extra, different+d.Different
		if d.Total > 0 {
			tables = append(tables, fmt.Sprintf("%s (missing %d, extra %d, different %d)", t.Table, d.Missing, d.Extra, d.Different))
		}
	}
	attrs = append(attrs, "missing", missing, "extra", extra, "different", different,
		"dead_lettered", rep.DeadLettered.Count, "transform_errors", rep.TransformErrors.Count)
	if len(tables) > 0 {
		attrs = append(attrs, "tables", strings.Join(tables, "; "))
	}
	attrs = append(attrs, "rows_listed_by", "replicator verify --collection "+ns)
	l.log.Warn("verification pass: MongoDB and PostgreSQL differ", attrs...)
}

// copying reports whether a snapshot or resync of ns is unfinished.
func (l *verifyLoop) copying(ctx context.Context, ns string) (bool, error) {
	open, err := snapshot.Unfinished(ctx, l.pool)
	if err != nil {
		return false, fmt.Errorf("verify %s: %w", ns, err)
	}
	return slices.Contains(open, ns), nil
}

func (l *verifyLoop) close() {
	l.pool.Close()
}
