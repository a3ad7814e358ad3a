package checkpoints

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/transform"
)

// Checkpoint is one collection's apply position.
type Checkpoint struct {
	Collection string
	// Seq is the last applied buffer sequence; the applier resumes at
	// Seq+1.
	Seq uint64
	// ClusterTime and WallTime are the source times of the last applied
	// event or heartbeat (zero when unknown, for example after Set).
	ClusterTime transform.ClusterTime
	WallTime    time.Time
	// Epoch changes at every Set.
	Epoch     int64
	UpdatedAt time.Time
}

// Lag is now minus the source wall time (0 when unknown).
func (c Checkpoint) Lag(now time.Time) time.Duration {
	if c.WallTime.IsZero() {
		return 0
	}
	return now.Sub(c.WallTime)
}

// Querier runs queries; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrNotFound: the collection has no checkpoint (nothing applied yet and
// never set).
var ErrNotFound = errors.New("no checkpoint")

const selectCols = `SELECT collection, stream_seq, coalesce(cluster_ts, 0), coalesce(cluster_inc, 0), source_wall_time, epoch, updated_at FROM replicator.apply_checkpoints`

func scan(r pgx.Row) (Checkpoint, error) {
	var (
		c        Checkpoint
		seq      int64
		ts, inc  int64
		wallTime *time.Time
	)
	if err := r.Scan(&c.Collection, &seq, &ts, &inc, &wallTime, &c.Epoch, &c.UpdatedAt); err != nil {
		return Checkpoint{}, err
	}
	c.Seq = uint64(seq)
	c.ClusterTime = transform.ClusterTime{T: uint32(ts), I: uint32(inc)}
	if wallTime != nil {
		c.WallTime = *wallTime
	}
	return c, nil
}

// List returns every collection's checkpoint, ordered by collection.
func List(ctx context.Context, q Querier) ([]Checkpoint, error) {
	rows, err := q.Query(ctx, selectCols+` ORDER BY collection`)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Checkpoint, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	return out, nil
}

// Get returns one collection's checkpoint or ErrNotFound.
func Get(ctx context.Context, q Querier, collection string) (Checkpoint, error) {
	c, err := scan(q.QueryRow(ctx, selectCols+` WHERE collection = $1`, collection))
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s: %w", collection, ErrNotFound)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s: %w", collection, err)
	}
	return c, nil
}

// SetOptions tunes Set.
type SetOptions struct {
	// AllowForward lets Set move the checkpoint past its current position,
	// which skips events without applying them.
	AllowForward bool
}

// Set makes seq the last applied sequence of collection (the applier
// resumes at seq+1), forgets the source times and bumps the epoch. It
// returns the previous checkpoint (Seq 0 when there was none).
func Set(ctx context.Context, q Querier, collection string, seq uint64, opts SetOptions) (Checkpoint, error) {
	prev, err := Get(ctx, q, collection)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Checkpoint{}, err
	}
	if seq > prev.Seq && !opts.AllowForward {
		return prev, fmt.Errorf("set checkpoint of %s: %d is past the current position %d and would skip events; allow it explicitly to do so", collection, seq, prev.Seq)
	}
	// The read above is advisory; the write below is one atomic statement.
	_, err = scan(q.QueryRow(ctx, `INSERT INTO replicator.apply_checkpoints AS c (collection, stream_seq, epoch)
VALUES ($1, $2, 1)
ON CONFLICT (collection) DO UPDATE SET stream_seq = EXCLUDED.stream_seq, epoch = c.epoch + 1,
    cluster_ts = NULL, cluster_inc = NULL, source_wall_time = NULL, updated_at = now()
RETURNING collection, stream_seq, coalesce(cluster_ts, 0), coalesce(cluster_inc, 0), source_wall_time, epoch, updated_at`,
		collection, int64(seq)))
	if err != nil {
		return prev, fmt.Errorf("set checkpoint of %s: %w", collection, err)
	}
	return prev, nil
}
