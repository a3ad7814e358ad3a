package snapshot_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/snapshot"
)

// stream runs capture and apply (with the initial-snapshot coordinator)
// until stopped.
type stream struct {
	cancel context.CancelFunc
	done   chan error
	coDone chan error
}

func (h *harness) startStream(ctx context.Context, cfg *config.Config) *stream {
	pctx, cancel := context.WithCancel(ctx)
	s := &stream{cancel: cancel, done: make(chan error, 1), coDone: make(chan error, 1)}
	log := testLogger(h.t)
	co := snapshot.NewCoordinator(snapshot.Deps{Source: h.env.Client, Target: h.pool, Mappings: h.maps, Logger: log},
		snapshot.Config{ChunkSize: 2000})
	go func() { s.coDone <- co.Run(pctx) }()
	go func() {
		s.done <- replicator.Run(pctx, cfg, replicator.Options{Capture: true, Apply: true, DisableHTTP: true, Logger: log,
			OnFirstStart: co.OnFirstStart})
	}()
	return s
}

// stop stops the stream and returns the pipeline's error (nil on a clean
// stop).
func (s *stream) stop() error {
	s.cancel()
	err := <-s.done
	<-s.coDone
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (h *harness) writeConfigFile(natsURL string) string {
	h.t.Helper()
	f := filepath.Join(h.t.TempDir(), "replicator.yaml")
	y := "source:\n  uri: " + h.env.URI + "\nbuffer:\n  nats_url: " + natsURL + "\ntarget:\n  url: " + h.pgURL +
		"\nsnapshot:\n  chunk_size: 2000\n" + strings.ReplaceAll(h.yaml, "SCHEMA.", "app.")
	if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return f
}

func runBinary(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, replicatorBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("replicator %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestHistoryLost is "done means" 3: with a small oplog the capture
// position falls off while the replicator is stopped; the pipeline stops
// with an error naming `replicator resync --all`; recovery brings
// PostgreSQL back to equal and streaming resumes from the resync's T0.
// Recovery is either the command, or the on_history_lost: resync policy
// (Coordinator.OnHistoryLost then ResetCapture, called here the way
// capture calls them).
func TestHistoryLost(t *testing.T) {
	tests := []struct {
		name    string
		recover func(t *testing.T, ctx context.Context, h *harness, cfg *config.Config, cfgFile string, cause error)
	}{
		{"resync --all", func(t *testing.T, ctx context.Context, h *harness, _ *config.Config, cfgFile string, _ error) {
			runBinary(t, ctx, "resync", "--all", "--config", cfgFile, "--progress", "log")
		}},
		{"on_history_lost: resync", func(t *testing.T, ctx context.Context, h *harness, cfg *config.Config, _ string, cause error) {
			reg := prometheus.NewRegistry()
			co := snapshot.NewCoordinator(snapshot.Deps{Source: h.env.Client, Target: h.pool, Mappings: h.maps,
				Metrics: snapshot.NewMetrics(reg), Logger: testLogger(t)}, snapshot.Config{ChunkSize: 2000})
			t0, err := co.OnHistoryLost(ctx, cause)
			if err != nil {
				t.Fatal(err)
			}
			buf, err := buffer.Open(ctx, cfg.ForBuffer(), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			var nss []string
			for _, m := range h.maps {
				nss = append(nss, m.Namespace())
			}
			err = capture.ResetCapture(ctx, buf, h.pool, cfg.ForCapture().Source, nss, t0)
			buf.Close()
			if err != nil {
				t.Fatal(err)
			}
			rctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- co.Run(rctx) }()
			h.waitRunsDone(ctx, len(collNames), done)
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := counter(t, reg, "replicator_snapshot_history_lost_resyncs_total"); n != 1 {
				t.Fatalf("history-lost resyncs counted %v, want 1", n)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, mongotest.Options{OplogMaxEvents: 2000})
			h.env.RequireEmulator("a 2000-entry oplog")
			h.seed(3000)
			nats := testenv.NATS(t)
			cfg := h.pipelineConfig(nats.URL, "")
			cfgFile := h.writeConfigFile(nats.URL)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()

			s := h.startStream(ctx, cfg)
			h.waitRunsDone(ctx, len(collNames), s.done)
			h.waitEqual(ctx, time.Minute)
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}

			// While stopped, more changes than the oplog holds, deletes included.
			h.startWriterN(ctx, 0, 5000).finish(t)

			s = h.startStream(ctx, cfg)
			var err error
			select {
			case err = <-s.done:
			case <-time.After(time.Minute):
				t.Fatal("the pipeline did not stop on lost history")
			}
			s.cancel()
			<-s.coDone
			var stop *capture.StopError
			if !errors.As(err, &stop) || !strings.Contains(err.Error(), "replicator resync --all") {
				t.Fatalf("pipeline error %v; want a capture stop naming replicator resync --all", err)
			}

			tc.recover(t, ctx, h, cfg, cfgFile, err)

			s = h.startStream(ctx, cfg)
			h.startWriterN(ctx, 0, 1000).finish(t)
			h.waitEqual(ctx, time.Minute)
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
			var swept int64
			if err := h.pool.QueryRow(ctx, `SELECT coalesce(sum(swept), 0) FROM replicator.snapshot_runs WHERE kind = 'resync' AND state = 'done'`).Scan(&swept); err != nil {
				t.Fatal(err)
			}
			t.Logf("the resync removed %d rows of documents deleted in the lost window", swept)
			if swept == 0 {
				t.Fatal("the resync swept nothing; the lost window's deletes were not recovered")
			}
		})
	}
}

// counter reads a label-less counter from reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestResyncCollectionSweepsWhileOthersStream is "done means" 4: rows whose
// documents are gone from MongoDB without the stream having seen it (here:
// rows that never had a document) are removed, with their child rows, by
// `resync --collection`, while the other collections keep streaming with
// low apply lag.
func TestResyncCollectionSweepsWhileOthersStream(t *testing.T) {
	h := newHarness(t)
	h.seed(8000)
	nats := testenv.NATS(t)
	cfg := h.pipelineConfig(nats.URL, "")
	cfgFile := h.writeConfigFile(nats.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	s := h.startStream(ctx, cfg)
	h.waitRunsDone(ctx, len(collNames), s.done)
	h.waitEqual(ctx, time.Minute)

	// Rows of documents deleted unseen: old versions, children included.
	if _, err := h.pool.Exec(ctx, `
INSERT INTO app.alpha (id, n, name, doc, _cdc_ts, _cdc_inc, _cdc_seq)
SELECT 'gone-' || g, g, 'orphan', '{}', 1, 1, 1 FROM generate_series(1, 500) g;
INSERT INTO app.alpha_tags (id, ordinal, tag) SELECT 'gone-' || g, 0, 'orphan' FROM generate_series(1, 500) g`); err != nil {
		t.Fatal(err)
	}
	w := h.startWriter(ctx, 2*time.Millisecond)
	lag := make(chan time.Duration, 1)
	lagCtx, stopLag := context.WithCancel(ctx)
	go func() { lag <- h.maxApplyLag(lagCtx, []string{h.db + ".beta", h.db + ".gamma"}) }()
	start := time.Now()
	runBinary(t, ctx, "resync", "--collection", h.db+".alpha", "--config", cfgFile, "--progress", "log")
	resyncTime := time.Since(start)
	stopLag()
	maxLag := <-lag
	t.Logf("resync --collection took %v; other collections' apply lag peaked at %v", resyncTime, maxLag)
	if maxLag > 3*time.Second {
		t.Fatalf("apply lag of the other collections reached %v during the resync", maxLag)
	}
	var orphans, orphanTags int
	if err := h.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM app.alpha WHERE id LIKE 'gone-%'), (SELECT count(*) FROM app.alpha_tags WHERE id LIKE 'gone-%')`).Scan(&orphans, &orphanTags); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 || orphanTags != 0 {
		t.Fatalf("after resync: %d orphan rows and %d orphan child rows remain", orphans, orphanTags)
	}
	w.finish(t)
	h.waitEqual(ctx, time.Minute)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}

// maxApplyLag polls the apply checkpoints of namespaces until ctx ends and
// returns the largest lag seen: wall time minus the source time applied.
func (h *harness) maxApplyLag(ctx context.Context, namespaces []string) time.Duration {
	var worst time.Duration
	for ctx.Err() == nil {
		var secs float64
		err := h.pool.QueryRow(ctx, `SELECT coalesce(max(extract(epoch FROM clock_timestamp() - source_wall_time)), 0)
  FROM replicator.apply_checkpoints WHERE collection = ANY($1)`, namespaces).Scan(&secs)
		if err == nil {
			worst = max(worst, time.Duration(secs*float64(time.Second)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return worst
}
