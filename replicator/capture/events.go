package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/envelope"
	"github.com/mongopg/replicator/transform"
)

// handle turns one change event into its envelope and publishes it.
func (c *Capture) handle(ctx context.Context, r *reader, raw bson.Raw) error {
	ev, err := transform.ParseEvent(raw)
	if err != nil {
		return &StopError{Reason: fmt.Sprintf("unreadable change event: %v", err), Recovery: resyncAll()}
	}
	ns := ev.Namespace()
	pos := buffer.Position{Token: ev.Token, ClusterTime: ev.ClusterTime}
	if ev.Token == "" {
		return &StopError{Collection: ns, Reason: "change event without a resume token", Recovery: resyncAll()}
	}
	label := ns
	if _, ok := c.mappings[ns]; !ok {
		label = "other"
	}
	c.met.events.WithLabelValues(label, ev.OperationType).Inc()
	if !ev.WallTime.IsZero() {
		c.met.touch(ev.WallTime)
		r.vouch = ev.WallTime
	}
	switch ev.OperationType {
	case transform.OpDrop, transform.OpRename, transform.OpDropDatabase, transform.OpInvalidate:
		return c.control(ctx, r, ev)
	}
	m, ok := c.mappings[ns]
	if !ok {
		// Outside the configured namespaces (the $match should keep such
		// events away): nothing to apply, the position moves on.
		return c.advance(ctx, r, pos)
	}
	env := &envelope.Envelope{
		Kind:        envelope.KindChange,
		Collection:  ns,
		ClusterTime: ev.ClusterTime,
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
			return fmt.Errorf("capture: transform %s: %w", ns, err)
		}
		if m.Config().OnError == transform.OnErrorHalt {
			return &StopError{
				Collection: ns,
				Reason:     fmt.Sprintf("a document cannot be transformed and the collection says on_error: halt: %v", err),
				Recovery:   "fix the mapping or the document, then " + resyncCollection(ns),
			}
		}
		c.deadLetter(env, raw, err.Error(), te.Path)
	case res.Kind == transform.KindControl:
		return c.control(ctx, r, ev)
	case res.Kind == transform.KindSkipped && len(res.Mutations) == 0:
		return c.advance(ctx, r, pos)
	default:
		// KindRows, KindSkipped with its delete, and KindMissingDocument
		// (no mutation: the envelope still moves the applied position).
		env.Mutations = res.Mutations
	}
	data, err := envelope.Encode(env)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	if limit := c.buf.MaxPayload(); limit > 0 && int64(len(data)) > limit-4096 {
		// Too large for the buffer: dead-letter it with the key, not the body.
		env.Mutations = nil
		c.deadLetter(env, nil, fmt.Sprintf("event of %d bytes exceeds the buffer's max payload of %d bytes", len(data), limit), "")
		if data, err = envelope.Encode(env); err != nil {
			return fmt.Errorf("capture: %w", err)
		}
	}
	if err := r.pub.Publish(ctx, buffer.Message{Subject: c.buf.Subject(ns), MsgID: ev.Token, Data: data}, pos); err != nil {
		return err
	}
	r.pos = pos
	return nil
}

func (c *Capture) advance(ctx context.Context, r *reader, pos buffer.Position) error {
	if err := r.pub.Advance(ctx, pos); err != nil {
		return err
	}
	r.pos = pos
	return nil
}

func (c *Capture) deadLetter(env *envelope.Envelope, raw bson.Raw, msg, path string) {
	env.Kind = envelope.KindDeadLetter
	rawJSON := json.RawMessage("null")
	if raw != nil {
		rawJSON = json.RawMessage(extJSON(raw))
	} else if env.DocumentKey != "" {
		rawJSON = json.RawMessage(`{"documentKey":` + env.DocumentKey + `}`)
	}
	env.DeadLetter = &envelope.DeadLetter{Error: msg, Path: path, RawEvent: rawJSON}
	c.met.deadLetters.WithLabelValues(env.Collection).Inc()
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
		msg := buffer.Message{Subject: c.buf.Subject(ns), MsgID: ev.Token + ":" + ns, Data: data}
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
	b, err := bson.MarshalExtJSON(doc, true, false)
	if err != nil {
		return fmt.Sprintf("%q", "unreadable BSON: "+err.Error())
	}
	return string(b)
}
