package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/transform"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// harness is one pipeline under test with its servers.
type harness struct {
	t        testing.TB
	mongo    *mongotest.Env
	ns       workload.Namespaces
	nats     *testenv.NATSServer
	pgURL    string
	pool     *pgxpool.Pool
	cfg      *config.Config
	mappings []*transform.Mapping

	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

type harnessOptions struct {
	// pgURL is the target database (default: a fresh one on the shared server).
	pgURL string
	// ns: default two databases (a cluster-scoped change stream).
	ns *workload.Namespaces
	// mongo configures the emulator (a real server ignores it).
	mongo mongotest.Options
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, mongo: mongotest.New(t, o.mongo), nats: testenv.NATS(t), pgURL: o.pgURL}
	if h.pgURL == "" {
		h.pgURL = testenv.PostgresURL(t)
	}
	if o.ns != nil {
		h.ns = *o.ns
	} else {
		a, b := h.mongo.Database("e2ea"), h.mongo.Database("e2eb")
		h.ns = workload.Namespaces{Advisories: a + ".advisories", Statements: b + ".statements", Runs: b + ".runs"}
	}
	h.configure()
	return h
}

// configure opens the target pool and writes the replicator's config for
// the harness's servers and namespaces; the pipeline stops at cleanup.
func (h *harness) configure() {
	t := h.t
	t.Helper()
	h.pool = testenv.Pool(t, h.pgURL)
	yaml := workload.ConfigYAML(workload.ConfigParams{
		Namespaces: h.ns, SourceURI: h.mongo.URI, TargetURL: h.pgURL, NatsURL: h.nats.URL,
		DataDir: t.TempDir(), LogLevel: "warn",
		BufferExtra: []string{"heartbeat_interval: 500ms"},
	})
	cfg, err := config.Parse([]byte(yaml), "e2e.yaml")
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	h.cfg = cfg
	if h.mappings, err = cfg.Mappings(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.stop() })
}

// start runs capture and apply in this process.
func (h *harness) start() {
	h.t.Helper()
	if h.done != nil {
		h.t.Fatal("pipeline already running")
	}
	h.launch(replicator.Options{Capture: true, Apply: true})
}

// launch runs the pipeline with opts in this process, logging warnings to
// stderr and its metrics in a fresh h.reg.
func (h *harness) launch(opts replicator.Options) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	h.reg = prometheus.NewRegistry()
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts.Registerer, opts.Gatherer, opts.DisableHTTP = h.reg, h.reg, true
	go func() { h.done <- replicator.Run(ctx, h.cfg, opts) }()
}

// stop stops the pipeline and returns its error.
func (h *harness) stop() error {
	if h.done == nil {
		return nil
	}
	h.cancel()
	var err error
	select {
	case err = <-h.done:
	case <-time.After(60 * time.Second):
		err = errors.New("pipeline did not stop within 60s")
	}
	h.done = nil
	return err
}

// failed returns the pipeline's error if it stopped on its own.
func (h *harness) failed() error {
	select {
	case err := <-h.done:
		h.done = nil
		if err == nil {
			err = errors.New("pipeline stopped by itself")
		}
		return err
	default:
		return nil
	}
}

func (h *harness) generator(seed uint64, opts workload.Options) *workload.Generator {
	opts.Seed = seed
	return workload.New(h.mongo.Client, h.ns, opts)
}

// waitEqual polls until PostgreSQL equals MongoDB's state or the timeout.
func (h *harness) waitEqual(timeout time.Duration) workload.Report {
	h.t.Helper()
	return waitEqual(h.t, h.mongo, h.pool, h.mappings, timeout, h.failed)
}

func waitEqual(t testing.TB, env *mongotest.Env, pool *pgxpool.Pool, mappings []*transform.Mapping, timeout time.Duration, failed func() error) workload.Report {
	t.Helper()
	r, ok := tryEqual(t, env, pool, mappings, timeout, failed)
	if !ok {
		t.Fatalf("PostgreSQL does not equal MongoDB after %s:\n%s", timeout, r)
	}
	return r
}

// tryEqual polls until PostgreSQL equals MongoDB's state (true) or the
// timeout (false, with the last report).
func tryEqual(t testing.TB, env *mongotest.Env, pool *pgxpool.Pool, mappings []*transform.Mapping, timeout time.Duration, failed func() error) (workload.Report, bool) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var last workload.Report
	for {
		if failed != nil {
			if err := failed(); err != nil {
				t.Fatalf("pipeline failed: %v", err)
			}
		}
		r, err := workload.Compare(ctx, env.Client, pool, mappings)
		if err == nil && r.Equal() {
			return r, true
		}
		if err == nil {
			last = r
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("compare: %v", err)
			}
			return last, false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// deadLetters counts the dead-letter table's rows.
func deadLetters(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM replicator.dead_letters").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// openBuffer opens the harness's buffer beside the pipeline (closed at the
// end of the test) and returns it with its stream.
func (h *harness) openBuffer() (*buffer.Buffer, jetstream.Stream) {
	h.t.Helper()
	ctx := context.Background()
	buf, err := buffer.Open(ctx, h.cfg.ForBuffer(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(buf.Close)
	stream, err := buf.JetStream().Stream(ctx, buf.Config().Stream)
	if err != nil {
		h.t.Fatal(err)
	}
	return buf, stream
}

// gauges returns every sample of the named gauge (or counter), by label
// values ("a=x,b=y", in label-name order).
func gauges(t testing.TB, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.Counter != nil {
				out[labels(m)] = m.GetCounter().GetValue()
				continue
			}
			out[labels(m)] = m.GetGauge().GetValue()
		}
	}
	return out
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func totalRows(r workload.Report) string {
	var parts []string
	for _, d := range r {
		parts = append(parts, fmt.Sprintf("%s=%d", d.Table, d.Actual))
	}
	return strings.Join(parts, " ")
}
