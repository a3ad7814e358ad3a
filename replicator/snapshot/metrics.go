package snapshot

import (
	"github.com/prometheus/client_golang/prometheus"
)

// States reported by replicator_snapshot_state.
const (
	StatePlanning = "planning"
	StateCopying  = "copying"
	StateSweeping = "sweeping"
	StateDone     = "done"
	StateFailed   = "failed"
)

var allStates = []string{StatePlanning, StateCopying, StateSweeping, StateDone, StateFailed}

// Metrics are the snapshot and resync metrics. Labels are bounded: the
// configured collections and a fixed set of states.
type Metrics struct {
	documents     *prometheus.CounterVec
	remaining     *prometheus.GaugeVec
	state         *prometheus.GaugeVec
	chunks        *prometheus.CounterVec
	swept         *prometheus.CounterVec
	historyLost   prometheus.Counter
	recoveryFails prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		documents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_snapshot_documents_total",
			Help: "Documents copied by snapshots and resyncs (counted when their chunk commits).",
		}, []string{"collection"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_snapshot_documents_remaining",
			Help: "Documents the running snapshot or resync still has to copy (planned estimate).",
		}, []string{"collection"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_snapshot_state",
			Help: "1 for the state of each collection's latest snapshot or resync in this process, 0 for the others.",
		}, []string{"collection", "state"}),
		chunks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_snapshot_chunks_total",
			Help: "Chunks committed by snapshots and resyncs.",
		}, []string{"collection"}),
		swept: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_snapshot_swept_rows_total",
			Help: "Rows a resync removed because their documents no longer exist in the source.",
		}, []string{"collection"}),
		historyLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicator_snapshot_history_lost_resyncs_total",
			Help: "Automatic resyncs started because the change stream's resume point fell off the oplog (on_history_lost: resync).",
		}),
		recoveryFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicator_snapshot_history_lost_resync_failures_total",
			Help: "Automatic resyncs after a lost resume point that failed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.documents, m.remaining, m.state, m.chunks, m.swept, m.historyLost, m.recoveryFails)
	}
	return m
}

func (m *Metrics) setState(collection, state string) {
	if m == nil {
		return
	}
	for _, s := range allStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(collection, s).Set(v)
	}
}

func (m *Metrics) chunkDone(collection string, docs int64) {
	if m == nil {
		return
	}
	m.documents.WithLabelValues(collection).Add(float64(docs))
	m.chunks.WithLabelValues(collection).Inc()
}

func (m *Metrics) setRemaining(collection string, n int64) {
	if m == nil {
		return
	}
	m.remaining.WithLabelValues(collection).Set(float64(max(n, 0)))
}

func (m *Metrics) addSwept(collection string, n int64) {
	if m == nil {
		return
	}
	m.swept.WithLabelValues(collection).Add(float64(n))
}
