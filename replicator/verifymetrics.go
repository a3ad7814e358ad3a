package replicator

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/replicator/verify"
	"github.com/mongopg/replicator/transform"
)

// Results of a verification pass (replicator_verify_passes_total).
const (
	passEqual     = "equal"
	passDifferent = "different"
	passError     = "error"
)

// Reasons a document is left out of the comparison
// (replicator_verify_documents_unverified).
const (
	unverifiedDeadLettered   = "dead_lettered"
	unverifiedTransformError = "transform_error"
	unverifiedInFlight       = "in_flight"
)

// verifyMetrics are continuous verification's metrics. Labels are
// bounded: the verified collections, their mapped tables, and fixed sets
// of results, kinds and reasons. The gauges describe the last complete
// pass of each collection and are absent until one has completed; the
// counters start at zero for every label set, so increase() sees the first
// pass.
type verifyMetrics struct {
	passes      *prometheus.CounterVec
	documents   *prometheus.CounterVec
	rows        *prometheus.CounterVec
	differences *prometheus.GaugeVec
	unverified  *prometheus.GaugeVec
	lastPass    *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
	equal       *prometheus.GaugeVec
}

// newVerifyMetrics creates the metrics of the collections of mappings and
// registers them with reg (nil: not registered).
func newVerifyMetrics(reg prometheus.Registerer, mappings []*transform.Mapping) (*verifyMetrics, error) {
	m := &verifyMetrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_verify_passes_total",
			Help: "Verification passes of a collection by continuous verification, by result: equal, different (differing rows, or documents left out), error (the comparison could not be made).",
		}, []string{"collection", "result"}),
		documents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_verify_documents_checked_total",
			Help: "Documents continuous verification read from MongoDB, counted as they are read (at most verify.rate per second).",
		}, []string{"collection"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_verify_rows_checked_total",
			Help: "Expected rows (those the mapping writes for the documents read) compared with PostgreSQL by complete verification passes.",
		}, []string{"collection", "table"}),
		differences: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_verify_differences",
			Help: "Rows the last complete verification pass found missing in PostgreSQL, extra in PostgreSQL, or different, by table and kind.",
		}, []string{"collection", "table", "kind"}),
		unverified: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_verify_documents_unverified",
			Help: "Documents (root keys) the last complete verification pass left out of the comparison: with an unresolved dead letter, failing to transform without one, or changing around their read in every re-check (in_flight).",
		}, []string{"collection", "reason"}),
		lastPass: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_verify_last_pass_timestamp_seconds",
			Help: "Unix time the last complete verification pass of the collection ended.",
		}, []string{"collection"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_verify_last_pass_duration_seconds",
			Help: "How long the last complete verification pass of the collection took.",
		}, []string{"collection"}),
		equal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_verify_equal",
			Help: "1 when the last complete verification pass found the collection equal (every table equal, no document left out), 0 otherwise.",
		}, []string{"collection"}),
	}
	for _, mp := range mappings {
		ns := mp.Namespace()
		for _, r := range []string{passEqual, passDifferent, passError} {
			m.passes.WithLabelValues(ns, r)
		}
		m.documents.WithLabelValues(ns)
		for _, t := range mp.Tables() {
			m.rows.WithLabelValues(ns, t.Name)
		}
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.passes, m.documents, m.rows, m.differences, m.unverified, m.lastPass, m.duration, m.equal} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// progress returns a verify.Config.Progress for one pass of collection
// ns: it counts the documents read since its last call. It may be called
// from several goroutines; a count below the last one adds nothing.
func (m *verifyMetrics) progress(ns string) func(collection string, documents int64, done bool) {
	var (
		mu   sync.Mutex
		seen int64
	)
	c := m.documents.WithLabelValues(ns)
	return func(_ string, documents int64, _ bool) {
		mu.Lock()
		defer mu.Unlock()
		if documents > seen {
			c.Add(float64(documents - seen))
			seen = documents
		}
	}
}

// failed counts a pass that could not be completed; the gauges keep the
// last complete pass.
func (m *verifyMetrics) failed(ns string) {
	m.passes.WithLabelValues(ns, passError).Inc()
}

// passed records a complete pass of collection ns that ended at end and
// took took.
func (m *verifyMetrics) passed(ns string, rep verify.Report, end time.Time, took time.Duration) {
	result, equal := passDifferent, 0.0
	if rep.Equal {
		result, equal = passEqual, 1
	}
	m.passes.WithLabelValues(ns, result).Inc()
	for _, t := range rep.Tables {
		m.rows.WithLabelValues(ns, t.Table).Add(float64(t.ExpectedRows))
		d := t.Differences
		m.differences.WithLabelValues(ns, t.Table, verify.Missing).Set(float64(d.Missing))
		m.differences.WithLabelValues(ns, t.Table, verify.Extra).Set(float64(d.Extra))
		m.differences.WithLabelValues(ns, t.Table, verify.Different).Set(float64(d.Different))
	}
	m.unverified.WithLabelValues(ns, unverifiedDeadLettered).Set(float64(rep.DeadLettered.Count))
	m.unverified.WithLabelValues(ns, unverifiedTransformError).Set(float64(rep.TransformErrors.Count))
	m.unverified.WithLabelValues(ns, unverifiedInFlight).Set(float64(rep.InFlight.Count))
	m.lastPass.WithLabelValues(ns).Set(float64(end.UnixNano()) / 1e9)
	m.duration.WithLabelValues(ns).Set(took.Seconds())
	m.equal.WithLabelValues(ns).Set(equal)
}
