package sink

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the applier's Prometheus series. Labels are bounded: the
// configured collections, fixed operation and reason sets.
type metrics struct {
	events      *prometheus.CounterVec
	batchSize   *prometheus.HistogramVec
	duration    *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	pending     *prometheus.GaugeVec
	halted      *prometheus.GaugeVec
	gaps        *prometheus.CounterVec
	resets      *prometheus.CounterVec
	tombstones  *prometheus.CounterVec
	lag, age    *prometheus.GaugeVec // set at scrape time by the collector
	claimed     *prometheus.GaugeVec // set only under a Claimer (Applier.Share)
	clocks      map[string]*clock
	now         func() time.Time
}

// clock holds a collection's last source time and last commit time, in
// Unix nanoseconds (0: unknown), for the lag and checkpoint age gauges.
type clock struct {
	source, commit atomic.Int64
	// held: this process applies the unit (always, without a Claimer).
	// The lag and age of a unit another process applies are not reported.
	held atomic.Bool
}

func newMetrics(cols []string) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_apply_events_total",
			Help: "Buffer messages applied to PostgreSQL, by collection and operation (insert, update, replace, delete, snapshot, upsert, heartbeat, dead_letter, control, duplicate).",
		}, []string{"collection", "operation"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "replicator_apply_batch_size",
			Help:    "Events per committed apply transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}, []string{"collection"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "replicator_apply_duration_seconds",
			Help:    "Time to apply and commit one batch, staging included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
		}, []string{"collection"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_apply_retries_total",
			Help: "Retried apply transactions, by collection and reason (connection, serialization, deadlock, shutdown, read_only, resources, timeout).",
		}, []string{"collection", "reason"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_dead_letters_total",
			Help: "Events written to replicator.dead_letters, by collection and reason.",
		}, []string{"collection", "reason"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_buffer_pending_messages",
			Help: "Messages in the buffer the collection's applier has not committed yet: not yet delivered plus delivered and unacknowledged, read from the consumer every 2s (so it grows while PostgreSQL stalls).",
		}, []string{"collection"}),
		halted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_apply_collection_halted",
			Help: "1 once the collection's applier halted (on_error: halt, dead_letter_threshold, a fatal error) until the process restarts; 0 while it applies.",
		}, []string{"collection"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_apply_gaps_total",
			Help: "Ranges of buffer sequences the stream removed (retention) before the collection applied them; changes may be lost and the collection needs a resync.",
		}, []string{"collection"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_apply_buffer_resets_total",
			Help: "Times the buffer stream no longer held the message at the apply checkpoint (recreated or truncated) and the checkpoint was rewound to replay it.",
		}, []string{"collection"}),
		tombstones: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_apply_tombstones_removed_total",
			Help: "Tombstones removed by garbage collection once no older event could still be applied.",
		}, []string{"collection"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_apply_lag_seconds",
			Help: "Now minus the source time of the last applied event or heartbeat.",
		}, []string{"collection"}),
		age: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_apply_checkpoint_age_seconds",
			Help: "Now minus the time the collection's apply checkpoint last committed.",
		}, []string{"collection"}),
		clocks: map[string]*clock{},
		now:    time.Now,
	}
	m.claimed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "replicator_apply_claimed",
		Help: "Under apply.claim_ttl's sharing of units between apply processes: 1 while this process holds the collection's (or partition's) claim and applies it; 0 while another process does.",
	}, []string{"collection"})
	for _, c := range cols {
		m.clocks[c] = &clock{}
		m.clocks[c].held.Store(true)
		m.pending.WithLabelValues(c)
		m.halted.WithLabelValues(c).Set(0)
		m.gaps.WithLabelValues(c)
		m.resets.WithLabelValues(c)
		m.tombstones.WithLabelValues(c)
		// Counters start at zero, so increase() sees the first event.
		for _, r := range deadLetterReasons {
			m.deadLetters.WithLabelValues(c, r)
		}
		for _, r := range retryReasons {
			m.retries.WithLabelValues(c, r)
		}
	}
	return m
}

// Describe and Collect make metrics one prometheus.Collector; the lag and
// age gauges are computed at scrape time so a stuck collection's lag grows
// (ARCHITECTURE.md, guarantee 9).
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	now := m.now().UnixNano()
	for col, c := range m.clocks {
		if !c.held.Load() {
			m.lag.DeleteLabelValues(col)
			m.age.DeleteLabelValues(col)
			continue
		}
		m.lag.WithLabelValues(col).Set(since(now, c.source.Load()))
		m.age.WithLabelValues(col).Set(since(now, c.commit.Load()))
	}
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func since(now, t int64) float64 {
	if t == 0 || t > now {
		return 0
	}
	return float64(now-t) / float64(time.Second)
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.events, m.batchSize, m.duration, m.retries, m.deadLetters, m.pending, m.halted, m.gaps, m.resets, m.tombstones, m.lag, m.age, m.claimed}
}
