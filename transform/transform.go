package transform

import (
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Transform implements Transformer. Errors are *Error.
func (m *Mapping) Transform(ev *Event) (Result, error) {
	if r, ok := controlResult(ev); ok {
		return r, nil
	}
	if !ev.inNamespace(m.ns) {
		return Result{}, &Error{Collection: m.ns, Err: fmt.Errorf("event for %s: %w", ev.Namespace(), ErrUnknownNamespace)}
	}
	switch ev.OperationType {
	case OpInsert, OpReplace, OpUpdate:
		if ev.DocumentKey == nil {
			return Result{}, &Error{Collection: m.ns, Err: errors.New("event has no documentKey")}
		}
		if ev.FullDocument == nil {
			if ev.OperationType == OpUpdate {
				return Result{Kind: KindMissingDocument, Namespace: m.ns}, nil
			}
			return Result{}, m.newError(ev.DocumentKey, "", errors.New("insert or replace event has no fullDocument"))
		}
		doc := rawValue{typ: bsonDocument, data: ev.FullDocument}
		skip, err := m.skip(doc)
		if err != nil {
			return Result{}, m.newError(ev.DocumentKey, "", err)
		}
		if skip {
			r := Result{Kind: KindSkipped, Namespace: m.ns}
			if ev.OperationType != OpInsert {
				mut, err := m.deleteRow(ev.DocumentKey)
				if err != nil {
					return Result{}, err
				}
				r.Mutations = []Mutation{mut}
			}
			return r, nil
		}
		mut, err := m.upsertRow(ev.FullDocument, ev.DocumentKey)
		if err != nil {
			return Result{}, err
		}
		return Result{Kind: KindRows, Mutations: []Mutation{mut}, Namespace: m.ns}, nil
	case OpDeleteEvent:
		if ev.DocumentKey == nil {
			return Result{}, &Error{Collection: m.ns, Err: errors.New("delete event has no documentKey")}
		}
		mut, err := m.deleteRow(ev.DocumentKey)
		if err != nil {
			return Result{}, err
		}
		return Result{Kind: KindRows, Mutations: []Mutation{mut}, Namespace: m.ns}, nil
	}
	return Result{}, &Error{Collection: m.ns, Err: fmt.Errorf("%w %q", ErrUnsupportedOperation, ev.OperationType)}
}

// SnapshotRow turns a document read by a snapshot into the same upsert an
// insert event of it would give. ct is the snapshot's start time T0 (the
// version the sink stores; the mutation itself does not hold it). It
// returns ErrSkipped (wrapped in *Error) for a document the filter skips.
func (m *Mapping) SnapshotRow(doc bson.Raw, ct ClusterTime) (Mutation, error) {
	_ = ct
	id, err := lookup(doc, "_id")
	if err != nil || id.missing() {
		if err == nil {
			err = errors.New("document has no _id")
		}
		return Mutation{}, &Error{Collection: m.ns, Err: err}
	}
	// The documentKey of an unsharded collection: {_id: ...}.
	key := make([]byte, 0, 4+1+4+len(id.data)+1)
	key = append(key, 0, 0, 0, 0, id.typ)
	key = append(key, "_id\x00"...)
	key = append(key, id.data...)
	key = append(key, 0)
	n := len(key)
	key[0], key[1], key[2], key[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	skip, err := m.skip(rawValue{typ: bsonDocument, data: doc})
	if err != nil {
		return Mutation{}, m.newError(key, "", err)
	}
	if skip {
		return Mutation{}, m.newError(key, "", ErrSkipped)
	}
	return m.upsertRow(doc, key)
}

// keyValues reads the key columns into key (len(m.keyCols) values, their
// texts in a) from the documentKey or, for a path the documentKey lacks,
// from doc (nil for deletes). Key paths should be _id or shard-key fields,
// which every documentKey holds. A text column of path _id writes the _id
// key text (idtext.go), so deletes find the rows upserts wrote.
func (m *Mapping) keyValues(a *arena, key []Value, docKey, doc []byte) error {
	dk := rawValue{typ: bsonDocument, data: docKey}
	for i, ci := range m.keyCols {
		col := &m.root.cols[ci]
		if col.derive != nil {
			v, err := a.derive(col.derive, uuid5Inputs{value: func(p *fieldPath) (rawValue, error) {
				v, err := p.resolve(dk)
				if err == nil && v.missing() {
					if doc == nil {
						return v, fmt.Errorf("documentKey: %w", ErrMissingKey)
					}
					v, err = p.resolve(rawValue{typ: bsonDocument, data: doc})
				}
				return v, err
			}}, m.order, true)
			if err != nil {
				f, err := col.errField(err)
				return m.newError(docKey, f, err)
			}
			key[i] = v
			continue
		}
		v, err := col.path.resolve(dk)
		if err == nil && v.missing() && doc != nil {
			v, err = col.path.resolve(rawValue{typ: bsonDocument, data: doc})
		}
		if err != nil {
			return m.newError(docKey, col.path.text, err)
		}
		switch {
		case col.idKey && !v.missing():
			// A null _id is a document too (its key text is ~null).
			key[i], err = a.idText(col.typ, v, m.order)
		case v.isNullish():
			return m.newError(docKey, col.path.text, fmt.Errorf("documentKey: %w", ErrMissingKey))
		case col.vmap != nil:
			key[i], err = col.vmap.lookup(v)
		default:
			key[i], err = a.convert(col.typ, v, m.order)
		}
		if err != nil {
			return m.newError(docKey, col.path.text, err)
		}
	}
	return nil
}

func (m *Mapping) deleteRow(docKey []byte) (Mutation, error) {
	if m.identity {
		// The documentKey does not hold the key: the sink finds the row
		// by the document's identity.
		id, err := m.identityText(newArena(2*len(docKey)), docKey)
		if err != nil {
			return Mutation{}, err
		}
		return Mutation{Table: m.root.def.Name, Op: OpDelete, Identity: id}, nil
	}
	key := make([]Value, len(m.keyCols))
	// Twice the documentKey holds its ObjectIds as hex.
	if err := m.keyValues(newArena(2*len(docKey)), key, docKey, nil); err != nil {
		return Mutation{}, err
	}
	return Mutation{Table: m.root.def.Name, Op: OpDelete, Key: key}, nil
}
