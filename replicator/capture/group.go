package capture

import (
	"context"
	"slices"
	"time"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas/envelope"
)

// Grouping. While a backlog streams, the ordered stage gathers consecutive
// change envelopes of one subject into one batch message
// (envelope.AppendBatch, schemas/envelope.md): the buffer's cost is per
// message (the stream stores and delivers each with a write of its own),
// so a backlog of small events costs it a fraction. An event read while
// the pipeline has nothing else ready is published at once, alone, as
// before batches existed: grouping adds no latency to a live stream.
//
// Order and positions (ARCHITECTURE.md, guarantees 3 and 4):
//   - a subject's groups are published in order, so one document's changes
//     stay in source order; groups of different subjects are independent;
//   - the position of a grouped event is handed to the publisher only with
//     the last message of a flush of every open group (flushGroups), so the
//     durable position never passes an event still in a group, and r.pos,
//     where the stream reopens, moves only then: events of groups dropped by
//     a failing pipeline are read again;
//   - the position of an event with nothing to publish (outside the
//     mappings, skipped by its mapping, of a held collection) waits for the
//     next flush like a grouped event's;
//   - everything else the ordered stage does (a dead letter, a stop, a
//     hold, a control event, a heartbeat, an idle stream's position, a hold
//     release) flushes first, so it comes after every event before it, as
//     without groups.
//
// Bounds (invariant 8): a group holds at most groupEvents events and
// groupBytes bytes (less when the server's max payload is smaller); all
// open groups are flushed once they hold groupsBytes (so they hold less
// than groupsBytes plus one event), and an event waits at most groupDelay
// plus one pipeline batch before its group is flushed.
const (
	groupEvents = 128
	groupBytes  = 128 << 10
	groupsBytes = 1 << 20
	groupDelay  = 20 * time.Millisecond
)

// group is the open batch message of one subject.
type group struct {
	subject     string
	frames      [][]byte
	size        int // bytes of the frames and their length prefixes
	first, last string
	firstID     string // the first event's own message id (prepare's)
}

// groups are the ordered stage's open groups.
type groups struct {
	open  map[string]*group
	order []*group // the open groups, by first event
	size  int
	since time.Time // when the oldest open event was added
	// pos is the position of the newest grouped event, not yet handed to
	// the publisher when pending.
	pos     buffer.Position
	pending bool
}

// frameOverhead bounds a frame's length prefix (binary.MaxVarintLen32).
const frameOverhead = 5

// groupLimit is the bytes one batch message may hold.
func (c *Capture) groupLimit() int {
	limit := groupBytes
	if mp := c.buf.MaxPayload(); mp > 0 {
		limit = min(limit, int(mp)-4096)
	}
	return limit
}

// group adds a prepared change envelope to its subject's group, publishing
// the group first when the envelope does not fit in it.
func (c *Capture) group(ctx context.Context, r *reader, p *prepared) error {
	gs := &r.groups
	if gs.open == nil {
		gs.open = map[string]*group{}
	}
	n := len(p.msg.Data) + frameOverhead
	g := gs.open[p.msg.Subject]
	if g != nil && (len(g.frames) >= groupEvents || g.size+n > c.groupLimit()) {
		if err := c.publishGroup(ctx, r, g, buffer.Position{}); err != nil {
			return err
		}
		g = nil
	}
	if g == nil {
		g = &group{subject: p.msg.Subject, first: p.ev.Token, firstID: p.msg.MsgID}
		gs.open[g.subject] = g
		gs.order = append(gs.order, g)
	}
	if !gs.pending {
		gs.since = time.Now()
	}
	g.frames = append(g.frames, p.msg.Data)
	g.size += n
	g.last = p.ev.Token
	gs.size += n
	gs.pos, gs.pending = p.pos, true
	if gs.size >= groupsBytes {
		return c.flushGroups(ctx, r)
	}
	return nil
}

// groupPosition records the position of an event with nothing to publish
// (outside the mappings, skipped by its mapping, or of a held collection):
// it is handed to the publisher with the next flush, after the groups
// before it.
func (r *reader) groupPosition(pos buffer.Position) {
	gs := &r.groups
	if !gs.pending {
		gs.since = time.Now()
	}
	gs.pos, gs.pending = pos, true
}

// groupsDue reports whether the open groups must be flushed though more
// events are ready: an event waited groupDelay.
func (r *reader) groupsDue() bool {
	gs := &r.groups
	return gs.pending && time.Since(gs.since) >= groupDelay
}

// flushGroups publishes every open group, the last one with the newest
// grouped event's position (or that position alone when its group was
// published on filling up), and moves r.pos there.
func (c *Capture) flushGroups(ctx context.Context, r *reader) error {
	gs := &r.groups
	if !gs.pending {
		return nil
	}
	for len(gs.order) > 0 {
		last := len(gs.order) == 1
		var pos buffer.Position
		if last {
			pos = gs.pos
		}
		if err := c.publishGroup(ctx, r, gs.order[0], pos); err != nil {
			return err
		}
		if last {
			gs.pending = false
		}
	}
	if gs.pending {
		if err := r.pub.Advance(ctx, gs.pos); err != nil {
			return err
		}
		gs.pending = false
	}
	r.pos = gs.pos
	return nil
}

// publishGroup publishes g, with pos (zero: none), and closes it. A
// group of one event is that event's own envelope, as published without
// groups; a larger one is a batch message whose id names its first and
// last event.
func (c *Capture) publishGroup(ctx context.Context, r *reader, g *group, pos buffer.Position) error {
	msg := buffer.Message{Subject: g.subject}
	if len(g.frames) == 1 {
		msg.MsgID, msg.Data = g.firstID, g.frames[0]
	} else {
		msg.MsgID = buffer.BatchMsgID(g.first, g.last)
		msg.Data = envelope.AppendBatch(make([]byte, 0, g.size+8), g.frames)
	}
	if err := r.pub.Publish(ctx, msg, pos); err != nil {
		return err
	}
	gs := &r.groups
	gs.size -= g.size
	delete(gs.open, g.subject)
	gs.order = slices.DeleteFunc(gs.order, func(o *group) bool { return o == g })
	return nil
}
