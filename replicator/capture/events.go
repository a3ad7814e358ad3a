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
		WallTime:    ev.WallTime,
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
			p.stop = &StopError{
				Collection: ns,
				Reason:     fmt.Sprintf("a document cannot be transformed and the collection says on_error: halt: %v", err),
				Recovery:   "fix the mapping or the document, then " + resyncCollection(ns),
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
	p.msg = buffer.Message{Subject: c.buf.Subject(ns), MsgID: buffer.MsgID(ev.Token), Data: data}
	return p
}

// emit publishes one prepared event, or stops at it, from the ordered
// stage: events are emitted strictly in change-stream order, so the
// publisher's contiguous prefix and per-document order are those of the
// stream (invariants 3 and 4).
func (c *Capture) emit(ctx context.Context, r *reader, p *prepared) error {
	if p.ev == nil {
		return p.stop
	}
	ev := p.ev
	c.met.events.WithLabelValues(p.label, ev.OperationType).Inc()
	if !ev.WallTime.IsZero() {
		c.met.touch(ev.WallTime)
		r.vouch = ev.WallTime
	}
	switch {
	case p.control:
		return c.control(ctx, r, ev)
	case p.stop != nil:
		return p.stop
	case p.msg.Data == nil:
		return c.advance(ctx, r, p.pos)
	}
	if p.deadLetter {
		c.met.deadLetters.WithLabelValues(ev.Namespace()).Inc()
	}
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
		rawJSON = json.RawMessage(`{"documentKey":` + env.DocumentKey + `}`)
	}
	env.DeadLetter = &envelope.DeadLetter{Error: msg, Path: path, RawEvent: rawJSON}
}

// control handles drop, rename, dropDatabase and invalidate: it publishes
// a control envelope on each affected collection's subject (so the applier
// can record it), waits until they are stored, and stops the stream without
// moving the position past the event (invariant 5).
func (c *Capture) control(ctx context.Context, r *reader, ev *transform.Event) error {
	var affected []string
	switch ev.OperationType {
	case transform.OpDropDatabase:
		for _, ns := range c.names {
			if strings.HasPrefix(ns, ev.DB+".") {
				affected = append(affected, ns)
			}
		}
	case transform.OpInvalidate:
		affected = c.names
	default:
		for _, ns := range []string{ev.Namespace(), ev.ToDB + "." + ev.ToColl} {
			if _, ok := c.mappings[ns]; ok {
				affected = append(affected, ns)
			}
		}
	}
	for _, ns := range affected {
		data, err := envelope.Encode(&envelope.Envelope{
			Kind:        envelope.KindControl,
			Collection:  ns,
			ClusterTime: ev.ClusterTime,
			WallTime:    ev.WallTime,
			Token:       ev.Token,
			Operation:   ev.OperationType,
		})
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		// One message id per subject: ids are unique per stream.
		msg := buffer.Message{Subject: c.buf.Subject(ns), MsgID: buffer.MsgID(ev.Token + ":" + ns), Data: data}
		if err := r.pub.Publish(ctx, msg, buffer.Position{}); err != nil {
			return err
		}
	}
	stop := &StopError{Recovery: resyncAll()}
	switch ev.OperationType {
	case transform.OpDrop:
		stop.Collection = ev.Namespace()
		stop.Reason = "the collection was dropped in MongoDB"
		stop.Recovery = resyncCollection(ev.Namespace()) + " (or remove it from the configuration)"
	case transform.OpRename:
		stop.Collection = ev.Namespace()
		stop.Reason = fmt.Sprintf("the collection was renamed to %s.%s in MongoDB", ev.ToDB, ev.ToColl)
		stop.Recovery = "update the configuration's source, then " + resyncCollection(ev.Namespace())
	case transform.OpDropDatabase:
		stop.Reason = fmt.Sprintf("database %s was dropped in MongoDB", ev.DB)
	case transform.OpInvalidate:
		stop.Reason = "the change stream was invalidated (a watched collection or database was dropped or renamed)"
	}
	c.log.Error("capture stopping", "collection", stop.Collection, "operation", ev.OperationType,
		"cluster_time", ev.ClusterTime, "recovery", stop.Recovery)
	return stop
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
