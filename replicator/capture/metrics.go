package capture

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/replicator/buffer"
)

// metrics are the capture side's Prometheus metrics. Labels are bounded:
// collection (configured namespaces) and operation (change-event types).
type metrics struct {
	events      *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	restarts    prometheus.Counter
	heartbeats  prometheus.Counter
	saves       prometheus.Counter
	historyLost prometheus.Counter
	skew        prometheus.Gauge
	held        *prometheus.GaugeVec
	heldEvents  *prometheus.CounterVec
	publisher   *buffer.PublisherMetrics

	// touched is the unix-nano time up to which the source is known to be
	// read: an event's cluster time, or the moment a getMore came back
	// empty (caught up). Lag is now minus touched.
	touched atomic.Int64
	// durableCT is the unix time of the durable position's cluster time.
	durableCT atomic.Int64
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_capture_events_total",
			Help: "Change events read from MongoDB, by collection and operation type.",
		}, []string{"collection", "operation"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_capture_dead_letters_total",
			Help: "Events the capture side could not transform and sent to the dead-letter table.",
		}, []string{"collection"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicator_capture_stream_restarts_total",
			Help: "Change streams reopened after a transient error.",
		}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicator_capture_heartbeats_total",
			Help: "Heartbeat envelopes published.",
		}),
		saves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicator_capture_position_saves_total",
			Help: "Capture positions saved to the buffer's KV bucket.",
		}),
		historyLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicator_capture_history_lost_total",
			Help: "Times the change stream's resume point was no longer in the oplog (ChangeStreamHistoryLost), whatever source.on_history_lost then did.",
		}),
		skew: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "replicator_capture_source_clock_skew_seconds",
			Help: "The source's clock minus this host's, measured with hello every 30s; capture moves event wall times onto this host's clock by it, so lag stays truthful.",
		}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_capture_collection_held",
			Help: "1 while capture holds the collection (dropped, renamed, or on_error: halt) until a resync releases it; its events are not published meanwhile.",
		}, []string{"collection"}),
		heldEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_capture_held_events_total",
			Help: "Events of held collections read past without publishing (the resync that releases the hold copies their effect).",
		}, []string{"collection"}),
	}
	m.touched.Store(time.Now().UnixNano())
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "replicator_capture_lag_seconds",
		Help: "Now minus the source time capture has read up to (0 when caught up and idle).",
	}, func() float64 {
		return max(0, time.Since(time.Unix(0, m.touched.Load())).Seconds())
	})
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "replicator_capture_position_age_seconds",
		Help: "Now minus the source cluster time of the durable (saved) capture position.",
	}, func() float64 {
		ct := m.durableCT.Load()
		if ct == 0 {
			return 0
		}
		return max(0, time.Since(time.Unix(ct, 0)).Seconds())
	})
	m.publisher = buffer.NewPublisherMetrics(reg)
	if reg != nil {
		reg.MustRegister(m.events, m.deadLetters, m.restarts, m.heartbeats, m.saves, m.historyLost, m.skew, m.held, m.heldEvents, lag, age)
	}
	return m
}

// touch records that the source is read up to t.
func (m *metrics) touch(t time.Time) {
	n := t.UnixNano()
	for {
		old := m.touched.Load()
		if n <= old || m.touched.CompareAndSwap(old, n) {
			return
		}
	}
}
