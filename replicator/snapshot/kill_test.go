package snapshot_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator"
)

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// replicatorBinary builds cmd/replicator once per test process.
func replicatorBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "replicator-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		buildOnce.path = filepath.Join(dir, "replicator")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, "./cmd/replicator")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = errors.New(err.Error() + ": " + string(out))
		}
	})
	if buildOnce.err != nil {
		t.Fatalf("build replicator: %v", buildOnce.err)
	}
	return buildOnce.path
}

// chunkState maps "run/chunk" of every done chunk to its finished_at.
func (h *harness) chunkState(ctx context.Context) (done map[string]time.Time, total, runs int) {
	h.t.Helper()
	done = map[string]time.Time{}
	rows, err := h.pool.Query(ctx, `SELECT run_id::text || '/' || chunk, finished_at FROM replicator.snapshot_chunks WHERE state = 'done'`)
	if err != nil {
		h.t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var at time.Time
		if err := rows.Scan(&k, &at); err != nil {
			h.t.Fatal(err)
		}
		done[k] = at
	}
	rows.Close()
	if err := h.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM replicator.snapshot_chunks), (SELECT count(*) FROM replicator.snapshot_runs)`).Scan(&total, &runs); err != nil {
		h.t.Fatal(err)
	}
	return done, total, runs
}

// TestSnapshotSurvivesSIGKILL is "done means" 2: `replicator snapshot` is
// killed with SIGKILL three times while it copies (and writes and
// streaming go on); each restart resumes the same runs, no chunk that was
// done is copied again (its checkpoint row keeps its finish time), and
// PostgreSQL ends equal to MongoDB.
func TestSnapshotSurvivesSIGKILL(t *testing.T) {
	perColl := 15_000
	if testing.Short() {
		perColl = 8000
	}
	bin := replicatorBinary(t)
	h := newHarness(t)
	h.seed(perColl)
	nats := testenv.NATS(t)
	cfg := h.pipelineConfig(nats.URL, "")
	cfgFile := filepath.Join(t.TempDir(), "replicator.yaml")
	y := "source:\n  uri: " + h.env.URI + "\nbuffer:\n  nats_url: " + nats.URL + "\ntarget:\n  url: " + h.pgURL +
		"\nsnapshot:\n  parallelism: 2\n  chunk_size: 1000\n" + strings.ReplaceAll(h.yaml, "SCHEMA.", "app.")
	if err := os.WriteFile(cfgFile, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Streaming runs the whole time, from before the snapshot's T0.
	pctx, stopPipeline := context.WithCancel(ctx)
	pipeDone := make(chan error, 1)
	go func() {
		pipeDone <- replicator.Run(pctx, cfg, replicator.Options{Capture: true, Apply: true, DisableHTTP: true, Logger: testLogger(t)})
	}()
	time.Sleep(500 * time.Millisecond) // capture records its start position
	w := h.startWriter(ctx, time.Millisecond)

	var before map[string]time.Time
	for kill := 0; kill <= 3; kill++ {
		var out strings.Builder
		cmd := exec.CommandContext(ctx, bin, "snapshot", "--config", cfgFile, "--progress", "log")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if kill < 3 {
			// Let a few more chunks commit, then kill mid-copy.
			base := len(before)
			for {
				done, total, _ := h.chunkState(ctx)
				if len(done) >= base+4 && len(done) < total {
					break
				}
				if len(done) == total && total > 0 {
					t.Fatalf("snapshot finished before kill %d; make it bigger", kill+1)
				}
				select {
				case err := <-exited:
					t.Fatalf("snapshot exited before kill %d: %v\n%s", kill+1, err, out.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			if err := <-exited; err == nil {
				t.Fatalf("kill %d: snapshot exited cleanly", kill+1)
			}
		} else if err := <-exited; err != nil {
			t.Fatalf("final snapshot: %v\n%s", err, out.String())
		}
		done, total, runs := h.chunkState(ctx)
		for k, at := range before {
			if now, ok := done[k]; !ok || !now.Equal(at) {
				t.Fatalf("after kill %d: chunk %s was done at %v, now %v (copied twice or lost)", kill, k, at, now)
			}
		}
		if runs != len(collNames) {
			t.Fatalf("after kill %d: %d runs recorded, want %d (a restart planned again instead of resuming)", kill, runs, len(collNames))
		}
		t.Logf("after start %d: %d of %d chunks done", kill+1, len(done), total)
		before = done
	}
	if done, total, _ := h.chunkState(ctx); len(done) != total {
		t.Fatalf("%d of %d chunks done", len(done), total)
	}
	var unfinished int
	if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM replicator.snapshot_runs WHERE state <> 'done'`).Scan(&unfinished); err != nil {
		t.Fatal(err)
	}
	if unfinished != 0 {
		t.Fatalf("%d runs not done", unfinished)
	}
	ops := w.finish(t)
	t.Logf("%d concurrent writes", ops)
	h.waitEqual(ctx, time.Minute)
	stopPipeline()
	if err := <-pipeDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("pipeline: %v", err)
	}
}
