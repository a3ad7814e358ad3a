package snapshot_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/snapshot"
)

// runWithPolicy runs capture, apply and the snapshot coordinator the way
// `replicator run` does (on_history_lost from cfg), with metrics in reg.
func (h *harness) runWithPolicy(ctx context.Context, cfg *config.Config, reg *prometheus.Registry) (stop func() error, done <-chan error) {
	pctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- replicator.Run(pctx, cfg, replicator.Options{Capture: true, Apply: true, Snapshot: true, DisableHTTP: true,
			Logger: testLogger(h.t), Registerer: reg, Gatherer: reg})
	}()
	out := make(chan error, 1)
	stopped := make(chan error, 1)
	go func() {
		err := <-errc
		out <- err
		stopped <- err
	}()
	return func() error {
		cancel()
		err := <-stopped
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return err
	}, out
}

// TestHistoryLostWithUnfinishedResync: with on_history_lost: resync, the
// resume point falls off the oplog while a resync of one collection is
// unfinished (recorded, then interrupted) and its T0 has fallen off too.
// Recovery must not resume that resync at its lost T0 (capture would
// reopen there and lose the history again, in a loop purging the buffer):
// it starts over at a T0 still in the oplog, recovers once, and streaming
// goes on to equality.
func TestHistoryLostWithUnfinishedResync(t *testing.T) {
	h := newHarness(t, mongotest.Options{OplogMaxEvents: 2000})
	h.env.RequireEmulator("a 2000-entry oplog")
	h.seed(3000)
	nats := testenv.NATS(t)
	cfg := h.pipelineConfig(nats.URL, "  on_history_lost: resync\n")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	stop, done := h.runWithPolicy(ctx, cfg, prometheus.NewRegistry())
	h.waitRunsDone(ctx, len(collNames), done)
	h.waitEqual(ctx, time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A resync of alpha, recorded at the current T0 and never finished.
	if _, err := snapshot.StartResync(ctx, h.deps(), snapshot.Config{Collections: []string{h.db + ".alpha"}, ChunkSize: 2000}); err != nil {
		t.Fatal(err)
	}
	// More changes than the oplog holds: the capture position and the
	// unfinished resync's T0 both fall off.
	h.startWriterN(ctx, 0, 5000).finish(t)

	reg := prometheus.NewRegistry()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	looping := make(chan float64, 1)
	go func() {
		for wctx.Err() == nil {
			if n := counter(t, reg, "replicator_capture_history_lost_total"); n > 3 {
				looping <- n
				cancel()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	stop, done = h.runWithPolicy(ctx, cfg, reg)
	h.waitRunsDone(ctx, len(collNames), done)
	h.startWriterN(ctx, 0, 500).finish(t)
	h.waitEqual(ctx, time.Minute)
	stopWatch()
	select {
	case n := <-looping:
		t.Fatalf("history lost %v times: recovery loops", n)
	default:
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := counter(t, reg, "replicator_capture_history_lost_total"); n != 1 {
		t.Fatalf("history lost %v times, want exactly one recovery", n)
	}
	var stale int
	if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM replicator.snapshot_runs WHERE state IN ('copying', 'sweeping')`).Scan(&stale); err != nil {
		t.Fatal(err)
	}
	if stale != 0 {
		t.Fatalf("%d runs still unfinished", stale)
	}
}
