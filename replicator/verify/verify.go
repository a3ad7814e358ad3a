package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// Collection verifies the collection of m: it reads every document,
// stages the rows the mapping would write in temporary tables of one
// target connection, and compares them with every table of the mapping.
// Differences are compared again, after the applier has caught up past
// their read, up to Config.Rounds times (inflight.go). An error means the
// comparison could not be made (a server failed); differences are in the
// Report.
func Collection(ctx context.Context, deps Deps, m *transform.Mapping, cfg Config) (Report, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	ns := m.Namespace()
	rep := Report{Collection: ns, TransformErrors: DocumentList{Documents: []DocumentReport{}},
		DeadLettered: DocumentList{Documents: []DocumentReport{}}, InFlight: KeyList{Keys: []KeyReport{}}}
	conn, err := deps.Target.Acquire(ctx)
	if err != nil {
		return rep, fmt.Errorf("verify %s: target: %w", ns, err)
	}
	defer conn.Release()
	dls, err := openDeadLetters(ctx, conn, ns)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", ns, err)
	}
	tables := m.Tables()
	st, err := newStage(ctx, conn, tables)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", ns, err)
	}
	st.sample = cfg.Sample > 0
	defer st.drop(context.WithoutCancel(ctx))

	// start: every document is read after it; rows of no document read
	// are judged against it.
	start, err := capture.ClusterTime(ctx, deps.Source)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", ns, err)
	}
	r := newReader(m, cfg, st, dls, &rep, deps.Source)
	if st.sample {
		err = r.readSample(ctx, conn)
	} else {
		err = r.readAll(ctx)
	}
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", ns, err)
	}
	sortDocuments(&rep)
	if err := compareAll(ctx, conn, deps.Target, st, &rep, cfg, nil); err != nil {
		return rep, fmt.Errorf("verify %s: %w", ns, err)
	}
	if !rep.tablesEqual() && !cfg.NoRecheck {
		if err := recheck(ctx, deps, conn, st, r, &rep, cfg, start); err != nil {
			return rep, fmt.Errorf("verify %s: %w", ns, err)
		}
	}
	rep.Equal = rep.tablesEqual() && rep.TransformErrors.Count == 0 && rep.DeadLettered.Count == 0 &&
		(rep.Sample == nil || len(rep.Sample.Unmatched) == 0)
	if cfg.Repair && !rep.tablesEqual() {
		if deps.Writer == nil {
			deps.Writer = deps.Target
		}
		rr, err := repair(ctx, deps, conn, st, r)
		if err != nil {
			return rep, fmt.Errorf("verify %s: repair: %w", ns, err)
		}
		rep.Repair = &rr
	}
	return rep, nil
}

// recheck compares the tables again once the applier has caught up past
// the reads, leaving out what changed around its read and reading those
// documents again, at most cfg.Rounds times.
func recheck(ctx context.Context, deps Deps, conn *pgxpool.Conn, st *stage, r *reader, rep *Report, cfg Config, start transform.ClusterTime) error {
	root := st.tables[0]
	read, err := capture.ClusterTime(ctx, deps.Source)
	if err != nil {
		return err
	}
	wait := deps.Applied
	if wait == nil {
		wait = func(ctx context.Context, ns string, ct transform.ClusterTime, timeout time.Duration) error {
			return waitApplied(ctx, deps.Target, envelope.Units(r.m.Namespace(), r.m.Config().Partitions), ct, timeout)
		}
	}
	var again []string // documents read again for this round
	for round := 1; ; round++ {
		if err := wait(ctx, rep.Collection, read, cfg.CatchUpTimeout); err != nil {
			if !errors.Is(err, ErrNotApplying) {
				return err
			}
			if len(again) == 0 {
				rep.Note = "differences not re-checked: " + err.Error()
				return nil
			}
			// The documents read again cannot be judged: they stay in
			// flight, and the last comparison (which left them out)
			// stands.
			rep.Note = fmt.Sprintf("re-check %d not made: %s", round, err.Error())
			if err := st.markDocuments(ctx, again, reasonInFlight); err != nil {
				return err
			}
			break
		}
		var n int64
		err := compareAll(ctx, conn, deps.Target, st, rep, cfg, func(tx pgx.Tx) (err error) {
			n, err = markInFlight(ctx, tx, root, start, st.sample)
			return err
		})
		if err != nil {
			return err
		}
		rep.Rechecks = round
		if n == 0 || round == cfg.Rounds {
			break
		}
		if again, err = st.forget(ctx, reasonInFlight); err != nil {
			return err
		}
		if len(again) == 0 {
			break // only rows of no document read: they cannot be read again
		}
		if err := r.readAgain(ctx, again); err != nil {
			return err
		}
		sortDocuments(rep)
		if read, err = capture.ClusterTime(ctx, deps.Source); err != nil {
			return err
		}
	}
	l, err := inFlight(ctx, conn, root, cfg.MaxDifferences)
	if err != nil {
		return err
	}
	rep.InFlight = l
	return nil
}

// compareAll compares every table, replacing rep.Tables, in one snapshot
// of the target, which first runs mark (when set): what it finds in
// flight is what the comparison leaves out. A second session from pool
// imports the snapshot and takes the actual side's sums while the staging
// session takes the expected side's.
func compareAll(ctx context.Context, conn *pgxpool.Conn, pool *pgxpool.Pool, st *stage, rep *Report, cfg Config, mark func(pgx.Tx) error) error {
	if err := st.analyze(ctx); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Differences show values' text: doubles print every digit, so two
	// that differ never show alike.
	if _, err := tx.Exec(ctx, "SET LOCAL extra_float_digits = 3"); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	var snapshot string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		return fmt.Errorf("compare: export snapshot: %w", err)
	}
	if mark != nil {
		if err := mark(tx); err != nil {
			return err
		}
	}
	actual, release, err := st.second(ctx, pool, tx, snapshot)
	if err != nil {
		return err
	}
	defer release()
	rep.Tables = rep.Tables[:0]
	for i, def := range st.tables {
		tr, err := compareTable(ctx, tx, actual, st, i, def, cfg.MaxDifferences)
		if err != nil {
			return err
		}
		rep.Tables = append(rep.Tables, tr)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	return nil
}

// sortDocuments puts the document lists in key order: the workers add
// them in no fixed order.
func sortDocuments(rep *Report) {
	for _, l := range []*DocumentList{&rep.TransformErrors, &rep.DeadLettered} {
		slices.SortFunc(l.Documents, func(a, b DocumentReport) int { return strings.Compare(a.DocumentKey, b.DocumentKey) })
	}
}
