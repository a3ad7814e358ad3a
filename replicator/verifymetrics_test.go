package replicator

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/verify"
	"github.com/mongopg/replicator/transform"
)

// TestVerifyDefaultsAgree: the verify section's max_differences default is
// the verify command's.
func TestVerifyDefaultsAgree(t *testing.T) {
	if config.DefaultVerifyMaxDifferences != verify.DefaultMaxDifferences {
		t.Fatalf("config.DefaultVerifyMaxDifferences %d, verify.DefaultMaxDifferences %d", config.DefaultVerifyMaxDifferences, verify.DefaultMaxDifferences)
	}
}

func verifyTestMapping(t *testing.T) *transform.Mapping {
	t.Helper()
	cfg, err := config.Parse([]byte(`collections:
  - source: app.orders
    table: app.orders
    columns:
      id:    { path: _id,   type: text }
      total: { path: total, type: numeric }
    children:
      - path: lines
        table: app.order_lines
        parent_key: order_id
        columns:
          sku: { path: sku, type: text }
`), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := cfg.Mappings()
	if err != nil {
		t.Fatal(err)
	}
	return ms[0]
}

// TestVerifyMetrics: the counters exist at zero from the start, the gauges
// only once a pass has completed; a complete pass sets every gauge from
// its report, a failed one only counts itself; the documents counter
// follows the reads; promlint finds nothing.
func TestVerifyMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newVerifyMetrics(reg, []*transform.Mapping{verifyTestMapping(t)})
	if err != nil {
		t.Fatal(err)
	}
	const ns = "app.orders"
	const start = `
# HELP replicator_verify_passes_total Verification passes of a collection by continuous verification, by result: equal, different (differing rows, or documents left out), error (the comparison could not be made).
# TYPE replicator_verify_passes_total counter
replicator_verify_passes_total{collection="app.orders",result="different"} 0
replicator_verify_passes_total{collection="app.orders",result="equal"} 0
replicator_verify_passes_total{collection="app.orders",result="error"} 0
# HELP replicator_verify_rows_checked_total Expected rows (those the mapping writes for the documents read) compared with PostgreSQL by complete verification passes.
# TYPE replicator_verify_rows_checked_total counter
replicator_verify_rows_checked_total{collection="app.orders",table="app.order_lines"} 0
replicator_verify_rows_checked_total{collection="app.orders",table="app.orders"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(start), "replicator_verify_passes_total", "replicator_verify_rows_checked_total",
		"replicator_verify_equal", "replicator_verify_differences", "replicator_verify_last_pass_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}

	progress := m.progress(ns)
	for _, n := range []int64{40, 100, 90, 120} { // 90: a late call from another worker
		progress(ns, n, false)
	}
	m.failed(ns)
	end := time.Unix(1700000000, 500_000_000)
	m.passed(ns, verify.Report{Collection: ns, Equal: false, Documents: 120,
		DeadLettered: verify.DocumentList{Count: 2}, TransformErrors: verify.DocumentList{Count: 1},
		Tables: []verify.TableReport{
			{Table: "app.orders", ExpectedRows: 117, Differences: verify.Differences{Total: 4, Missing: 1, Extra: 2, Different: 1}},
			{Table: "app.order_lines", ExpectedRows: 300},
		}}, end, 1500*time.Millisecond)
	m.passed(ns, verify.Report{Collection: ns, Equal: true, Documents: 120,
		Tables: []verify.TableReport{{Table: "app.orders", ExpectedRows: 120}, {Table: "app.order_lines", ExpectedRows: 301}}},
		end.Add(time.Minute), 2*time.Second)

	const after = `
# HELP replicator_verify_documents_checked_total Documents continuous verification read from MongoDB, counted as they are read (at most verify.rate per second).
# TYPE replicator_verify_documents_checked_total counter
replicator_verify_documents_checked_total{collection="app.orders"} 120
# HELP replicator_verify_passes_total Verification passes of a collection by continuous verification, by result: equal, different (differing rows, or documents left out), error (the comparison could not be made).
# TYPE replicator_verify_passes_total counter
replicator_verify_passes_total{collection="app.orders",result="different"} 1
replicator_verify_passes_total{collection="app.orders",result="equal"} 1
replicator_verify_passes_total{collection="app.orders",result="error"} 1
# HELP replicator_verify_rows_checked_total Expected rows (those the mapping writes for the documents read) compared with PostgreSQL by complete verification passes.
# TYPE replicator_verify_rows_checked_total counter
replicator_verify_rows_checked_total{collection="app.orders",table="app.order_lines"} 601
replicator_verify_rows_checked_total{collection="app.orders",table="app.orders"} 237
# HELP replicator_verify_differences Rows the last complete verification pass found missing in PostgreSQL, extra in PostgreSQL, or different, by table and kind.
# TYPE replicator_verify_differences gauge
replicator_verify_differences{collection="app.orders",kind="different",table="app.order_lines"} 0
replicator_verify_differences{collection="app.orders",kind="different",table="app.orders"} 0
replicator_verify_differences{collection="app.orders",kind="extra",table="app.order_lines"} 0
replicator_verify_differences{collection="app.orders",kind="extra",table="app.orders"} 0
replicator_verify_differences{collection="app.orders",kind="missing",table="app.order_lines"} 0
replicator_verify_differences{collection="app.orders",kind="missing",table="app.orders"} 0
# HELP replicator_verify_documents_unverified Documents (root keys) the last complete verification pass left out of the comparison: with an unresolved dead letter, failing to transform without one, or changing around their read in every re-check (in_flight).
# TYPE replicator_verify_documents_unverified gauge
replicator_verify_documents_unverified{collection="app.orders",reason="dead_lettered"} 0
replicator_verify_documents_unverified{collection="app.orders",reason="in_flight"} 0
replicator_verify_documents_unverified{collection="app.orders",reason="transform_error"} 0
# HELP replicator_verify_equal 1 when the last complete verification pass found the collection equal (every table equal, no document left out), 0 otherwise.
# TYPE replicator_verify_equal gauge
replicator_verify_equal{collection="app.orders"} 1
# HELP replicator_verify_last_pass_timestamp_seconds Unix time the last complete verification pass of the collection ended.
# TYPE replicator_verify_last_pass_timestamp_seconds gauge
replicator_verify_last_pass_timestamp_seconds{collection="app.orders"} 1.7000000605e+09
# HELP replicator_verify_last_pass_duration_seconds How long the last complete verification pass of the collection took.
# TYPE replicator_verify_last_pass_duration_seconds gauge
replicator_verify_last_pass_duration_seconds{collection="app.orders"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(after)); err != nil {
		t.Fatal(err)
	}

	// The pass before: its differences were set, then replaced.
	reg2 := prometheus.NewRegistry()
	m2, err := newVerifyMetrics(reg2, []*transform.Mapping{verifyTestMapping(t)})
	if err != nil {
		t.Fatal(err)
	}
	m2.passed(ns, verify.Report{Collection: ns, DeadLettered: verify.DocumentList{Count: 2}, TransformErrors: verify.DocumentList{Count: 1},
		Tables: []verify.TableReport{{Table: "app.orders", Differences: verify.Differences{Total: 4, Missing: 1, Extra: 2, Different: 1}}}},
		end, time.Second)
	for labels, want := range map[[2]string]float64{
		{"app.orders", verify.Missing}: 1, {"app.orders", verify.Extra}: 2, {"app.orders", verify.Different}: 1,
	} {
		if got := testutil.ToFloat64(m2.differences.WithLabelValues(ns, labels[0], labels[1])); got != want {
			t.Errorf("differences %v = %v, want %v", labels, got, want)
		}
	}
	if got := testutil.ToFloat64(m2.unverified.WithLabelValues(ns, unverifiedDeadLettered)); got != 2 {
		t.Errorf("dead-lettered documents %v, want 2", got)
	}
	if got := testutil.ToFloat64(m2.unverified.WithLabelValues(ns, unverifiedTransformError)); got != 1 {
		t.Errorf("transform-error documents %v, want 1", got)
	}
	if got := testutil.ToFloat64(m2.equal.WithLabelValues(ns)); got != 0 {
		t.Errorf("equal %v after a pass with differences, want 0", got)
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
}
