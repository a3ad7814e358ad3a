package sink

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Gaps: messages the buffer removed (retention, max_age) before the
// applier got to them. JetStream then starts delivery at the oldest
// message it still holds, silently; ARCHITECTURE.md (guarantee 5) says never skip silently.
//
// A collection's messages share the stream with other collections', so a
// jump in stream sequences is normal. What is not normal is a jump over
// sequences the stream no longer holds: everything below the stream's first
// sequence is gone, and whether any of it was this collection's cannot be
// told any more. So when the first message after prev (the last one
// delivered or the checkpoint) is s > prev+1 and the stream's first
// sequence F is above prev+1, the sequences prev+1 .. min(s, F)-1 may have
// held this collection's changes and are reported as a gap: the metric
// replicator_apply_gaps_total, an error log, and a control event
// (operation "gap") committed with the checkpoint that passes it. With
// on_error: halt the collection stops before the gap instead.
//
// Not checked: a checkpoint of 0 (nothing applied yet; the initial
// snapshot covers what came before). A collection that receives no message
// at all, not even capture's heartbeats, for the whole retention period
// can report a gap that held only other collections' messages.

// seqGap is a range of stream sequences removed before delivery.
type seqGap struct {
	From, To    uint64 // first and last missing sequence
	StreamFirst uint64
	Next        uint64 // the message delivered after the gap
}

func (g *seqGap) json() string {
	b, _ := json.Marshal(map[string]uint64{"first_missing_seq": g.From, "last_missing_seq": g.To,
		"stream_first_seq": g.StreamFirst, "next_seq": g.Next})
	return string(b)
}

// streamInfo is the part of jetstream.Stream gap detection uses.
type streamInfo interface {
	Info(ctx context.Context, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error)
}

// checkGap marks the first message of msgs (sorted) above prev with the
// gap before it, if the stream removed sequences there.
func checkGap(ctx context.Context, st streamInfo, prev uint64, msgs []message) error {
	if prev == 0 {
		return nil
	}
	i := 0
	for i < len(msgs) && msgs[i].seq <= prev {
		i++
	}
	if i == len(msgs) || msgs[i].seq == prev+1 {
		return nil
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	first := info.State.FirstSeq
	if first <= prev+1 {
		return nil // everything between prev and the message is still stored: other subjects
	}
	s := msgs[i].seq
	msgs[i].gap = &seqGap{From: prev + 1, To: min(s, first) - 1, StreamFirst: first, Next: s}
	return nil
}

// gapHalt stops a collection with on_error: halt before a gap.
func (c *collection) gapHalt(m *message) error {
	g := m.gap
	return &HaltError{Collection: c.unit, Seq: m.seq,
		Err: fmt.Errorf("buffer sequences %d to %d were removed by the stream's retention before they were applied", g.From, g.To),
		Hint: fmt.Sprintf("changes may be lost: resync the collection (`replicator resync --collection %s`), then move past the gap with `replicator checkpoints set --collection %s --seq %d --allow-forward`",
			c.cfg.Namespace, c.unit, g.To)}
}
