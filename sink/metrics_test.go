package sink

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestMetricsLint(t *testing.T) {
	m := newMetrics([]string{testNS})
	m.events.WithLabelValues(testNS, "insert").Inc()
	m.batchSize.WithLabelValues(testNS).Observe(10)
	m.duration.WithLabelValues(testNS).Observe(0.01)
	m.retries.WithLabelValues(testNS, "connection").Inc()
	m.deadLetters.WithLabelValues(testNS, reasonConstraint).Inc()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	for _, name := range []string{
		"replicator_apply_events_total", "replicator_apply_lag_seconds", "replicator_apply_batch_size",
		"replicator_apply_duration_seconds", "replicator_apply_retries_total", "replicator_dead_letters_total",
		"replicator_apply_checkpoint_age_seconds", "replicator_buffer_pending_messages",
		"replicator_apply_gaps_total", "replicator_apply_tombstones_removed_total",
	} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
			t.Errorf("metric %s: %d series, %v", name, n, err)
		}
	}
}

func TestLagGrowsWhileStuck(t *testing.T) {
	m := newMetrics([]string{testNS})
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	m.clocks[testNS].source.Store(time.Unix(990, 0).UnixNano())
	m.clocks[testNS].commit.Store(time.Unix(995, 0).UnixNano())
	want := `
# HELP replicator_apply_lag_seconds Now minus the source time of the last applied event or heartbeat.
# TYPE replicator_apply_lag_seconds gauge
replicator_apply_lag_seconds{collection="shop.items"} 10
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "replicator_apply_lag_seconds"); err != nil {
		t.Error(err)
	}
	now = now.Add(30 * time.Second) // nothing applied meanwhile
	want = strings.Replace(want, "} 10", "} 40", 1)
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "replicator_apply_lag_seconds"); err != nil {
		t.Error(err)
	}
}
