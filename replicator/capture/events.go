package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// prepared is one change event worked out by a pipeline worker (see
// pipeline.go): parsed, transformed and encoded, not yet published. The
// ordered stage (emit) publishes it or stops at it.
type prepared struct {
	ev  *transform.Event // nil when the event could not be read
	pos buffer.Position
	// stop, if set, stops the stream at this event, before anything about
	// it is published: an unreadable event, an on_error: halt transform
	// error, a failure of the transformer itself.
	stop error
	// control: a drop, rename, dropDatabase or invalidate event.
	control bool
	// hold, if set, holds the event's collection at this event (on_error:
	// halt): it is read past, not published (holds.go).
	hold *buffer.Hold
	// label is the events metric's collection label.
	label string
	// msg is the envelope to publish; Data nil means nothing to publish
	// (the position moves on alone).
	msg buffer.Message
	// deadLetter is set when msg is a dead-letter envelope.
	deadLetter bool
}

// prepare parses, transforms and encodes one raw change event, whose
// ordinal inside its cluster time the reader stage assigned (ordinals). It
// touches no reader state and publishes nothing, so workers run it
// concurrently (the transformers are safe for concurrent use); raw must
// stay unchanged until the result is emitted.
func (c *Capture) prepare(raw bson.Raw, ord uint32) prepared {
	ev, err := transform.ParseEvent(raw)
	if err != nil {
		return prepared{stop: &StopError{Reason: fmt.Sprintf("unreadable change event: %v", err), Recovery: resyncAll()}}
	}
	ns := ev.Namespace()
	p := prepared{ev: ev, pos: buffer.Position{Token: ev.Token, ClusterTime: ev.ClusterTime, Ordinal: ord}, label: ns}
	if ev.Token == "" {
		return prepared{stop: &StopError{Collection: ns, Reason: "change event without a resume token", Recovery: resyncAll()}}
	}
	m, ok := c.mappings[ns]
	if !ok {
		p.label = "other"
	}
	switch ev.OperationType {
	case transform.OpDrop, transform.OpRename, transform.OpDropDatabase, transform.OpInvalidate:
		p.control = true
		return p
	}
	if !ok {
		// Outside the configured namespaces (the $match should keep such
		// events away): nothing to apply, the position moves on.
		return p
	}
	env := &envelope.Envelope{
		Kind:        envelope.KindChange,
		Collection:  ns,
		ClusterTime: ev.ClusterTime,
		Ordinal:     ord,
		WallTime:    c.skew.local(ev.WallTime),
		Token:       ev.Token,
		Operation:   ev.OperationType,
		DocumentKey: extJSON(ev.DocumentKey),
	}
	res, err := c.reg.Transform(ev)
	switch {
	case err != nil:
		var te *transform.Error
		if !errors.As(err, &te) {
			p.stop = fmt.Errorf("capture: transform %s: %w", ns, err)
			return p
		}
		if m.Config().OnError == transform.OnErrorHalt {
			p.hold = &buffer.Hold{
				Collection: ns,
				Reason:     fmt.Sprintf("a document cannot be transformed and the collection says on_error: halt: %v", err),
				Recovery:   "fix the mapping (then restart) or the document in MongoDB, then " + resyncCollection(ns),
			}
			return p
		}
		deadLetter(env, raw, err.Error(), te.Path)
		p.deadLetter = true
	case res.Kind == transform.KindControl:
		p.control = true
		return p
	case res.Kind == transform.KindSkipped && len(res.Mutations) == 0:
		return p
	default:
		// KindRows, KindSkipped with its delete, and KindMissingDocument
		// (no mutation: the envelope still moves the applied position).
		env.Mutations = res.Mutations
	}
	data, err := envelope.AppendEncode(make([]byte, 0, len(raw)+512), env)
	if err != nil {
		p.stop = fmt.Errorf("capture: %w", err)
		return p
	}
	if limit := c.buf.MaxPayload(); limit > 0 && int64(len(data)) > limit-4096 {
		// Too large for the buffer: dead-letter it with the key, not the body.
		env.Mutations = nil
		deadLetter(env, nil, fmt.Sprintf("event of %d bytes exceeds the buffer's max payload of %d bytes", len(data), limit), "")
		p.deadLetter = true
		if data, err = envelope.AppendEncode(nil, env); err != nil {
			p.stop = fmt.Errorf("capture: %w", err)
			return p
		}
	}
	p.msg = buffer.Message{Subject: c.buf.PartitionSubject(ns, partitionOf(ev.DocumentKey, m.Config().Partitions)), MsgID: buffer.MsgID(ev.Token), Data: data}
	return p
}

