package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/workload"
)

// TestMixedWorkload: inserts, $set/$unset/$inc updates, array growth and
// shrinkage, replaces, deletes, re-inserts of deleted ids and transactions
// over two collections in two databases (a cluster-scoped stream); after
// catch-up PostgreSQL equals MongoDB's final state, with no dead letters.
func TestMixedWorkload(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Some data exists before the first start: capture starts at "now",
	// so only later changes replicate (the snapshot issue adds the initial
	// copy). Start first, then write everything.
	h.start()
	time.Sleep(time.Second)
	g := h.generator(1, workload.Options{})
	if err := g.Run(ctx, 0, 4000); err != nil {
		t.Fatal(err)
	}
	st := g.Stats()
	t.Logf("workload: %d events, ops %v", st.Events, st.Ops)
	for _, op := range []string{"insert", "update_set", "update_unset", "update_inc", "update_push", "update_pop", "replace", "delete", "reinsert", "transaction"} {
		if st.Ops[op] == 0 {
			t.Errorf("workload issued no %s", op)
		}
	}
	r := h.waitEqual(60 * time.Second)
	t.Logf("equal: %s", totalRows(r))
	if n := deadLetters(t, h.pool); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
	// A restart resumes where it stopped and changes nothing.
	if err := h.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	h.start()
	if err := h.generator(2, workload.Options{InitialDocs: 1}).Run(ctx, 0, 1000); err != nil {
		t.Fatal(err)
	}
	h.waitEqual(60 * time.Second)
}
