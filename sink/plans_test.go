package sink

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/internal/testenv"
)

// TestSmallBatchesProbeChildIndex: on one connection, a batch of a
// thousand updates (COPY path) and then small batches of three (arrays)
// against child tables of 100,000 rows with fresh statistics. The small
// batches must find the child rows of their applied roots through the
// child tables' key index, never by scanning them (counted in
// pg_stat_user_tables.seq_scan). The table of applied rows is analyzed
// while empty (analyzeTemp), so the planner counts its rows from its
// pages; never analyzed, its one page was taken for ten pages of rows,
// and a hash join over every child row looked cheaper than a thousand
// probes (this test fails so).
//
// The other half of the same protection, the large batch's statements
// planned for that batch alone (execReplanned), so that a plan made for
// it is not kept for the small ones, does not show here: with these sizes
// the large batch probes the index too.
func TestSmallBatchesProbeChildIndex(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	setup := testDB(t, url)
	const docs = 50_000
	if _, err := setup.Exec(ctx, fmt.Sprintf(`
INSERT INTO app.items (id, tenant, qty, doc, _cdc_ts, _cdc_inc, _cdc_seq)
SELECT 'doc-' || g, '%s', 1, '{"n": 1}', 1, 1, 1 FROM generate_series(1, %d) g;
INSERT INTO app.item_tags (item_id, ordinal, tag) SELECT 'doc-' || g, o, 't' FROM generate_series(1, %d) g, generate_series(0, 1) o;
INSERT INTO app.item_tag_notes (item_id, parent_ordinal, ordinal, note) SELECT item_id, ordinal, 0, 'n' FROM app.item_tags`,
		tenant, docs, docs)); err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec(ctx, "VACUUM ANALYZE app.items, app.item_tags, app.item_tag_notes"); err != nil {
		t.Fatal(err)
	}

	// One connection, so the small batches run where the large one did.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c := newTestCollection(t, pool, 100, nil)
	// seqScans counts the scans of the child tables. The applier's
	// connection flushes its pending counts before it answers the next
	// statement when asked to (PostgreSQL 15); each reading outside a
	// transaction sees them.
	seqScans := func() int64 {
		t.Helper()
		if _, err := pool.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := setup.QueryRow(ctx, `SELECT coalesce(sum(seq_scan), 0)::int8 FROM pg_stat_user_tables
WHERE schemaname = 'app' AND relname IN ('item_tags', 'item_tag_notes')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	var msgs []message
	seq := uint64(0)
	for i := range 1000 {
		seq++
		msgs = append(msgs, change(seq, 10, item{id: fmt.Sprintf("doc-%d", 1+i*2), qty: 2, tags: []string{"a", "b"}}.mutation()))
	}
	if err := c.apply(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	before := seqScans()
	for b := range 20 {
		msgs = msgs[:0]
		for i := range 3 {
			seq++
			msgs = append(msgs, change(seq, 11, item{id: fmt.Sprintf("doc-%d", 10_000+b*3+i), qty: 3, tags: []string{"c"}}.mutation()))
		}
		if err := c.apply(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	if after := seqScans(); after != before {
		t.Errorf("20 batches of 3 updates scanned the child tables %d times, want their key index only", after-before)
	}
	var tags int
	if err := setup.QueryRow(ctx, `SELECT count(*) FROM app.item_tags WHERE tag = 'c'`).Scan(&tags); err != nil {
		t.Fatal(err)
	}
	if tags != 60 {
		t.Errorf("%d child rows written by the small batches, want 60", tags)
	}
}
