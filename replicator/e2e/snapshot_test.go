package e2e

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/capture"
)

// The snapshot's own tests (replicator/snapshot) cover chunk planning,
// resumption after SIGKILL, resync sweeps and recovery driven by hand;
// these tests cover what `replicator run` wires around them: the initial
// snapshot on capture's first start and the on_history_lost policies.

// startRun runs the pipeline as `replicator run` does: capture, apply and
// the snapshot coordinator in this process.
func (h *harness) startRun() {
	h.t.Helper()
	if h.done != nil {
		h.t.Fatal("pipeline already running")
	}
	h.launch(replicator.Options{Capture: true, Apply: true, Snapshot: true})
}

// newHarnessOplog is newHarness on an emulator with a bounded oplog.
func newHarnessOplog(t *testing.T, mo mongotest.Options) *harness {
	t.Helper()
	h := &harness{t: t, mongo: mongotest.New(t, mo), nats: testenv.NATS(t), pgURL: testenv.PostgresURL(t)}
	h.mongo.RequireEmulator("a bounded oplog")
	h.ns = workload.InDatabase(h.mongo.Database("lost"))
	h.configure()
	return h
}

// snapshotRuns counts replicator.snapshot_runs by kind and state.
func snapshotRuns(t testing.TB, h *harness, kind, state string) int {
	t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM replicator.snapshot_runs WHERE kind = $1 AND state = $2`, kind, state).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// counterValue sums every sample of the named counter.
func counterValue(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestRunSnapshotsOnFirstStart: `replicator run` on a fresh target, with
// documents already in MongoDB, copies them (the initial snapshot, in
// several chunks per collection) while the workload keeps writing; the
// streamed changes and the copy end equal to MongoDB. A restart resumes
// streaming and takes no second snapshot.
func TestRunSnapshotsOnFirstStart(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.cfg.Snapshot.ChunkSize = 300
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	before := h.generator(31, workload.Options{InitialDocs: 400})
	if err := before.Run(ctx, 0, 4000); err != nil {
		t.Fatal(err)
	}
	h.startRun()
	var wg sync.WaitGroup
	var genErr error
	during := h.generator(32, workload.Options{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		genErr = during.Run(ctx, 1000, 3000)
	}()
	wg.Wait()
	if genErr != nil {
		t.Fatal(genErr)
	}
	r := h.waitEqual(60 * time.Second)
	t.Logf("equal: %s (%d events before the first start, %d during)", totalRows(r), before.Stats().Events, during.Stats().Events)
	if n := snapshotRuns(t, h, "snapshot", "done"); n != 3 {
		t.Fatalf("%d finished snapshot runs, want one per collection (3)", n)
	}
	if n := counterValue(t, h.reg, "replicator_snapshot_chunks_total"); n < 6 {
		t.Fatalf("the snapshot committed %v chunks, want several per collection", n)
	}
	if n := deadLetters(t, h.pool); n != 0 {
		t.Fatalf("%d dead letters", n)
	}

	if err := h.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	h.startRun()
	if err := h.generator(33, workload.Options{InitialDocs: 1}).Run(ctx, 0, 500); err != nil {
		t.Fatal(err)
	}
	h.waitEqual(60 * time.Second)
	var runs int
	if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM replicator.snapshot_runs`).Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != 3 {
		t.Fatalf("%d snapshot runs after a restart, want the first start's 3 only", runs)
	}
	// One owner of the headroom gauge (registering it twice would panic):
	// the oplog-window guard, which measured the saved position at start.
	if g := gauges(t, h.reg, "replicator_capture_oplog_headroom_seconds"); len(g) != 1 || g[""] <= 0 {
		t.Fatalf("replicator_capture_oplog_headroom_seconds = %v, want one positive sample", g)
	}
}

// TestHistoryLostPolicies: the replicator is stopped and MongoDB writes
// (deletes included) past the emulator's small oplog, so the saved resume
// point falls off. With on_history_lost: resync, `run` recovers by itself:
// it resyncs every collection (sweeping the rows of documents deleted in
// the lost window) and streams on from the resync's T0, counted once. With
// the default, stop, it stops with the error naming `replicator resync
// --all`.
func TestHistoryLostPolicies(t *testing.T) {
	for _, policy := range []string{"resync", "stop"} {
		t.Run(policy, func(t *testing.T) {
			h := newHarnessOplog(t, mongotest.Options{OplogMaxEvents: 2000})
			h.cfg.Source.OnHistoryLost = policy
			h.cfg.Snapshot.ChunkSize = 500
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			g := h.generator(41, workload.Options{InitialDocs: 300})
			if err := g.Run(ctx, 0, 1500); err != nil {
				t.Fatal(err)
			}
			h.startRun()
			if err := g.Run(ctx, 0, 2500); err != nil {
				t.Fatal(err)
			}
			h.waitEqual(60 * time.Second)
			if err := h.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}

			// Stopped: more changes than the oplog holds, deletes of
			// replicated documents among them.
			deletes := g.Stats().Ops["delete"]
			if err := g.Run(ctx, 0, 7500); err != nil {
				t.Fatal(err)
			}
			if g.Stats().Ops["delete"] == deletes {
				t.Fatal("the workload deleted nothing while the replicator was stopped")
			}

			h.startRun()
			if policy == "stop" {
				var err error
				select {
				case err = <-h.done:
					h.done = nil
				case <-time.After(30 * time.Second):
					t.Fatal("the pipeline did not stop on lost history")
				}
				var stop *capture.StopError
				if !errors.As(err, &stop) || !strings.Contains(err.Error(), "replicator resync --all") {
					t.Fatalf("pipeline error %v; want a capture stop naming replicator resync --all", err)
				}
				if n := snapshotRuns(t, h, "resync", "done") + snapshotRuns(t, h, "resync", "copying"); n != 0 {
					t.Fatalf("%d resync runs recorded under the stop policy", n)
				}
				return
			}

			// Recovers without intervention, writing all the while.
			if err := g.Run(ctx, 50, 8000); err != nil {
				t.Fatal(err)
			}
			r := h.waitEqual(60 * time.Second)
			t.Logf("equal after the automatic resync: %s", totalRows(r))
			for name, want := range map[string]float64{
				"replicator_snapshot_history_lost_resyncs_total": 1,
				"replicator_capture_history_lost_total":          1,
				// The purge of superseded events is deliberate, not loss.
				"replicator_apply_gaps_total": 0,
			} {
				if got := counterValue(t, h.reg, name); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			for deadline := time.Now().Add(30 * time.Second); snapshotRuns(t, h, "resync", "done") != 3; {
				if time.Now().After(deadline) {
					t.Fatalf("%d finished resync runs, want one per collection (3)", snapshotRuns(t, h, "resync", "done"))
				}
				time.Sleep(100 * time.Millisecond)
			}
			var swept int64
			if err := h.pool.QueryRow(ctx, `SELECT coalesce(sum(swept), 0) FROM replicator.snapshot_runs WHERE kind = 'resync'`).Scan(&swept); err != nil {
				t.Fatal(err)
			}
			if swept == 0 {
				t.Fatal("the resync swept nothing; the lost window's deletes were not recovered")
			}
			t.Logf("the resync removed %d rows of documents deleted in the lost window", swept)
			if err := h.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
		})
	}
}
