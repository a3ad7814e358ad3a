package buffer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackTimeout is how long a publish waits for its acknowledgement before it
// counts as failed and is retried (synchronously, deduplicated by its
// Nats-Msg-Id): a reply lost in a reconnect must not stall the window.
const ackTimeout = 30 * time.Second

// replies sends the publisher's asynchronous publishes and routes their
// acknowledgements back. It does what jetstream.PublishMsgAsync does with
// less per message (no future with channels and a timer each, no
// reflection to decode the acknowledgement), which matters at tens of
// thousands of events per second: one wildcard subscription on a private
// inbox, one reply subject per publish (inbox.<id>), and a map from id to
// the waiting entry. Publisher.resolve owns the timeout.
type replies struct {
	nc     *nats.Conn
	buf    *Buffer
	prefix string // inbox + "."
	sub    *nats.Subscription
	subErr error // the subscription failed: every send fails at once

	mu      sync.Mutex
	next    uint64
	pending map[uint64]*entry
}

func newReplies(b *Buffer) *replies {
	nc := b.nc
	r := &replies{nc: nc, buf: b, pending: map[uint64]*entry{}}
	if nc == nil {
		r.subErr = errors.New("buffer: no connection")
		return r
	}
	inbox := nc.NewInbox()
	r.prefix = inbox + "."
	r.sub, r.subErr = nc.Subscribe(r.prefix+"*", r.onReply)
	if r.subErr != nil {
		r.subErr = fmt.Errorf("buffer: subscribe to acknowledgements: %w", r.subErr)
		return r
	}
	b.mu.Lock()
	if b.live == nil {
		b.live = map[*replies]struct{}{}
	}
	b.live[r] = struct{}{}
	b.mu.Unlock()
	return r
}

// connectionLost fails every publish awaiting its acknowledgement on any
// publisher of b: replies to publishes sent before the connection dropped
// may never come, and waiting ackTimeout for each would stall capture.
// Publisher.resolve retries them in order; the stream's deduplication
// absorbs those that were stored after all.
func (b *Buffer) connectionLost() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for r := range b.live {
		r.failAll(errConnectionLost)
	}
}

var errConnectionLost = errors.New("buffer: connection lost before the acknowledgement came")

// failAll fails every pending publish with err.
func (r *replies) failAll(err error) {
	r.mu.Lock()
	pending := r.pending
	r.pending = map[uint64]*entry{}
	r.mu.Unlock()
	for _, e := range pending {
		e.ackErr = err
		close(e.done)
	}
}

// send publishes e.msg with a reply subject of its own; a failure to send
// is left in e.sendErr, for Publisher.resolve to retry.
func (r *replies) send(e *entry) {
	e.done = make(chan struct{})
	if r.subErr != nil {
		e.sendErr = r.subErr
		return
	}
	r.mu.Lock()
	r.next++
	e.id = r.next
	r.pending[e.id] = e
	r.mu.Unlock()
	e.msg.Reply = r.prefix + strconv.FormatUint(e.id, 10)
	e.sent = time.Now()
	if err := r.nc.PublishMsg(e.msg); err != nil {
		r.forget(e.id)
		e.sendErr = err
	}
}

// forget drops a publish whose reply is no longer awaited.
func (r *replies) forget(id uint64) {
	r.mu.Lock()
	delete(r.pending, id)
	r.mu.Unlock()
}

func (r *replies) onReply(m *nats.Msg) {
	i := len(r.prefix)
	if len(m.Subject) <= i {
		return
	}
	id, err := strconv.ParseUint(m.Subject[i:], 10, 64)
	if err != nil {
		return
	}
	r.mu.Lock()
	e := r.pending[id]
	delete(r.pending, id)
	r.mu.Unlock()
	if e == nil {
		return // timed out already, or not ours
	}
	e.seq, e.ackErr = parsePubAck(m)
	close(e.done)
}

func (r *replies) close() {
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
	}
	r.buf.mu.Lock()
	delete(r.buf.live, r)
	r.buf.mu.Unlock()
}

// parsePubAck reads a JetStream publish acknowledgement,
// {"stream":"S","seq":N[,"duplicate":true]} or {"error":{...}}, or the
// server's no-responders status (no stream takes the subject).
func parsePubAck(m *nats.Msg) (uint64, error) {
	if len(m.Data) == 0 {
		if st := m.Header.Get("Status"); st != "" {
			if st == "503" {
				return 0, jetstream.ErrNoStreamResponse
			}
			return 0, fmt.Errorf("buffer: publish answered with status %s %s", st, m.Header.Get("Description"))
		}
		return 0, errors.New("buffer: empty publish acknowledgement")
	}
	if !bytes.Contains(m.Data, []byte(`"error"`)) {
		if i := bytes.Index(m.Data, []byte(`"seq":`)); i >= 0 {
			j := i + len(`"seq":`)
			k := j
			for k < len(m.Data) && m.Data[k] >= '0' && m.Data[k] <= '9' {
				k++
			}
			if seq, err := strconv.ParseUint(string(m.Data[j:k]), 10, 64); err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	var ack struct {
		Seq   uint64 `json:"seq"`
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &ack); err != nil {
		return 0, fmt.Errorf("buffer: unreadable publish acknowledgement %q: %w", m.Data, err)
	}
	if ack.Error != nil {
		return 0, fmt.Errorf("buffer: publish refused: %s (code %d, error code %d)", ack.Error.Description, ack.Error.Code, ack.Error.ErrCode)
	}
	if ack.Seq == 0 {
		return 0, fmt.Errorf("buffer: publish acknowledgement without a sequence: %q", m.Data)
	}
	return ack.Seq, nil
}
