package buffer

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/schemas/envelope"
)

// ShowRange selects the messages Show returns: Count messages from the
// collection's first message at or after stream sequence From, or, when
// From is 0, its last Count messages.
type ShowRange struct {
	From  uint64
	Count int
}

// Show calls fn with one collection's (or one partition's,
// envelope.Partition.Unit) buffer messages, decoded, in stream
// order. It is read-only: it never acknowledges anything and never touches
// the applier's consumers (counting messages uses short-lived ephemeral
// consumers), so it is safe while the replicator runs.
func (b *Buffer) Show(ctx context.Context, namespace string, r ShowRange, fn func(ShownMessage) error) error {
	streamName := b.cfg.Stream
	stream, err := b.js.Stream(ctx, streamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("no stream %s in the buffer (has the replicator run against it? check --stream / buffer.stream)", streamName)
	}
	if err != nil {
		return fmt.Errorf("buffer: stream %s: %w", streamName, err)
	}
	subject := b.UnitSubject(namespace) // a partition's unit name shows that partition
	lastMsg, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("no messages for %s in stream %s (subject %s)", namespace, streamName, subject)
	}
	if err != nil {
		return fmt.Errorf("buffer: last message of %s: %w", subject, err)
	}
	start := r.From
	if start == 0 {
		first := stream.CachedInfo().State.FirstSeq
		if start, err = kthLast(ctx, stream, subject, first, lastMsg.Sequence, r.Count); err != nil {
			return err
		}
	} else if start > lastMsg.Sequence {
		return fmt.Errorf("no messages for %s in stream %s at or after sequence %d; its last one is at %d", namespace, streamName, start, lastMsg.Sequence)
	}
	for seq, shown := max(start, 1), 0; shown < r.Count; shown++ {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // the end of the subject
		}
		if err != nil {
			return fmt.Errorf("buffer: message of %s at or after %d: %w", subject, seq, err)
		}
		if err := fn(showMessage(m)); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
	return nil
}

// ShownMessage is one buffer message in readable form: a line of
// `replicator buffer show`.
type ShownMessage struct {
	Seq      uint64             `json:"seq"`
	Subject  string             `json:"subject"`
	Time     string             `json:"time"`
	MsgID    string             `json:"msg_id,omitempty"`
	Envelope *envelope.Envelope `json:"envelope,omitempty"`
	// Batch holds the envelopes of a batch message (several consecutive
	// change events of the subject), in order, instead of Envelope.
	Batch []*envelope.Envelope `json:"batch,omitempty"`
	// Error, Raw and RawBase64 describe a message that does not decode.
	Error     string  `json:"error,omitempty"`
	Raw       *string `json:"raw,omitempty"`
	RawBase64 []byte  `json:"raw_base64,omitempty"`
}

// showMessage decodes m; a message that does not decode keeps its error
// and raw data.
func showMessage(m *jetstream.RawStreamMsg) ShownMessage {
	s := ShownMessage{
		Seq:     m.Sequence,
		Subject: m.Subject,
		Time:    m.Time.UTC().Format(time.RFC3339Nano),
		MsgID:   m.Header.Get(nats.MsgIdHdr),
	}
	envs, err := envelope.DecodeAll(m.Data)
	switch {
	case err == nil && envelope.IsBatch(m.Data):
		s.Batch = envs
	case err == nil:
		s.Envelope = envs[0]
	case utf8.Valid(m.Data):
		raw := string(m.Data)
		s.Error, s.Raw = err.Error(), &raw
	default:
		s.Error, s.RawBase64 = err.Error(), m.Data
	}
	return s
}

// kthLast returns the stream sequence of the k-th last message on subject,
// whose last message is at sequence last, or first (the stream's first
// sequence) when the subject holds fewer than k messages. JetStream reads
// forward only, so it binary-searches the start sequence by the number of
// subject messages from there on, about log2(last-first) probes.
func kthLast(ctx context.Context, s jetstream.Stream, subject string, first, last uint64, k int) (uint64, error) {
	if k <= 1 {
		return last, nil
	}
	// The k-th last message is at or before last-k+1.
	if last+1 < first+uint64(k) {
		return first, nil
	}
	enough := func(seq uint64) (bool, error) {
		n, err := pendingFrom(ctx, s, subject, seq)
		return n >= uint64(k), err
	}
	ok, err := enough(first)
	if err != nil || !ok {
		return first, err
	}
	lo, hi := first, last-uint64(k)+2 // enough(lo) holds; hi is past the answer
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := enough(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// pendingFrom counts the messages on subject at or after stream sequence
// seq. It asks the server through a short-lived ephemeral consumer (no
// acks, in memory, never pulled from) and deletes it at once; the
// inactivity threshold removes it should the delete fail. Durable
// consumers are untouched.
func pendingFrom(ctx context.Context, s jetstream.Stream, subject string, seq uint64) (uint64, error) {
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description:       "replicator buffer show: counts messages, reads none",
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       seq,
		FilterSubject:     subject,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return 0, fmt.Errorf("buffer: count messages of %s from %d: %w", subject, seq, err)
	}
	info := c.CachedInfo()
	_ = s.DeleteConsumer(ctx, info.Name) // best effort; see above
	return info.NumPending, nil
}
