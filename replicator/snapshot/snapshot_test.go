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
	// Each collection's tables were analyzed once its run was done, so the
	// streaming apply plans with their statistics from its first batch.
	var names []string
	for _, m := range h.deps().Mappings {
		for _, tbl := range m.Tables() {
			names = append(names, tbl.Name)
		}
	}
	var analyzed int
	if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_user_tables
WHERE schemaname || '.' || relname = ANY($1) AND last_analyze IS NOT NULL`, names).Scan(&analyzed); err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 || analyzed != len(names) {
		t.Errorf("%d of the %d mapped tables analyzed after the snapshot, want all", analyzed, len(names))
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
