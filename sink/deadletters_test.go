package sink

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/transform"
)

// A snapshot's dead letter: stage transform, reason snapshot, no stream
// sequence, the snapshot's cluster time, the raw document as JSON or, when
// given so, as bytes; it counts toward the threshold like any other.
func TestWriteSnapshotDeadLetter(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Postgres(t)
	if err := schemas.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	te := &transform.Error{Collection: "shop.items", DocumentKey: `{"_id":"a"}`, Path: "qty", Err: errors.New("not a number")}
	t0 := transform.ClusterTime{T: 1700000000, I: 7}
	bsonDoc := []byte{5, 0, 0, 0, 0}
	cases := []struct {
		name               string
		rawEvent, rawBytes []byte
	}{
		{"json", []byte(`{"_id": "a", "qty": "x"}`), nil},
		{"bytes", nil, bsonDoc},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteSnapshotDeadLetter(ctx, tx, te, tc.rawEvent, tc.rawBytes, t0); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			var (
				collection, stage, reason, msg string
				path, sqlstate, key, raw       *string
				rawBytes                       []byte
				seq, ts, inc                   *int64
			)
			err = pool.QueryRow(ctx, `SELECT collection, stage, reason, error, field_path, sqlstate, document_key,
raw_event::text, raw_bytes, stream_seq, cluster_ts, cluster_inc FROM replicator.dead_letters ORDER BY id DESC LIMIT 1`).
				Scan(&collection, &stage, &reason, &msg, &path, &sqlstate, &key, &raw, &rawBytes, &seq, &ts, &inc)
			if err != nil {
				t.Fatal(err)
			}
			if collection != "shop.items" || stage != "transform" || reason != "snapshot" || msg != "not a number" {
				t.Errorf("collection %q stage %q reason %q error %q", collection, stage, reason, msg)
			}
			if path == nil || *path != "qty" || key == nil || *key != te.DocumentKey || sqlstate != nil {
				t.Errorf("field_path %v document_key %v sqlstate %v", path, key, sqlstate)
			}
			if seq != nil || ts == nil || *ts != int64(t0.T) || inc == nil || *inc != int64(t0.I) {
				t.Errorf("stream_seq %v cluster_ts %v cluster_inc %v", seq, ts, inc)
			}
			switch {
			case tc.rawEvent != nil && (raw == nil || *raw != `{"_id": "a", "qty": "x"}` || rawBytes != nil):
				t.Errorf("raw_event %v raw_bytes %v, want the JSON only", raw, rawBytes)
			case tc.rawBytes != nil && (raw != nil || !bytes.Equal(rawBytes, bsonDoc)):
				t.Errorf("raw_event %v raw_bytes %v, want the bytes only", raw, rawBytes)
			}
		})
	}
	b := &pgx.Batch{}
	n := -1
	queueUnresolved(b, "shop.items", &n)
	if err := pool.SendBatch(ctx, b).Close(); err != nil || n != 2 {
		t.Fatalf("unresolved %d, %v, want 2", n, err)
	}
	c := &collection{cfg: Collection{Namespace: "shop.items", DeadLetterThreshold: 2}}
	var halt *HaltError
	if err := c.thresholdHalt(n, 0); !errors.As(err, &halt) {
		t.Errorf("2 unresolved dead letters with threshold 2: %v, want a halt", err)
	}
	if err := c.thresholdHalt(1, 0); err != nil {
		t.Errorf("1 unresolved dead letter with threshold 2: %v", err)
	}
	c.cfg.DeadLetterThreshold = 0
	if err := c.thresholdHalt(n, 0); err != nil {
		t.Errorf("threshold 0 halts: %v", err)
	}
}
