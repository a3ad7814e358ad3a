package buffer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Message is one buffer message to publish.
type Message struct {
	Subject string
	// MsgID is the deduplication id (Nats-Msg-Id); empty for messages that
	// need none (heartbeats).
	MsgID string
	Data  []byte
}

// entry is one slot of the in-order window: a publish in flight, or a
// position with nothing to publish (a skipped event, an idle stream's
// postBatchResumeToken), which becomes durable with everything before it.
type entry struct {
	msg *nats.Msg // nil for a position-only entry
	// id names the publish's reply subject (replies.go); sendErr is set
	// when the asynchronous send failed at once, sent is when it went out.
	id      uint64
	sendErr error
	sent    time.Time
	// done is closed by the reply handler after it set seq or ackErr.
	done   chan struct{}
	seq    uint64
	ackErr error
	pos    Position
	hasPos bool
	// bestEffort entries (heartbeats) are not retried: they carry no data.
	bestEffort bool
	// bytes is what the entry holds of the byte window (windowBytes).
	bytes int64
}

// windowBytes bounds the bytes of the messages in flight, beside the
// window's count (Config.PublishWindow): capture's batch messages are up
// to a hundred times larger than one event's. A message larger than the
// bound is sent alone.
const windowBytes = 16 << 20

// Publisher publishes messages asynchronously with a bounded window and
// tracks the contiguous prefix of acknowledged publishes (ARCHITECTURE.md,
// guarantee 4). Call Publish/Advance from one goroutine, in source order,
// while Run runs.
type Publisher struct {
	js  jetstream.JetStream
	log *slog.Logger
	met *PublisherMetrics
	// replies routes acknowledgements to entries (replies.go).
	replies *replies

	// slots bounds the entries between Publish and their resolution in
	// Run: at most cap(slots) publishes are in flight (invariant 8).
	slots chan struct{}
	// queue holds the entries in publish order; its capacity equals the
	// window, so sending after taking a slot never blocks.
	queue chan *entry

	// inflight is the bytes of the entries between add and their
	// resolution; freed is signalled (non-blocking) when Run lowers it.
	inflight atomic.Int64
	freed    chan struct{}

	enqueued atomic.Uint64
	resolved atomic.Uint64
	notify   chan struct{} // signalled (non-blocking) after each resolution
	done     chan struct{} // closed when Run returns

	mu      sync.Mutex
	durable Position
}

// PublisherMetrics are the publisher's Prometheus metrics.
type PublisherMetrics struct {
	Pending prometheus.Gauge
	Retries prometheus.Counter
}

// NewPublisherMetrics creates and registers the publisher metrics on reg
// (nil: unregistered).
func NewPublisherMetrics(reg prometheus.Registerer) *PublisherMetrics {
	m := &PublisherMetrics{
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "replicator_capture_publish_pending",
			Help: "Publishes to the buffer awaiting acknowledgement.",
		}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicator_capture_publish_retries_total",
			Help: "Publishes to the buffer retried after a failure.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Pending, m.Retries)
	}
	return m
}

// NewPublisher returns a publisher with the buffer's window. start is the
// position already durable (the one capture resumes from).
func (b *Buffer) NewPublisher(start Position, met *PublisherMetrics) *Publisher {
	if met == nil {
		met = NewPublisherMetrics(nil)
	}
	w := b.cfg.PublishWindow
	return &Publisher{
		js:      b.js,
		log:     b.log,
		met:     met,
		replies: newReplies(b),
		slots:   make(chan struct{}, w),
		queue:   make(chan *entry, w),
		notify:  make(chan struct{}, 1),
		freed:   make(chan struct{}, 1),
		done:    make(chan struct{}),
		durable: start,
	}
}

// Publish sends m asynchronously; pos becomes durable once m and every
// entry before it are acknowledged. It blocks while the window is full.
func (p *Publisher) Publish(ctx context.Context, m Message, pos Position) error {
	return p.add(ctx, &entry{msg: newMsg(m), pos: pos, hasPos: !pos.IsZero()})
}

// Heartbeat sends m without retry or position: a lost heartbeat costs
// nothing but a moment of lag reading.
func (p *Publisher) Heartbeat(ctx context.Context, m Message) error {
	return p.add(ctx, &entry{msg: newMsg(m), bestEffort: true})
}

// Advance records pos, with no message, as durable once every entry before
// it is acknowledged.
func (p *Publisher) Advance(ctx context.Context, pos Position) error {
	return p.add(ctx, &entry{pos: pos, hasPos: true})
}

func newMsg(m Message) *nats.Msg {
	msg := nats.NewMsg(m.Subject)
	msg.Data = m.Data
	if m.MsgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, m.MsgID)
	}
	return msg
}

