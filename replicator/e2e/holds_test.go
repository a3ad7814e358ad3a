package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/transform"
)

// TestHeldCollectionRecovers is issue-level proof that the recovery capture
// names for a held collection works: the scheduler runs collection is
// dropped (or, under on_error: halt, receives a document its mapping
// cannot transform); capture holds only that collection while the others
// stay equal to MongoDB; the command the hold names, `replicator resync
// --collection` run as the real binary while the pipeline streams,
// releases it and brings it back to equal; and after a restart of the
// pipeline new events of every collection are applied.
func TestHeldCollectionRecovers(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name  string
		halt  bool
		cause func(t *testing.T, ctx context.Context, h *harness)
		// fix repairs the source before the resync, if the cause needs it.
		fix func(t *testing.T, ctx context.Context, h *harness)
	}{
		{name: "drop", cause: func(t *testing.T, ctx context.Context, h *harness) {
			db, coll, _ := strings.Cut(h.ns.Runs, ".")
			if err := h.mongo.Client.Database(db).Collection(coll).Drop(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "on_error: halt", halt: true, cause: func(t *testing.T, ctx context.Context, h *harness) {
			db, coll, _ := strings.Cut(h.ns.Runs, ".")
			// tenantId is required: the mapping cannot transform this.
			if _, err := h.mongo.Client.Database(db).Collection(coll).InsertOne(ctx,
				bson.D{{Key: "_id", Value: "held-run"}, {Key: "state", Value: "queued"}}); err != nil {
				t.Fatal(err)
			}
		}, fix: func(t *testing.T, ctx context.Context, h *harness) {
			db, coll, _ := strings.Cut(h.ns.Runs, ".")
			if _, err := h.mongo.Client.Database(db).Collection(coll).UpdateOne(ctx, bson.D{{Key: "_id", Value: "held-run"}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "tenantId", Value: poisonTenant}}}}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if tc.halt {
				for i := range h.cfg.Collections {
					if h.cfg.Collections[i].Source == h.ns.Runs {
						h.cfg.Collections[i].OnError = transform.OnErrorHalt
					}
				}
				var err error
				if h.mappings, err = h.cfg.Mappings(); err != nil {
					t.Fatal(err)
				}
			}
			cfgPath := filepath.Join(t.TempDir(), "replicator.yaml")
			if err := os.WriteFile(cfgPath, []byte(workload.ConfigYAML(workload.ConfigParams{
				Namespaces: h.ns, SourceURI: h.mongo.URI, TargetURL: h.pgURL, NatsURL: h.nats.URL,
				DataDir: t.TempDir(), LogLevel: "warn"})), 0o644); err != nil {
				t.Fatal(err)
			}

			h.start()
			buf, _ := h.openBuffer()
			waitStarted(t, ctx, buf)
			if err := h.generator(71, workload.Options{}).Run(ctx, 0, 800); err != nil {
				t.Fatal(err)
			}
			h.waitEqual(time.Minute)

			tc.cause(t, ctx, h)
			// The workload goes on in every collection (it recreates a
			// dropped one): the held collection's events are read past.
			if err := h.generator(72, workload.Options{InitialDocs: 1}).Run(ctx, 0, 800); err != nil {
				t.Fatal(err)
			}
			othersEqual(t, ctx, h)
			hold, _, err := buf.Holds().Get(ctx, capture.DefaultSource, h.ns.Runs)
			if err != nil {
				t.Fatalf("hold of %s: %v", h.ns.Runs, err)
			}
			want := "replicator resync --collection " + h.ns.Runs
			if !strings.Contains(hold.Recovery, want) {
				t.Fatalf("hold recovery %q does not name %q", hold.Recovery, want)
			}
			if held := gauges(t, h.reg, "replicator_capture_collection_held"); held["collection="+h.ns.Runs] != 1 {
				t.Fatalf("replicator_capture_collection_held = %v, want 1 for %s", held, h.ns.Runs)
			}
			if tc.fix != nil {
				tc.fix(t, ctx, h)
			}

			out, err := exec.CommandContext(ctx, bin, "resync", "--collection", h.ns.Runs, "--config", cfgPath, "--progress", "log").CombinedOutput()
			if err != nil {
				t.Fatalf("replicator resync: %v\n%s", err, out)
			}
			r := h.waitEqual(time.Minute)
			t.Logf("after the resync: %s", totalRows(r))
			if held := gauges(t, h.reg, "replicator_capture_collection_held"); held["collection="+h.ns.Runs] != 0 {
				t.Fatalf("replicator_capture_collection_held = %v after the resync, want 0", held)
			}

			// A restart streams on, the held collection included.
			if err := h.stop(); err != nil {
				t.Fatalf("pipeline: %v", err)
			}
			h.start()
			if err := h.generator(73, workload.Options{InitialDocs: 1}).Run(ctx, 0, 600); err != nil {
				t.Fatal(err)
			}
			h.waitEqual(time.Minute)
			waitNoHold(t, ctx, buf, h.ns.Runs)
			if n := deadLetters(t, h.pool); n != 0 {
				t.Fatalf("%d dead letters", n)
			}
		})
	}
}

// othersEqual waits until every table but the runs collection's equals
// MongoDB, with the pipeline running.
func othersEqual(t *testing.T, ctx context.Context, h *harness) {
	t.Helper()
	var others []*transform.Mapping
	for _, m := range h.mappings {
		if m.Namespace() != h.ns.Runs {
			others = append(others, m)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if err := h.failed(); err != nil {
			t.Fatalf("pipeline stopped: %v", err)
		}
		r, err := workload.Compare(ctx, h.mongo.Client, h.pool, others)
		if err != nil {
			t.Fatal(err)
		}
		if r.Equal() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("other collections not equal while %s is held:\n%s", h.ns.Runs, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitNoHold waits until capture has forgotten the released hold of ns.
func waitNoHold(t *testing.T, ctx context.Context, buf *buffer.Buffer, ns string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, err := buf.Holds().Get(ctx, capture.DefaultSource, ns)
		if err == buffer.ErrNoHold {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hold of %s still stored: %v", ns, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStarted waits until capture has saved its first position: events
// written from then on are captured (this harness takes no snapshot).
func waitStarted(t *testing.T, ctx context.Context, buf *buffer.Buffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := buf.Positions().Load(ctx, capture.DefaultSource); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("capture saved no position within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
