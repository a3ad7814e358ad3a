package checkpoints

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream is the part of jetstream.JetStream replay uses.
type Stream interface {
	OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error)
}

// SeqBefore returns the checkpoint that replays subject from time t: the
// sequence just before the first message at or after t. ok is false when
// the subject has no message at or after t (there is nothing to replay).
func SeqBefore(ctx context.Context, js Stream, stream, subject string, t time.Time) (seq uint64, ok bool, err error) {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &t,
	})
	if err != nil {
		return 0, false, fmt.Errorf("find sequence at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	info := cons.CachedInfo()
	if info != nil && info.NumPending == 0 {
		return 0, false, nil
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("find sequence at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	md, err := m.Metadata()
	if err != nil {
		return 0, false, fmt.Errorf("find sequence at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	return md.Sequence.Stream - 1, true, nil
}
