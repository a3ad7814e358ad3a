package checkpoints

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mongopg/replicator/transform"
)

// The applier's statements (package sink). It runs them on its own pool,
// transaction or batch, so a checkpoint commits together with the rows it
// covers. Its writes are guarded by a Position: they change the row only
// while it still holds the sequence and epoch the applier last saw, and
// report ErrMoved otherwise.

// ErrMoved: the checkpoint row no longer holds the position a guarded write
// named (Set or Rewind moved it, or a commit whose outcome the caller lost
// already advanced it). Nothing was written; the caller re-reads the
// checkpoint.
var ErrMoved = errors.New("apply checkpoint moved")

// Position is a checkpoint as an applier last read or committed it; the
// guard of its next write.
type Position struct {
	Seq   uint64
	Epoch int64
}

// Execer runs statements; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Ensure creates collection's checkpoint (sequence 0, epoch 0, no source
// times) unless it exists; an existing checkpoint is left as it is.
func Ensure(ctx context.Context, q Execer, collection string) error {
	if _, err := q.Exec(ctx, `INSERT INTO replicator.apply_checkpoints (collection) VALUES ($1) ON CONFLICT DO NOTHING`, collection); err != nil {
		return fmt.Errorf("create checkpoint of %s: %w", collection, err)
	}
	return nil
}

// Epoch returns collection's checkpoint epoch (ErrNotFound without a
// checkpoint). An applier compares it with the epoch it holds to notice a
// Set while it has nothing to commit.
func Epoch(ctx context.Context, q Querier, collection string) (int64, error) {
	var epoch int64
	err := q.QueryRow(ctx, `SELECT epoch FROM replicator.apply_checkpoints WHERE collection = $1`, collection).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("checkpoint epoch of %s: %w", collection, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint epoch of %s: %w", collection, err)
	}
	return epoch, nil
}

// advance arguments: $1 collection, $2 new sequence, $3 and $4 cluster time
// (T, I) and $5 source wall time (NULL keeps the stored value), $6 and $7
// the guard's sequence and epoch.
const advance = `UPDATE replicator.apply_checkpoints
SET stream_seq = $2, cluster_ts = coalesce($3, cluster_ts), cluster_inc = coalesce($4, cluster_inc),
    source_wall_time = coalesce($5, source_wall_time), updated_at = now()
WHERE collection = $1 AND stream_seq = $6 AND epoch = $7`

// QueueAdvance queues into b the move of collection's checkpoint from
// position from to seq, recording the source times reached (a zero ct or
// wall keeps the stored one); the epoch stays. It adds no round trip: the
// statement runs with the rest of b, in the caller's transaction. When b
// runs, the statement's result (returned by the batch's Close) is ErrMoved
// if the row no longer holds from; nothing is changed then, and the caller
// must not commit.
func QueueAdvance(b *pgx.Batch, collection string, from Position, seq uint64, ct transform.ClusterTime, wall time.Time) {
	var ts, inc *int64
	var w *time.Time
	if !ct.IsZero() {
		t, i := int64(ct.T), int64(ct.I)
		ts, inc = &t, &i
	}
	if !wall.IsZero() {
		w = &wall
	}
	b.Queue(advance, collection, int64(seq), ts, inc, w, int64(from.Seq), from.Epoch).
		Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != 1 {
				return ErrMoved
			}
			return nil
		})
}

// Rewind moves collection's checkpoint from position from to seq, forgets
// the source times and bumps the epoch, as Set does, but only while the row
// still holds from (else ErrMoved, and nothing changes). It runs on q, the
// caller's transaction, so the move commits with whatever records its
// reason. The new epoch makes an applier that still holds from restart
// delivery at seq+1.
func Rewind(ctx context.Context, q Execer, collection string, from Position, seq uint64) error {
	tag, err := q.Exec(ctx, `UPDATE replicator.apply_checkpoints SET stream_seq = $2, epoch = epoch + 1,
    cluster_ts = NULL, cluster_inc = NULL, source_wall_time = NULL, updated_at = now()
WHERE collection = $1 AND stream_seq = $3 AND epoch = $4`, collection, int64(seq), int64(from.Seq), from.Epoch)
	if err != nil {
		return fmt.Errorf("rewind checkpoint of %s: %w", collection, err)
	}
	if tag.RowsAffected() != 1 {
		return ErrMoved
	}
	return nil
}
