package snapshot_test

import (
	"context"
	"testing"
	"time"

	"github.com/mongopg/replicator/replicator/snapshot"
)

func TestSnapshotCopiesEveryIDType(t *testing.T) {
	h := newHarness(t)
	h.seed(5000)
	ctx := context.Background()
	start := time.Now()
	if err := snapshot.Run(ctx, h.deps(), snapshot.Config{ChunkSize: 700, Parallelism: 4}); err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot of 15000 documents: %v", time.Since(start))
	h.waitEqual(ctx, 0)
	var chunks, done int
	if err := h.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'done') FROM replicator.snapshot_chunks`).Scan(&chunks, &done); err != nil {
		t.Fatal(err)
	}
	if chunks < 3*5000/700 || done != chunks {
		t.Fatalf("chunks: %d planned, %d done; want at least %d, all done", chunks, done, 3*5000/700)
	}
}

func TestDiffDetectsDifferences(t *testing.T) {
	h := newHarness(t)
	h.seed(100)
	ctx := context.Background()
	if err := snapshot.Run(ctx, h.deps(), snapshot.Config{ChunkSize: 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(ctx, `DELETE FROM app.alpha_tags WHERE ctid IN (SELECT ctid FROM app.alpha_tags LIMIT 1);
UPDATE app.beta SET n = n + 1 WHERE id = 7`); err != nil {
		t.Fatal(err)
	}
	d, err := h.diff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d["app.alpha_tags"] != 1 || d["app.beta"] != 2 || d["app.alpha"] != 0 {
		t.Fatalf("diff = %v, want one alpha_tags row and one beta row (two sides) differing", d)
	}
}
