package checkpoints

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestSetAndList(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Postgres(t)
	if err := schemas.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := Get(ctx, pool, "a.b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before any checkpoint: %v", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO replicator.apply_checkpoints (collection, stream_seq, cluster_ts, cluster_inc, source_wall_time)
VALUES ('a.b', 100, 1700000000, 4, now() - interval '5 seconds')`); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		seq     uint64
		opts    SetOptions
		wantErr bool
		want    uint64
		epoch   int64
	}{
		{"rewind", 40, SetOptions{}, false, 40, 1},
		{"forward is refused", 90, SetOptions{}, true, 40, 1},
		{"forward when allowed", 90, SetOptions{AllowForward: true}, false, 90, 2},
		{"same position still bumps the epoch", 90, SetOptions{}, false, 90, 3},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			_, err := Set(ctx, pool, "a.b", s.seq, s.opts)
			if (err != nil) != s.wantErr {
				t.Fatalf("Set: %v", err)
			}
			c, err := Get(ctx, pool, "a.b")
			if err != nil {
				t.Fatal(err)
			}
			if c.Seq != s.want || c.Epoch != s.epoch {
				t.Errorf("checkpoint %d epoch %d, want %d epoch %d", c.Seq, c.Epoch, s.want, s.epoch)
			}
			if !c.WallTime.IsZero() || !c.ClusterTime.IsZero() {
				t.Errorf("source times survive a Set: %v %v", c.WallTime, c.ClusterTime)
			}
		})
	}
	if _, err := Set(ctx, pool, "c.d", 0, SetOptions{}); err != nil {
		t.Fatalf("Set of a collection without a checkpoint: %v", err)
	}
	list, err := List(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Collection != "a.b" || list[1].Collection != "c.d" {
		t.Fatalf("List: %+v", list)
	}
	if lag := (Checkpoint{WallTime: time.Now().Add(-time.Minute)}).Lag(time.Now()); lag < time.Minute {
		t.Errorf("Lag %v", lag)
	}
}