func (p *Publisher) add(ctx context.Context, e *entry) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return errPublisherStopped
	}
	if e.msg != nil {
		if err := p.reserve(ctx, e, int64(len(e.msg.Data))); err != nil {
			<-p.slots
			return err
		}
		p.replies.send(e)
	}
	p.enqueued.Add(1)
	p.met.Pending.Inc()
	p.queue <- e // never blocks: cap(queue) == cap(slots)
	return nil
}

// reserve waits until n more bytes fit in the byte window (or nothing is
// in flight) and records them in e.
func (p *Publisher) reserve(ctx context.Context, e *entry, n int64) error {
	for {
		cur := p.inflight.Load()
		if (cur == 0 || cur+n <= windowBytes) && p.inflight.CompareAndSwap(cur, cur+n) {
			e.bytes = n
			return nil
		}
		if cur != 0 && cur+n > windowBytes {
			select {
			case <-p.freed:
			case <-ctx.Done():
				return ctx.Err()
			case <-p.done:
				return errPublisherStopped
			}
		}
	}
}

var errPublisherStopped = fmt.Errorf("buffer: publisher stopped")

// Durable returns the position of the last entry of the contiguous prefix
// of acknowledged publishes.
func (p *Publisher) Durable() Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.durable
}

// Pending is the number of entries not yet resolved.
func (p *Publisher) Pending() int { return int(p.enqueued.Load() - p.resolved.Load()) }

// Flush waits until every entry added so far is resolved (acknowledged,
// or for heartbeats given up), or ctx ends.
func (p *Publisher) Flush(ctx context.Context) error {
	target := p.enqueued.Load()
	for p.resolved.Load() < target {
		select {
		case <-p.notify:
		case <-ctx.Done():
			return fmt.Errorf("buffer: flush: %d publishes unacknowledged: %w", target-p.resolved.Load(), ctx.Err())
		case <-p.done:
			if p.resolved.Load() < target {
				return errPublisherStopped
			}
		}
	}
	return nil
}

// Run resolves entries in publish order until ctx ends: it waits for each
// acknowledgement, retries a failed publish (synchronously, with backoff,
// before looking at any later entry) and advances the durable position.
func (p *Publisher) Run(ctx context.Context) error {
	defer close(p.done)
	defer p.replies.close()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var e *entry
		select {
		case e = <-p.queue:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := p.resolve(ctx, e, timer); err != nil {
			return err
		}
		if e.hasPos {
			p.mu.Lock()
			p.durable = e.pos
			p.mu.Unlock()
		}
		if e.bytes > 0 {
			p.inflight.Add(-e.bytes)
			select {
			case p.freed <- struct{}{}:
			default:
			}
		}
		<-p.slots
		p.resolved.Add(1)
		p.met.Pending.Dec()
		select {
		case p.notify <- struct{}{}:
		default:
		}
	}
}

// resolve waits for e's acknowledgement, retrying until it is stored. An
// acknowledgement that does not come within ackTimeout of the send (a
// reply lost in a reconnect) counts as a failure; timer is Run's, reused.
func (p *Publisher) resolve(ctx context.Context, e *entry, timer *time.Timer) error {
	if e.msg == nil {
		return nil
	}
	err := e.sendErr
	if err == nil {
		select {
		case <-e.done:
		default:
			timer.Reset(max(time.Until(e.sent.Add(ackTimeout)), 0))
			select {
			case <-e.done:
			case <-timer.C:
				p.replies.forget(e.id)
				err = fmt.Errorf("no acknowledgement within %s", ackTimeout)
			case <-ctx.Done():
				return ctx.Err()
			}
			timer.Stop()
		}
		if err == nil {
			if err = e.ackErr; err == nil {
				e.stored(e.seq)
				return nil
			}
		}
	}
	if e.bestEffort {
		return nil
	}
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if attempt == 1 || attempt%20 == 0 {
			p.log.Warn("buffer publish failed; retrying in order", "subject", e.msg.Subject, "attempt", attempt, "err", err)
		}
		p.met.Retries.Inc()
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		e.msg.Reply = "" // the request below gets a reply subject of its own
		var ack *jetstream.PubAck
		ack, err = p.js.PublishMsg(pctx, e.msg)
		cancel()
		if err == nil {
			e.stored(ack.Sequence)
			if attempt > 1 {
				p.log.Info("buffer publish recovered", "subject", e.msg.Subject, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// stored records the stream sequence e's message was stored at in its
// position.
func (e *entry) stored(seq uint64) {
	if e.hasPos {
		e.pos.StreamSeq = seq
	}
}
