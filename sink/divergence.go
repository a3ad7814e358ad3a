package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/schemas/envelope"
)

// A checkpoint is a stream sequence, and only means something for the
// stream that numbered it. If the stream was deleted and recreated (a lost
// NATS data directory, an operator's mistake) or lost its tail, its
// sequences restart or repeat for other messages, and delivery from the
// checkpoint would skip every new message numbered at or below it: silent
// loss. So each session first checks that the stream still is the one the
// checkpoint came from: its last sequence is not below the checkpoint, and
// the message at the checkpoint is this collection's, with the cluster time
// the checkpoint recorded. If not, the checkpoint is rewound to just before
// the stream's first message (a replay, which the version guard makes
// harmless), with an error log, the metric replicator_apply_buffer_resets_total
// and a control event (operation "buffer_reset").

// stream is the part of jetstream.Stream the applier uses.
type stream interface {
	streamInfo
	GetMsg(ctx context.Context, seq uint64, opts ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error)
}

// lastEnvelope decodes the last envelope of a buffer message: the one
// whose cluster time a checkpoint at the message records (plan).
func lastEnvelope(data []byte) (*envelope.Envelope, error) {
	frames, err := envelope.Frames(data)
	if err != nil {
		return nil, err
	}
	return decodeEnvelope(frames[len(frames)-1])
}

// checkStream rewinds the checkpoint when the stream no longer holds the
// message it points at (see above).
func (c *collection) checkStream(ctx context.Context, st stream) error {
	if c.pos.seq == 0 {
		return nil
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	why := ""
	switch {
	case c.pos.seq > last:
		why = fmt.Sprintf("the stream's last sequence %d is below the checkpoint %d", last, c.pos.seq)
	case c.pos.seq >= first && !c.pos.ct.IsZero():
		m, err := st.GetMsg(ctx, c.pos.seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // deleted on its own: no evidence either way
		}
		if err != nil {
			return fmt.Errorf("read buffer message %d: %w", c.pos.seq, err)
		}
		if want := envelope.PartitionSubject(c.conf.SubjectPrefix, c.cfg.Namespace, c.part); m.Subject != want {
			why = fmt.Sprintf("the message at the checkpoint %d is on subject %s, not %s", c.pos.seq, m.Subject, want)
		} else if env, err := lastEnvelope(m.Data); err == nil && !env.ClusterTime.IsZero() && env.ClusterTime != c.pos.ct {
			why = fmt.Sprintf("the message at the checkpoint %d has cluster time %d.%d, the checkpoint recorded %d.%d",
				c.pos.seq, env.ClusterTime.T, env.ClusterTime.I, c.pos.ct.T, c.pos.ct.I)
		}
	}
	if why == "" {
		return nil
	}
	target := uint64(0)
	if first > 0 {
		target = first - 1
	}
	raw, _ := json.Marshal(map[string]any{"reason": why, "checkpoint": c.pos.seq, "rewound_to": target,
		"stream_first_seq": first, "stream_last_seq": last})
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rewind checkpoint: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if err := checkpoints.Rewind(ctx, tx, c.unit, c.guard(), target); err != nil {
		return err // errCheckpointMoved when the row moved meanwhile
	}
	if _, err := tx.Exec(ctx, insertControl, c.cfg.Namespace, "buffer_reset", "", string(raw), int64(c.pos.seq), 0, 0); err != nil {
		return fmt.Errorf("rewind checkpoint: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rewind checkpoint: %w", err)
	}
	c.m.resets.WithLabelValues(c.unit).Inc()
	c.log.Error("the buffer stream is not the one the apply checkpoint came from; replaying what it holds",
		"collection", c.unit, "reason", why, "checkpoint", c.pos.seq, "rewound_to", target)
	return c.loadPosition(ctx)
}