// partitionOf returns the partition, among n, of the document an event's
// documentKey names: by its _id, which never changes, so every change of
// one document goes to one subject and keeps its order. A documentKey
// without _id (never seen from MongoDB) goes to the first partition.
func partitionOf(key bson.Raw, n int) envelope.Partition {
	if n <= 1 {
		return envelope.Partition{Index: 0, Count: 1}
	}
	v, err := key.LookupErr("_id")
	if err != nil {
		return envelope.Partition{Index: 0, Count: n}
	}
	return envelope.Partition{Index: envelope.PartitionOf(byte(v.Type), v.Value, n), Count: n}
}

// units lists the apply units of the configured namespaces: each
// namespace, or its partitions.
func (c *Capture) units() []string {
	var out []string
	for _, ns := range c.names {
		out = append(out, envelope.Units(ns, c.mappings[ns].Config().Partitions)...)
	}
	return out
}

// partitions lists the partitions of a configured namespace.
func (c *Capture) partitions(ns string) []envelope.Partition {
	if m, ok := c.mappings[ns]; ok {
		return envelope.Partitions(m.Config().Partitions)
	}
	return envelope.Partitions(1)
}

// emit publishes one prepared event, or stops at it, from the ordered
// stage: events are emitted strictly in change-stream order, so the
// publisher's contiguous prefix and per-document order are those of the
// stream (invariants 3 and 4). A change envelope joins its subject's group
// (group.go).
func (c *Capture) emit(ctx context.Context, r *reader, p *prepared) error {
	if p.ev == nil {
		// Stop here; what is grouped before it is published first.
		if err := c.flushGroups(ctx, r); err != nil {
			return err
		}
		return p.stop
	}
	ev := p.ev
	c.met.events.WithLabelValues(p.label, ev.OperationType).Inc()
	if !ev.WallTime.IsZero() {
		wall := c.skew.local(ev.WallTime)
		c.met.touch(wall)
		r.vouch = wall
	}
	if !p.control && r.skips(ev.Namespace(), ev.ClusterTime) {
		// A held collection's event, whatever it holds: read past, its
		// position only.
		c.met.heldEvents.WithLabelValues(p.label).Inc()
		r.groupPosition(p.pos)
		return nil
	}
	if !p.control && p.hold == nil && p.stop == nil && !p.deadLetter {
		if p.msg.Data == nil {
			r.groupPosition(p.pos) // nothing to apply
			return nil
		}
		return c.group(ctx, r, p)
	}
	// Anything else comes after every event before it (group.go).
	if err := c.flushGroups(ctx, r); err != nil {
		return err
	}
	switch {
	case p.control:
		return c.control(ctx, r, ev, p.pos)
	case p.hold != nil:
		if err := c.hold(ctx, r, p.hold.Collection, p.hold.Reason, p.hold.Recovery, ev.ClusterTime); err != nil {
			return err
		}
		return c.advance(ctx, r, p.pos)
	case p.stop != nil:
		return p.stop
	}
	// A dead letter goes alone, with its own event's id, so that a
	// re-publish is deduplicated as before groups existed.
	c.met.deadLetters.WithLabelValues(ev.Namespace()).Inc()
	if err := r.pub.Publish(ctx, p.msg, p.pos); err != nil {
		return err
	}
	r.pos = p.pos
	return nil
}

func (c *Capture) advance(ctx context.Context, r *reader, pos buffer.Position) error {
	if err := r.pub.Advance(ctx, pos); err != nil {
		return err
	}
	r.pos = pos
	return nil
}

// deadLetter turns env into a dead-letter envelope; emit counts it.
func deadLetter(env *envelope.Envelope, raw bson.Raw, msg, path string) {
	env.Kind = envelope.KindDeadLetter
	env.Ordinal = 0 // change envelopes only: nothing is applied from it
	rawJSON := json.RawMessage("null")
	if raw != nil {
		rawJSON = json.RawMessage(extJSON(raw))
	} else if env.DocumentKey != "" {
		// The event without its body (too large for the buffer): its
		// resume token and key, as the change event holds them, so that
		// two such events of one document are two dead letters.
		token, _ := json.Marshal(env.Token)
		rawJSON = json.RawMessage(`{"_id":{"_data":` + string(token) + `},"documentKey":` + env.DocumentKey + `}`)
	}
	env.DeadLetter = &envelope.DeadLetter{Error: msg, Path: path, RawEvent: rawJSON}
}

