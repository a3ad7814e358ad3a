package buffer

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// streamCollector exports the stream's state at scrape time: what the
// buffer holds and how full it is against its limits. A full stream
// refuses publishes (DiscardNew), so capture stalls when it fills; the
// fill ratio is what to alert on before that. The state is read at most
// once per second, each read bounded by two seconds; a failed read exports
// nothing for that scrape.
type streamCollector struct {
	b                               *Buffer
	msgs, bytes, fill, oldest, maxB *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	cached []prometheus.Metric
}

// Collector returns the collector of the buffer's stream gauges:
// replicator_buffer_stream_messages, replicator_buffer_stream_bytes,
// replicator_buffer_stream_max_bytes, replicator_buffer_fill_ratio and
// replicator_buffer_oldest_message_age_seconds.
func (b *Buffer) Collector() prometheus.Collector {
	return &streamCollector{
		b:      b,
		msgs:   prometheus.NewDesc("replicator_buffer_stream_messages", "Messages the buffer stream holds, applied or not (retention keeps them for replay until buffer.max_age).", nil, nil),
		bytes:  prometheus.NewDesc("replicator_buffer_stream_bytes", "Bytes the buffer stream holds.", nil, nil),
		maxB:   prometheus.NewDesc("replicator_buffer_stream_max_bytes", "The stream's byte limit (buffer.max_bytes); 0 when unlimited.", nil, nil),
		fill:   prometheus.NewDesc("replicator_buffer_fill_ratio", "Bytes held over buffer.max_bytes (0 when unlimited): at 1 the stream refuses publishes and capture stalls.", nil, nil),
		oldest: prometheus.NewDesc("replicator_buffer_oldest_message_age_seconds", "Age of the stream's oldest message; messages older than buffer.max_age are removed, applied or not.", nil, nil),
	}
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.msgs, c.bytes, c.maxB, c.fill, c.oldest} {
		ch <- d
	}
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) >= time.Second {
		c.cached, c.at = c.read(), time.Now()
	}
	for _, m := range c.cached {
		ch <- m
	}
}

func (c *streamCollector) read() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.b.js.Stream(ctx, c.b.cfg.Stream)
	if err != nil {
		return nil
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil
	}
	st := info.State
	limit := info.Config.MaxBytes
	fill := 0.0
	if limit > 0 {
		fill = float64(st.Bytes) / float64(limit)
	} else {
		limit = 0
	}
	age := 0.0
	if st.Msgs > 0 && !st.FirstTime.IsZero() {
		age = max(0, time.Since(st.FirstTime).Seconds())
	}
	return []prometheus.Metric{
		prometheus.MustNewConstMetric(c.msgs, prometheus.GaugeValue, float64(st.Msgs)),
		prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes)),
		prometheus.MustNewConstMetric(c.maxB, prometheus.GaugeValue, float64(limit)),
		prometheus.MustNewConstMetric(c.fill, prometheus.GaugeValue, fill),
		prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age),
	}
}
