package snapshot_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/snapshot"
)

// TestResyncWithStreamingDeadLetter: a document streaming dead-lettered
// because PostgreSQL refuses its row (a CHECK added to the target table)
// is still in MongoDB; a later resync of its collection must run: the
// document becomes a snapshot dead letter (once, however often the
// collection is resynced) and every other document is copied, while
// streaming goes on.
func TestResyncWithStreamingDeadLetter(t *testing.T) {
	h := newHarness(t)
	h.seed(500)
	nats := testenv.NATS(t)
	cfg := h.pipelineConfig(nats.URL, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	s := h.startStream(ctx, cfg)
	h.waitRunsDone(ctx, len(collNames), s.done)
	h.waitEqual(ctx, time.Minute)
	if _, err := h.pool.Exec(ctx, `ALTER TABLE app.beta ADD CONSTRAINT beta_n_check CHECK (n >= 0)`); err != nil {
		t.Fatal(err)
	}
	const badID = int64(900000)
	badKey := `{"_id":{"$numberLong":"900000"}}`
	if _, err := h.coll(1).InsertOne(ctx, bson.D{{Key: "_id", Value: badID}, {Key: "n", Value: int64(-5)}, {Key: "name", Value: "bad"}}); err != nil {
		t.Fatal(err)
	}
	for {
		var n int
		if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM replicator.dead_letters WHERE document_key = $1 AND reason = 'constraint'`, badKey).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		select {
		case err := <-s.done:
			t.Fatalf("pipeline stopped: %v", err)
		case <-ctx.Done():
			t.Fatal("streaming did not dead-letter the document")
		case <-time.After(50 * time.Millisecond):
		}
	}

	beta := h.db + ".beta"
	for i := range 2 {
		if err := snapshot.Resync(ctx, h.deps(), snapshot.Config{Collections: []string{beta}, ChunkSize: 200}); err != nil {
			t.Fatalf("resync %d with a live dead letter: %v", i+1, err)
		}
	}
	h.waitCaughtUp(ctx, time.Minute)
	var resyncs, rows, present, snapshotDL, streamDL int
	var sqlstate string
	if err := h.pool.QueryRow(ctx, `SELECT
 (SELECT count(*) FROM replicator.snapshot_runs WHERE collection = $1 AND kind = 'resync' AND state = 'done'),
 (SELECT count(*) FROM app.beta), (SELECT count(*) FROM app.beta WHERE id = $2),
 (SELECT count(*) FROM replicator.dead_letters WHERE collection = $1 AND reason = 'snapshot' AND stage = 'apply' AND document_key = $3),
 (SELECT count(*) FROM replicator.dead_letters WHERE collection = $1 AND reason = 'constraint'),
 (SELECT coalesce(min(sqlstate), '') FROM replicator.dead_letters WHERE collection = $1 AND reason = 'snapshot')`,
		beta, badID, badKey).Scan(&resyncs, &rows, &present, &snapshotDL, &streamDL, &sqlstate); err != nil {
		t.Fatal(err)
	}
	docs, err := h.coll(1).CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if resyncs != 2 || int64(rows) != docs-1 || present != 0 {
		t.Fatalf("%d resyncs done (want 2); app.beta %d rows for %d documents (want all but the refused one), refused one present %d",
			resyncs, rows, docs, present)
	}
	if snapshotDL != 1 || streamDL != 1 || sqlstate != "23514" {
		t.Fatalf("dead letters of the refused document: %d from resyncs (want 1, SQLSTATE 23514, got %q), %d from streaming (want 1)",
			snapshotDL, sqlstate, streamDL)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}
