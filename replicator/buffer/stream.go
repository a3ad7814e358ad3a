package buffer

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig returns the stream configuration the buffer provisions.
// Retention is by limits (messages stay for replay until max age or max
// bytes), and DiscardNew makes a full stream refuse publishes instead of
// deleting messages no applier has seen (ARCHITECTURE.md, guarantee 1).
func (c Config) StreamConfig() jetstream.StreamConfig {
	maxBytes := c.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        c.Stream,
		Description: "MongoDB change events for the replicator, one subject per collection",
		Subjects:    []string{c.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxAge:      c.MaxAge,
		MaxBytes:    maxBytes,
		MaxMsgs:     -1,
		Duplicates:  c.DuplicateWindow,
		Replicas:    c.Replicas,
		MaxMsgSize:  -1,
	}
}

// positionBucket is the KV bucket holding capture positions and leases.
func (c Config) positionBucket() string { return c.Stream + "_capture" }

// provision creates or updates the stream and the position bucket. It is
// idempotent: running it against an up-to-date server changes nothing.
func (b *Buffer) provision(ctx context.Context) error {
	want := b.cfg.StreamConfig()
	s, err := b.js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := b.js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("buffer: create stream %s: %w", want.Name, err)
		}
		b.log.Info("buffer stream created", "stream", want.Name, "subjects", want.Subjects)
	case err != nil:
		return fmt.Errorf("buffer: stream %s: %w", want.Name, err)
	default:
		have := s.CachedInfo().Config
		if !sameStreamConfig(have, want) {
			if _, err := b.js.UpdateStream(ctx, want); err != nil {
				return fmt.Errorf("buffer: update stream %s: %w", want.Name, err)
			}
			b.log.Info("buffer stream updated", "stream", want.Name)
		}
	}
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.cfg.positionBucket(),
		Description: "replicator capture positions and leases",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("buffer: position bucket: %w", err)
	}
	b.kv = kv
	return nil
}

// BindPositions gives a buffer from Connect its existing position bucket
// (capture positions, leases, holds) without creating or changing it.
func (b *Buffer) BindPositions(ctx context.Context) error {
	kv, err := b.js.KeyValue(ctx, b.cfg.positionBucket())
	if err != nil {
		return fmt.Errorf("buffer: position bucket %s: %w", b.cfg.positionBucket(), err)
	}
	b.kv = kv
	return nil
}

func sameStreamConfig(have, want jetstream.StreamConfig) bool {
	return len(have.Subjects) == 1 && have.Subjects[0] == want.Subjects[0] &&
		have.Retention == want.Retention && have.Storage == want.Storage &&
		have.Discard == want.Discard && have.MaxAge == want.MaxAge &&
		have.MaxBytes == want.MaxBytes && have.Duplicates == want.Duplicates &&
		have.Replicas == want.Replicas
}
