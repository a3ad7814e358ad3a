package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"

	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/transform"
)

// Snapshot is a prepared snapshot or resync: its T0 is recorded and every
// collection's plan is stored. Run copies what is not done yet.
type Snapshot struct {
	deps   Deps
	cfg    Config
	kind   string
	store  store
	merger *guardMerge
	t0     transform.ClusterTime
	jobs   []*job
	prog   *progress
}

// job is one collection's run.
type job struct {
	m       *transform.Mapping
	coll    *mongo.Collection
	run     *runRow
	chunks  []Chunk
	track   *tracker
	pending atomic.Int64 // chunks not yet done
	// finishing is set once finish has been started.
	finishing atomic.Bool
	// halted holds the halt that stopped the collection (on_error: halt).
	halted atomic.Pointer[HaltError]
}

// Run prepares and runs an initial snapshot of the configured collections
// (or resumes the unfinished one): Start, then cfg.OnT0, then
// (*Snapshot).Run. It is what `replicator snapshot` and the first start of
// `replicator run` call; see the package documentation for how it goes
// with streaming.
func Run(ctx context.Context, deps Deps, cfg Config) error {
	s, err := Start(ctx, deps, cfg)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// Start prepares an initial snapshot: for each collection it resumes the
// unfinished run (snapshot or resync) with its T0 and plan, or captures a
// new T0 (one for all new runs) and records a new plan.
func Start(ctx context.Context, deps Deps, cfg Config) (*Snapshot, error) {
	return prepare(ctx, deps, cfg, KindSnapshot)
}

// T0 is the snapshot's version: rows it writes carry (T0, seq 0). When
// several collections resume runs of different ages it is the earliest.
func (s *Snapshot) T0() transform.ClusterTime { return s.t0 }

// Remaining estimates the time the copy still needs (the slowest
// collection's ETA), or -1 when unknown. The oplog-window guard compares it
// with the oplog headroom.
func (s *Snapshot) Remaining() time.Duration {
	var worst time.Duration
	for _, j := range s.jobs {
		e := j.track.eta()
		if e < 0 {
			return -1
		}
		worst = max(worst, e)
	}
	return worst
}

func selected(deps Deps, cfg Config) ([]*transform.Mapping, error) {
	if len(cfg.Collections) == 0 {
		return deps.Mappings, nil
	}
	var out []*transform.Mapping
	for _, ns := range cfg.Collections {
		i := slices.IndexFunc(deps.Mappings, func(m *transform.Mapping) bool { return m.Namespace() == ns })
		if i < 0 {
			return nil, fmt.Errorf("snapshot: collection %s is not configured", ns)
		}
		out = append(out, deps.Mappings[i])
	}
	return out, nil
}

func prepare(ctx context.Context, deps Deps, cfg Config, kind string) (*Snapshot, error) {
	if err := deps.check(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	cfg.applyDefaults()
	maps, err := selected(deps, cfg)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{deps: deps, cfg: cfg, kind: kind, store: store{deps.Target},
		prog: &progress{out: cfg.Progress, terminal: cfg.Terminal, interval: cfg.ProgressInterval, log: deps.Logger}}
	if s.merger, err = newGuardMerge(deps.Mappings); err != nil {
		return nil, err
	}
	var fresh transform.ClusterTime
	for _, m := range maps {
		j := &job{m: m, coll: collection(deps.Source, m.Namespace())}
		active, err := s.store.activeRun(ctx, m.Namespace())
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		// A resync resumes only a resync (a snapshot has no sweep to
		// finish); a snapshot resumes either.
		if active != nil && !cfg.T0.IsZero() && active.T0.Before(cfg.T0) {
			deps.Logger.Warn("snapshot starting over: the unfinished run is older than the capture start",
				"collection", m.Namespace(), "run", active.ID, "t0", fmtTS(active.T0), "capture_t0", fmtTS(cfg.T0))
			active = nil
		}
		if active != nil && !cfg.NotBefore.IsZero() && active.T0.Before(cfg.NotBefore) {
			deps.Logger.Warn("snapshot starting over: the unfinished run's T0 is no longer in the oplog",
				"collection", m.Namespace(), "run", active.ID, "kind", active.Kind, "t0", fmtTS(active.T0), "oplog_floor", fmtTS(cfg.NotBefore))
			active = nil
		}
		if active != nil && (kind == KindSnapshot || active.Kind == KindResync) {
			j.run = active
			deps.Logger.Info("snapshot resuming", "collection", m.Namespace(), "kind", active.Kind, "run", active.ID, "t0", fmtTS(active.T0))
		} else {
			if fresh.IsZero() {
				fresh = cfg.T0
			}
			if fresh.IsZero() {
				if fresh, err = capture.ClusterTime(ctx, deps.Source); err != nil {
					return nil, fmt.Errorf("snapshot: %w", err)
				}
			}
			deps.Metrics.setState(m.Namespace(), StatePlanning)
			chunks, est, err := plan(ctx, j.coll, cfg.ChunkSize)
			if err != nil {
				return nil, fmt.Errorf("snapshot: %w", err)
			}
			if j.run, err = s.store.createRun(ctx, m.Namespace(), kind, fresh, chunks, est); err != nil {
				return nil, fmt.Errorf("snapshot: %w", err)
			}
			deps.Logger.Info("snapshot planned", "collection", m.Namespace(), "kind", kind, "run", j.run.ID,
				"t0", fmtTS(fresh), "chunks", len(chunks), "documents", est)
		}
		if j.chunks, err = s.store.chunks(ctx, j.run.ID); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		var done int64
		for _, c := range j.chunks {
			if c.Done {
				done += c.Documents
			} else {
				j.pending.Add(1)
			}
		}
		j.track = newTracker(m.Namespace(), j.run.Kind, j.run.Estimated, done)
		s.prog.add(j.track)
		if s.t0.IsZero() || j.run.T0.Before(s.t0) {
			s.t0 = j.run.T0
		}
		s.jobs = append(s.jobs, j)
	}
	return s, nil
}

// collection returns a handle reading with majority read concern, so that
// everything at or before T0 is visible (see ClusterTime).
func collection(c *mongo.Client, ns string) *mongo.Collection {
	db, name, _ := cutNS(ns)
	return c.Database(db).Collection(name, options.Collection().SetReadConcern(readconcern.Majority()))
}

func cutNS(ns string) (db, coll string, ok bool) {
	for i := 0; i < len(ns); i++ {
		if ns[i] == '.' {
			return ns[:i], ns[i+1:], true
		}
	}
	return ns, "", false
}

func fmtTS(t transform.ClusterTime) string { return fmt.Sprintf("%d.%d", t.T, t.I) }

// Run copies every chunk not yet done, at most Parallelism at a time over
// all collections, then finishes each collection's run (a resync sweeps
// first). It calls cfg.OnT0 before reading anything. A failed chunk is
// retried; a run that stops (error, cancel, crash) resumes with Start.
//
// A chunk that fails on a foreign key is deferred until every other chunk
// has been copied, then retried for at most Config.ForeignKeyWait
// (retryDeferred). A collection that halts (on_error: halt, *HaltError)
// copies no more chunks while the others go on; Run then returns the
// halts, joined.
func (s *Snapshot) Run(ctx context.Context) error {
	if s.cfg.OnT0 != nil {
		if err := s.cfg.OnT0(ctx, s.t0); err != nil {
			return fmt.Errorf("snapshot: start at %s: %w", fmtTS(s.t0), err)
		}
	}
	pctx, stopProgress := context.WithCancel(context.Background())
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); s.prog.run(pctx) }()
	defer func() { stopProgress(); <-progressDone }()

	for _, j := range s.jobs {
		s.deps.Metrics.setState(j.m.Namespace(), StateCopying)
		s.deps.Metrics.setRemaining(j.m.Namespace(), j.track.estimated-j.track.copied())
		j.track.setState(StateCopying)
	}
	// Interleave the collections so each advances from the start.
	deferred, err := s.copyPass(ctx, roundRobin(s.jobs), false)
	if err != nil {
		return err
	}
	if err := s.retryDeferred(ctx, deferred); err != nil {
		return err
	}
	var halts []error
	for _, j := range s.jobs {
		if h := j.halted.Load(); h != nil {
			halts = append(halts, h)
		}
	}
	return errors.Join(halts...)
}

