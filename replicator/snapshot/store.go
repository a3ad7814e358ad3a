package snapshot

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/transform"
)

// Run kinds and states as stored in replicator.snapshot_runs.
const (
	KindSnapshot = "snapshot"
	KindResync   = "resync"

	stateCopying    = "copying"
	stateSweeping   = "sweeping"
	stateDone       = "done"
	stateSuperseded = "superseded"
)

// runRow is one row of replicator.snapshot_runs.
type runRow struct {
	ID         int64
	Collection string
	Kind       string
	State      string
	T0         transform.ClusterTime
	Estimated  int64
}

// store reads and writes snapshot progress.
type store struct {
	pool *pgxpool.Pool
}

// activeRun returns the unfinished run of a collection, or nil.
func (s store) activeRun(ctx context.Context, collection string) (*runRow, error) {
	r := &runRow{}
	err := s.pool.QueryRow(ctx, `
SELECT id, collection, kind, state, t0_ts, t0_inc, estimated
  FROM replicator.snapshot_runs
 WHERE collection = $1 AND state IN ('copying', 'sweeping')`, collection).
		Scan(&r.ID, &r.Collection, &r.Kind, &r.State, &r.T0.T, &r.T0.I, &r.Estimated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read run of %s: %w", collection, err)
	}
	return r, nil
}

// createRun records a new run with its plan in one transaction, marking any
// unfinished run of the collection superseded.
func (s store) createRun(ctx context.Context, collection, kind string, t0 transform.ClusterTime, chunks []Chunk, estimated int64) (*runRow, error) {
	r := &runRow{Collection: collection, Kind: kind, State: stateCopying, T0: t0, Estimated: estimated}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
UPDATE replicator.snapshot_runs SET state = 'superseded', finished_at = now()
 WHERE collection = $1 AND state IN ('copying', 'sweeping')`, collection); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `
INSERT INTO replicator.snapshot_runs (collection, kind, t0_ts, t0_inc, state, estimated)
VALUES ($1, $2, $3, $4, 'copying', $5) RETURNING id`,
			collection, kind, int64(t0.T), int64(t0.I), estimated).Scan(&r.ID); err != nil {
			return err
		}
		rows := make([][]any, len(chunks))
		for i, c := range chunks {
			lo, err := encodeBound(c.Lower)
			if err != nil {
				return err
			}
			hi, err := encodeBound(c.Upper)
			if err != nil {
				return err
			}
			rows[i] = []any{r.ID, int32(c.ID), c.Bracket, lo, hi, c.Estimated}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"replicator", "snapshot_chunks"},
			[]string{"run_id", "chunk", "bracket", "lower_bound", "upper_bound", "estimated"},
			pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record plan of %s: %w", collection, err)
	}
	return r, nil
}

// chunks returns the plan of a run in chunk order.
func (s store) chunks(ctx context.Context, runID int64) ([]Chunk, error) {
	rows, err := s.pool.Query(ctx, `
SELECT chunk, bracket, lower_bound, upper_bound, estimated, state = 'done', documents
  FROM replicator.snapshot_chunks WHERE run_id = $1 ORDER BY chunk`, runID)
	if err != nil {
		return nil, fmt.Errorf("read chunks of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []Chunk
	for rows.Next() {
		var c Chunk
		var id int32
		var lo, hi []byte
		if err := rows.Scan(&id, &c.Bracket, &lo, &hi, &c.Estimated, &c.Done, &c.Documents); err != nil {
			return nil, fmt.Errorf("read chunks of run %d: %w", runID, err)
		}
		c.ID = int(id)
		if c.Lower, err = decodeBound(lo); err != nil {
			return nil, fmt.Errorf("run %d chunk %d: %w", runID, id, err)
		}
		if c.Upper, err = decodeBound(hi); err != nil {
			return nil, fmt.Errorf("run %d chunk %d: %w", runID, id, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read chunks of run %d: %w", runID, err)
	}
	return out, nil
}

// errChunkDone means a chunk was already marked done: the transaction that
// tried to copy it again must roll back.
var errChunkDone = errors.New("chunk already done")

// markChunkDone marks a chunk done inside the transaction holding its rows
// (the checkpoint commits with the data it covers).
func markChunkDone(ctx context.Context, tx pgx.Tx, runID int64, chunk int, documents, skipped int64) error {
	tag, err := tx.Exec(ctx, `
UPDATE replicator.snapshot_chunks
   SET state = 'done', documents = $3, skipped = $4, finished_at = clock_timestamp()
 WHERE run_id = $1 AND chunk = $2 AND state = 'pending'`, runID, int32(chunk), documents, skipped)
	if err != nil {
		return fmt.Errorf("checkpoint chunk %d: %w", chunk, err)
	}
	if tag.RowsAffected() != 1 {
		return errChunkDone
	}
	return nil
}

// setState moves a run to a new state.
func (s store) setState(ctx context.Context, runID int64, state string, swept *int64) error {
	_, err := s.pool.Exec(ctx, `
UPDATE replicator.snapshot_runs
   SET state = $2, swept = coalesce($3, swept),
       finished_at = CASE WHEN $2 IN ('done', 'superseded') THEN now() END
 WHERE id = $1`, runID, state, swept)
	if err != nil {
		return fmt.Errorf("set run %d %s: %w", runID, state, err)
	}
	return nil
}

// Unfinished lists the collections whose snapshot or resync has not
// finished, for an orchestrator deciding whether to resume one.
func Unfinished(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	rows, err := pool.Query(ctx, `
SELECT collection FROM replicator.snapshot_runs
 WHERE state IN ('copying', 'sweeping') ORDER BY collection`)
	if err != nil {
		return nil, fmt.Errorf("snapshot: list unfinished runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("snapshot: list unfinished runs: %w", err)
	}
	return out, nil
}
