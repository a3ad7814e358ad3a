package sink

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Durable returns the durable consumer name of the applier for one
// namespace. Consumer names may not contain dots, spaces or wildcards, so the
// readable part is sanitised and a short hash of the exact namespace keeps
// distinct namespaces distinct.
func Durable(namespace string) string {
	var b strings.Builder
	b.WriteString("apply_")
	for _, r := range namespace {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(namespace))
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(sum[:4]))
	return b.String()
}

// sessionDurable names the consumer one applier session creates for unit:
// Durable(unit) and a random suffix. A pull request reaches a consumer by
// name, so requests of an ended session (still waiting on a server, or
// carried to a new consumer leader after a NATS node crashed) must not
// find the next session's consumer under the same name: they could take
// its first deliveries, which nobody then receives (consumer.go,
// delivered, detects that, at the cost of another session).
func sessionDurable(unit string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return Durable(unit) + "_" + hex.EncodeToString(b[:])
}

// OfUnit reports whether consumer name is one of unit's apply consumers:
// Durable(unit), as older versions named it, or a session's.
func OfUnit(name, unit string) bool {
	d := Durable(unit)
	return name == d || strings.HasPrefix(name, d+"_") && len(name) == len(d)+9
}

// UnitConsumers lists the names of unit's apply consumers on stream s
// (normally one; more for a moment while a session replaces its
// predecessor's, or left by a process that died).
func UnitConsumers(ctx context.Context, s jetstream.Stream, unit string) ([]string, error) {
	names := s.ConsumerNames(ctx)
	var out []string
	for n := range names.Name() {
		if OfUnit(n, unit) {
			out = append(out, n)
		}
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	return out, nil
}

// DropUnitConsumers deletes unit's apply consumers on stream
// (UnitConsumers), so that delivery restarts after the checkpoint: the
// applier's next session creates a new one. None is not an error.
func DropUnitConsumers(ctx context.Context, js consumers, stream, unit string) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	names, err := UnitConsumers(ctx, s, unit)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := dropConsumer(ctx, js, stream, n); err != nil {
			return err
		}
	}
	return nil
}

// dropConsumer deletes consumer name; a missing one is not an error.
func dropConsumer(ctx context.Context, js consumers, stream, name string) error {
	if err := js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete consumer %s: %w", name, err)
	}
	return nil
}

// UnitConsumer returns unit's current apply consumer on stream s: the
// newest of UnitConsumers, or jetstream.ErrConsumerNotFound.
func UnitConsumer(ctx context.Context, s jetstream.Stream, unit string) (jetstream.Consumer, error) {
	names, err := UnitConsumers(ctx, s, unit)
	if err != nil {
		return nil, err
	}
	var newest jetstream.Consumer
	var created time.Time
	for _, n := range names {
		c, err := s.Consumer(ctx, n)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ci := c.CachedInfo(); newest == nil || ci.Created.After(created) {
			newest, created = c, ci.Created
		}
	}
	if newest == nil {
		return nil, jetstream.ErrConsumerNotFound
	}
	return newest, nil
}