// errReopen makes read reopen the change stream after the position (an
// invalidate event ends the cursor; startAfter its token goes on).
var errReopen = errors.New("reopen the change stream")

// control handles drop, rename, dropDatabase and invalidate. A drop, rename
// or dropDatabase holds each affected collection (and a rename's target,
// configured or not, so that pointing the configuration at it needs the
// resync too): a control envelope goes on its subject, so the applier
// records the event, and the hold is stored before capture reads past the
// event; the other collections stream on (ARCHITECTURE.md, guarantees 3
// and 5). An invalidate, which ends the cursor after such an event, makes
// the stream reopen after it.
func (c *Capture) control(ctx context.Context, r *reader, ev *transform.Event, pos buffer.Position) error {
	if ev.OperationType == transform.OpInvalidate {
		if err := c.advance(ctx, r, pos); err != nil {
			return err
		}
		c.log.Info("change stream invalidated; reopening after the invalidate event", "cluster_time", ev.ClusterTime)
		return errReopen
	}
	var affected []string
	switch ev.OperationType {
	case transform.OpDropDatabase:
		for _, ns := range c.names {
			if strings.HasPrefix(ns, ev.DB+".") {
				affected = append(affected, ns)
			}
		}
	default:
		for _, ns := range []string{ev.Namespace(), ev.ToDB + "." + ev.ToColl} {
			if _, ok := c.mappings[ns]; ok {
				affected = append(affected, ns)
			}
		}
	}
	to := ev.ToDB + "." + ev.ToColl
	for _, ns := range affected {
		if r.skips(ns, ev.ClusterTime) {
			continue // held already: read again after a restart, or a second drop
		}
		data, err := envelope.Encode(&envelope.Envelope{
			Kind:        envelope.KindControl,
			Collection:  ns,
			ClusterTime: ev.ClusterTime,
			WallTime:    c.skew.local(ev.WallTime),
			Token:       ev.Token,
			Operation:   ev.OperationType,
		})
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		// On every partition, so that each partition's applier stops
		// there; one message id per subject: ids are unique per stream.
		for _, part := range c.partitions(ns) {
			msg := buffer.Message{Subject: c.buf.PartitionSubject(ns, part), MsgID: buffer.MsgID(ev.Token + ":" + part.Unit(ns)), Data: data}
			if err := r.pub.Publish(ctx, msg, buffer.Position{}); err != nil {
				return err
			}
		}
		reason, recovery := holdText(ev, ns)
		if err := c.hold(ctx, r, ns, reason, recovery, ev.ClusterTime); err != nil {
			return err
		}
		if ev.OperationType == transform.OpRename && ns == ev.Namespace() && !r.skips(to, ev.ClusterTime) {
			if err := c.hold(ctx, r, to, fmt.Sprintf("renamed from %s in MongoDB, which this replicator was copying", ns),
				resyncCollection(to), ev.ClusterTime); err != nil {
				return err
			}
		}
	}
	// Wait until the control envelopes are stored before reading on.
	if err := r.pub.Flush(ctx); err != nil {
		return err
	}
	return c.advance(ctx, r, pos)
}

// holdText is what the operator is told about a collection held by a drop,
// rename or dropDatabase event: why, and the steps that recover.
func holdText(ev *transform.Event, ns string) (reason, recovery string) {
	switch ev.OperationType {
	case transform.OpDrop:
		return "the collection was dropped in MongoDB",
			resyncCollection(ns) + " (copies what the collection holds now, nothing if it stays dropped, and removes the other rows), or remove it from the configuration"
	case transform.OpRename:
		to := ev.ToDB + "." + ev.ToColl
		if ns == to {
			return fmt.Sprintf("collection %s was renamed to it in MongoDB", ev.Namespace()), resyncCollection(ns)
		}
		return fmt.Sprintf("the collection was renamed to %s in MongoDB", to),
			fmt.Sprintf("set this collection's source to %s in the configuration, restart, then %s", to, resyncCollection(to))
	default:
		return fmt.Sprintf("database %s was dropped in MongoDB", ev.DB),
			resyncCollection(ns) + ", or remove it from the configuration"
	}
}

// extJSON renders BSON as canonical Extended JSON.
func extJSON(doc bson.Raw) string {
	if doc == nil {
		return ""
	}
	if s, ok := keyJSON(doc); ok {
		return s
	}
	b, err := bson.MarshalExtJSON(doc, true, false)
	if err != nil {
		return fmt.Sprintf("%q", "unreadable BSON: "+err.Error())
	}
	return string(b)
}
