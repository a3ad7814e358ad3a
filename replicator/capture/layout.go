package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas/envelope"
)

// checkLayouts compares each collection's configured partitions with the
// ones capture last published on (buffer.Layouts). A change is accepted
// only once every message of the old layout is applied: then nothing of a
// document is left on an old subject when its next change goes to a new
// one, and per-document order holds (README, Scaling out, changing
// partitions). Otherwise capture stops with the way back. It runs under
// the lease, before any event is published.
func (c *Capture) checkLayouts(ctx context.Context) error {
	layouts := c.buf.Layouts()
	for _, ns := range c.names {
		want := len(c.partitions(ns))
		had, err := layouts.Get(ctx, c.cfg.Source, ns)
		if err != nil {
			return err
		}
		if had == want {
			continue
		}
		left, err := c.unapplied(ctx, ns, had)
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return &StopError{Collection: ns,
				Reason: fmt.Sprintf("its partitions changed from %d to %d in the configuration while messages of the %d-partition layout are not applied yet (%s)",
					had, want, had, strings.Join(left, "; ")),
				Recovery: fmt.Sprintf("set partitions: %d for %s again and restart, stop capture once apply has caught up (replicator status: nothing pending), then change it (README, Scaling out)", had, ns)}
		}
		if err := c.startLayout(ctx, ns, want); err != nil {
			return err
		}
		if err := layouts.Save(ctx, c.cfg.Source, ns, want); err != nil {
			return err
		}
		c.log.Info("collection partitions changed; the old layout is fully applied", "collection", ns, "from", had, "to", want)
	}
	return nil
}

// startLayout moves the checkpoints of ns's new units to the stream's last
// sequence: nothing on their subjects is left to apply (a layout is only
// left once applied, and resync's purge empties it), and a unit reused
// from an earlier layout must not resume at a sequence retention removed
// since, which the applier would report as a gap.
func (c *Capture) startLayout(ctx context.Context, ns string, n int) error {
	if c.Checkpoints == nil {
		return nil
	}
	_, last, err := bufferStream(ctx, c.buf)
	if err != nil || last == 0 {
		return err
	}
	for _, p := range envelope.Partitions(n) {
		unit := p.Unit(ns)
		cp, err := checkpoints.Get(ctx, c.Checkpoints, unit)
		if noMetadata(err) {
			return nil // no applier ever ran: no checkpoint to move
		}
		if err != nil && !errors.Is(err, checkpoints.ErrNotFound) {
			return fmt.Errorf("capture: %w", err)
		}
		if err == nil && cp.Seq >= last {
			continue
		}
		if _, err := checkpoints.Set(ctx, c.Checkpoints, unit, last, checkpoints.SetOptions{AllowForward: true}); err != nil {
			return fmt.Errorf("capture: start %s at sequence %d: %w", unit, last, err)
		}
	}
	return nil
}

// noMetadata reports an error of a target without the metadata schema (no
// applier ever prepared it).
func noMetadata(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") // undefined_table, invalid_schema_name
}

// bufferStream returns the buffer's stream and its last sequence; a nil
// stream when it does not exist (nothing was ever buffered).
func bufferStream(ctx context.Context, buf *buffer.Buffer) (jetstream.Stream, uint64, error) {
	stream, err := buf.JetStream().Stream(ctx, buf.Config().Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("buffer stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("buffer stream: %w", err)
	}
	return stream, info.State.LastSeq, nil
}

// unapplied describes the units of ns's n-partition layout whose subject
// holds messages beyond their apply checkpoint (a unit without messages is
// applied whatever its checkpoint).
func (c *Capture) unapplied(ctx context.Context, ns string, n int) ([]string, error) {
	stream, lastSeq, err := bufferStream(ctx, c.buf)
	if err != nil || stream == nil {
		return nil, err
	}
	var left []string
	for _, p := range envelope.Partitions(n) {
		unit := p.Unit(ns)
		msg, err := stream.GetLastMsgForSubject(ctx, c.buf.PartitionSubject(ns, p))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("capture: last message of %s: %w", unit, err)
		}
		if c.Checkpoints == nil {
			left = append(left, fmt.Sprintf("%s holds messages up to sequence %d and capture has no target to read its checkpoint", unit, msg.Sequence))
			continue
		}
		cp, err := checkpoints.Get(ctx, c.Checkpoints, unit)
		if err != nil && !errors.Is(err, checkpoints.ErrNotFound) && !noMetadata(err) {
			return nil, fmt.Errorf("capture: %w", err)
		}
		if cp.Seq > lastSeq {
			// A checkpoint past the stream's end counts a stream that was
			// recreated since: it says nothing about these messages.
			left = append(left, fmt.Sprintf("%s checkpoint %d is past the buffer's last sequence %d (a recreated stream) while its subject holds messages up to %d",
				unit, cp.Seq, lastSeq, msg.Sequence))
			continue
		}
		if cp.Seq >= msg.Sequence {
			continue
		}
		pending, err := onlyHeartbeats(ctx, stream, c.buf.PartitionSubject(ns, p), cp.Seq+1, msg.Sequence)
		if err != nil {
			return nil, fmt.Errorf("capture: messages of %s: %w", unit, err)
		}
		if !pending {
			left = append(left, fmt.Sprintf("%s applied up to sequence %d of %d", unit, cp.Seq, msg.Sequence))
		}
	}
	return left, nil
}

// heartbeatScan bounds how many unapplied messages onlyHeartbeats reads.
const heartbeatScan = 10000

// onlyHeartbeats reports whether the messages on subject from sequence
// from to last are all heartbeats (which change no row: an old layout
// whose applier stopped before capture's last heartbeats is applied).
func onlyHeartbeats(ctx context.Context, stream jetstream.Stream, subject string, from, last uint64) (bool, error) {
	for n := 0; from <= last; n++ {
		if n == heartbeatScan {
			return false, nil
		}
		m, err := stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if m.Sequence > last {
			return true, nil
		}
		env, err := envelope.Decode(m.Data)
		if err != nil || env.Kind != envelope.KindHeartbeat {
			return false, nil
		}
		from = m.Sequence + 1
	}
	return true, nil
}
