package snapshot_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/snapshot"
)

// writer runs inserts, updates and deletes against the three collections
// until stopped.
type writer struct {
	h   *harness
	mu  sync.Mutex
	ids [3][]any
	ops int
	// limit stops the writer after this many operations (0: no limit).
	limit int
	stop  chan struct{}
	done  chan error
}

// startWriter remembers the seeded _ids and starts writing.
func (h *harness) startWriter(ctx context.Context, pause time.Duration) *writer {
	return h.startWriterN(ctx, pause, 0)
}

// startWriterN is startWriter stopping by itself after limit operations.
func (h *harness) startWriterN(ctx context.Context, pause time.Duration, limit int) *writer {
	h.t.Helper()
	w := &writer{h: h, limit: limit, stop: make(chan struct{}), done: make(chan error, 1)}
	for i := range collNames {
		cur, err := h.coll(i).Find(ctx, bson.D{})
		if err != nil {
			h.t.Fatal(err)
		}
		for cur.Next(ctx) {
			w.ids[i] = append(w.ids[i], cur.Current.Lookup("_id"))
		}
		_ = cur.Close(ctx)
	}
	go func() { w.done <- w.run(ctx, pause) }()
	return w
}

func (w *writer) run(ctx context.Context, pause time.Duration) error {
	r := rand.New(rand.NewPCG(3, 4))
	for {
		select {
		case <-w.stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		i := r.IntN(3)
		c := w.h.coll(i)
		ids := w.ids[i]
		var err error
		switch op := r.IntN(10); {
		case op < 3 || len(ids) == 0:
			d := w.h.newDoc(i, r)
			_, err = c.InsertOne(ctx, d)
			w.ids[i] = append(w.ids[i], d[0].Value)
		case op < 8:
			id := ids[r.IntN(len(ids))]
			upd := bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "updated"}}}, {Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}
			if i == 0 {
				upd = append(upd, bson.E{Key: "$push", Value: bson.D{{Key: "tags", Value: "new"}}})
			}
			_, err = c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, upd)
		default:
			k := r.IntN(len(ids))
			_, err = c.DeleteOne(ctx, bson.D{{Key: "_id", Value: ids[k]}})
			ids[k] = ids[len(ids)-1]
			w.ids[i] = ids[:len(ids)-1]
		}
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.ops++
		full := w.limit > 0 && w.ops >= w.limit
		w.mu.Unlock()
		if full {
			return nil
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

// finish stops the writer (or waits for its limit) and returns the
// operations it made.
func (w *writer) finish(t testing.TB) int {
	t.Helper()
	if w.limit == 0 {
		close(w.stop)
	}
	if err := <-w.done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	return w.ops
}

// pipelineConfig is a full config for the harness's collections.
func (h *harness) pipelineConfig(natsURL string, extra string) *config.Config {
	h.t.Helper()
	y := "source:\n  uri: " + h.env.URI + "\n" + extra +
		"buffer:\n  nats_url: " + natsURL + "\n  heartbeat_interval: 200ms\n" +
		"target:\n  url: " + h.pgURL + "\n  max_conns: 12\n" +
		"apply:\n  batch_wait: 20ms\n" +
		strings.ReplaceAll(h.yaml, "SCHEMA.", "app.")
	cfg, err := config.Parse([]byte(y), "test.yaml")
	if err != nil {
		h.t.Fatal(err)
	}
	return cfg
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// TestInitialSnapshotWithConcurrentWrites is "done means" 1: a snapshot of
// 200,000 documents over three collections while inserts, updates and
// deletes run the whole time, streamed through capture, JetStream and the
// sink concurrently with the copy, ends equal to MongoDB.
func TestInitialSnapshotWithConcurrentWrites(t *testing.T) {
	perColl := 66_667
	if testing.Short() {
		perColl = 5000
	}
	h := newHarness(t)
	seedStart := time.Now()
	h.seed(perColl)
	t.Logf("seeded %d documents in %v", 3*perColl, time.Since(seedStart))
	nats := testenv.NATS(t)
	cfg := h.pipelineConfig(nats.URL, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	w := h.startWriter(ctx, 0)
	log := testLogger(t)
	co := snapshot.NewCoordinator(snapshot.Deps{Source: h.env.Client, Target: h.pool, Mappings: h.maps, Logger: log},
		snapshot.Config{ChunkSize: 5000, Parallelism: 4})
	pctx, stopPipeline := context.WithCancel(ctx)
	pipeDone := make(chan error, 1)
	go func() {
		pipeDone <- replicator.Run(pctx, cfg, replicator.Options{Capture: true, Apply: true, DisableHTTP: true,
			Logger: log, OnFirstStart: co.OnFirstStart})
	}()
	start := time.Now()
	coDone := make(chan error, 1)
	go func() { coDone <- co.Run(pctx) }()
	h.waitRunsDone(ctx, len(collNames), coDone)
	elapsed := time.Since(start)
	ops := w.finish(t)
	t.Logf("snapshot of %d documents in %v (%.0f docs/s) with %d concurrent writes", 3*perColl, elapsed,
		float64(3*perColl)/elapsed.Seconds(), ops)
	if ops == 0 {
		t.Fatal("no writes ran during the snapshot")
	}
	start = time.Now()
	h.waitCaughtUp(ctx, time.Minute)
	t.Logf("streaming caught up %v after the snapshot", time.Since(start))
	start = time.Now()
	h.waitEqual(ctx, time.Minute)
	t.Logf("compared in %v", time.Since(start))
	stopPipeline()
	if err := <-pipeDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("pipeline: %v", err)
	}
	if err := <-coDone; err != nil {
		t.Fatalf("coordinator: %v", err)
	}
}

// waitRunsDone waits until n runs are recorded and all are done, failing
// if errs delivers an error first.
func (h *harness) waitRunsDone(ctx context.Context, n int, errs <-chan error) {
	h.t.Helper()
	for {
		var runs, done int
		if err := h.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'done') FROM replicator.snapshot_runs
 WHERE state <> 'superseded'`).Scan(&runs, &done); err != nil {
			h.t.Fatal(err)
		}
		if runs >= n && done == runs {
			return
		}
		select {
		case err := <-errs:
			h.t.Fatalf("stopped before the runs were done: %v", err)
		case <-ctx.Done():
			h.t.Fatalf("runs not done: %d of %d", done, runs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