type chunkRef struct {
	job   *job
	chunk Chunk
}

func roundRobin(jobs []*job) []chunkRef {
	var out []chunkRef
	for i := 0; ; i++ {
		any := false
		for _, j := range jobs {
			if i < len(j.chunks) {
				any = true
				if !j.chunks[i].Done {
					out = append(out, chunkRef{j, j.chunks[i]})
				}
			}
		}
		if !any {
			return out
		}
	}
}

// finish ends a collection's run once all its chunks are done: a resync
// first removes the rows it did not see, then the run is marked done.
func (s *Snapshot) finish(ctx context.Context, j *job) error {
	ns := j.m.Namespace()
	if j.run.Kind == KindResync {
		j.track.setState(StateSweeping)
		s.deps.Metrics.setState(ns, StateSweeping)
		if err := s.store.setState(ctx, j.run.ID, stateSweeping, nil); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		n, err := s.sweep(ctx, j)
		if err != nil {
			return err
		}
		s.deps.Metrics.addSwept(ns, n)
		if err := s.store.setState(ctx, j.run.ID, stateDone, &n); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		s.deps.Logger.Info("resync done", "collection", ns, "run", j.run.ID, "documents", j.track.copied(), "swept", n)
	} else {
		if err := s.store.setState(ctx, j.run.ID, stateDone, nil); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		s.deps.Logger.Info("snapshot done", "collection", ns, "run", j.run.ID, "documents", j.track.copied())
	}
	j.track.setState(StateDone)
	s.deps.Metrics.setState(ns, StateDone)
	s.deps.Metrics.setRemaining(ns, 0)
	s.analyze(ctx, j)
	return nil
}

// analyzeLockTimeout bounds how long analyze waits for a table's lock.
const analyzeLockTimeout = 10 * time.Second

// analyze gives the planner statistics of the tables a run just filled
// (or rewrote), so the streaming apply's first batches are planned with
// them instead of with those of the empty tables, until autovacuum would
// have come round (the applier's joins to child tables pick index probes
// or whole-table scans by them). It is best effort: a role that does not
// own a table gets a warning from PostgreSQL and the table is skipped, a
// table locked by maintenance (a VACUUM, an index built concurrently) is
// not waited for beyond analyzeLockTimeout, and a failure is logged, never
// the run's.
func (s *Snapshot) analyze(ctx context.Context, j *job) {
	tables := j.m.Tables()
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = transform.QuoteTable(t.Name)
	}
	start := time.Now()
	err := pgx.BeginFunc(ctx, s.deps.Target, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", analyzeLockTimeout.Milliseconds())); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "ANALYZE "+strings.Join(names, ", "))
		return err
	})
	if err != nil {
		s.deps.Logger.Warn("analyzing the tables after the run failed; autovacuum will", "collection", j.m.Namespace(), "err", err)
		return
	}
	s.deps.Logger.Info("tables analyzed", "collection", j.m.Namespace(), "tables", len(names), "took", time.Since(start).Round(time.Millisecond))
}
