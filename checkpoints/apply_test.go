package checkpoints

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/transform"
)

// advanceTx runs QueueAdvance in its own transaction, as the sink does in
// a batch's, and commits only when the batch succeeded.
func advanceTx(t *testing.T, pool *pgxpool.Pool, from Position, seq uint64, ct transform.ClusterTime, wall time.Time) error {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	b := &pgx.Batch{}
	QueueAdvance(b, "a.b", from, seq, ct, wall)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return nil
}

func TestCheckpointGuardedWrites(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Postgres(t)
	if err := schemas.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := Epoch(ctx, pool, "a.b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Epoch before any checkpoint: %v", err)
	}
	for range 2 { // the second Ensure leaves the row alone
		if err := Ensure(ctx, pool, "a.b"); err != nil {
			t.Fatal(err)
		}
	}
	get := func() Checkpoint {
		t.Helper()
		c, err := Get(ctx, pool, "a.b")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := get(); c.Seq != 0 || c.Epoch != 0 || !c.ClusterTime.IsZero() || !c.WallTime.IsZero() {
		t.Fatalf("new checkpoint %+v", c)
	}

	ct := transform.ClusterTime{T: 1700000000, I: 3}
	wall := time.Unix(1700000000, 0)
	if err := advanceTx(t, pool, Position{Seq: 0, Epoch: 0}, 10, ct, wall); err != nil {
		t.Fatalf("advance: %v", err)
	}
	if err := advanceTx(t, pool, Position{Seq: 10, Epoch: 0}, 12, transform.ClusterTime{}, time.Time{}); err != nil {
		t.Fatalf("advance without source times: %v", err)
	}
	c := get()
	if c.Seq != 12 || c.Epoch != 0 || c.ClusterTime != ct || !c.WallTime.Equal(wall) {
		t.Fatalf("after the advances: %+v, want seq 12 epoch 0 and the first advance's source times", c)
	}
	if err := Ensure(ctx, pool, "a.b"); err != nil || get().Seq != 12 {
		t.Fatalf("Ensure changed an existing checkpoint: %v", err)
	}
	for _, stale := range []Position{{Seq: 10, Epoch: 0}, {Seq: 12, Epoch: 1}} {
		if err := advanceTx(t, pool, stale, 20, ct, wall); !errors.Is(err, ErrMoved) {
			t.Fatalf("advance from %+v: %v, want ErrMoved", stale, err)
		}
	}
	if c := get(); c.Seq != 12 {
		t.Fatalf("a refused advance moved the checkpoint to %d", c.Seq)
	}

	if err := Rewind(ctx, pool, "a.b", Position{Seq: 11, Epoch: 0}, 5); !errors.Is(err, ErrMoved) {
		t.Fatalf("rewind from a stale position: %v, want ErrMoved", err)
	}
	if err := Rewind(ctx, pool, "a.b", Position{Seq: 12, Epoch: 0}, 5); err != nil {
		t.Fatalf("rewind: %v", err)
	}
	c = get()
	if c.Seq != 5 || c.Epoch != 1 || !c.ClusterTime.IsZero() || !c.WallTime.IsZero() {
		t.Fatalf("after the rewind: %+v, want seq 5 epoch 1 without source times", c)
	}
	if e, err := Epoch(ctx, pool, "a.b"); err != nil || e != 1 {
		t.Fatalf("Epoch %d, %v, want 1", e, err)
	}
	if err := advanceTx(t, pool, Position{Seq: 12, Epoch: 0}, 13, ct, wall); !errors.Is(err, ErrMoved) {
		t.Fatalf("advance from before the rewind: %v, want ErrMoved", err)
	}
}
