package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// message is one event of one collection, decoded: a buffer message, or
// one frame of a batch message (envelope.Frames), which shares its seq.
type message struct {
	seq uint64 // JetStream stream sequence
	// frame is the event's place in its buffer message and frames the
	// number of events in it (1 for a message of one event); a batch
	// message's frames follow each other in a slice of messages.
	frame, frames int
	data          []byte
	env           *envelope.Envelope // nil when decoding failed
	// bad, when set, turns the message into a dead letter: it could not be
	// decoded, is not a valid envelope for this collection, or failed to
	// apply on its own (poison isolation).
	bad *deadLetter
	// gap, when set, holds the stream sequences before this message that
	// the stream removed before they were delivered (gaps.go).
	gap *seqGap
}

// deadLetter is one row of replicator.dead_letters.
type deadLetter struct {
	stage, reason, err   string
	path, sqlstate       string
	documentKey          string
	rawEvent             []byte // JSON
	rawBytes             []byte // when not JSON
	seq                  uint64
	clusterTS, clusterIn uint32
	// twin: the batch did not write it, an unresolved dead letter of the
	// same event exists (insertEventDeadLetter).
	twin bool
}

// Dead-letter stages and reasons (the reason is also a metric label, so the
// set is small and fixed).
const (
	stageDecode    = "decode"
	stageTransform = "transform"
	stageApply     = "apply"

	reasonDecode          = "decode"
	reasonTransform       = "transform"
	reasonWrongCollection = "wrong_collection"
	reasonInvalid         = "invalid_mutation"
	reasonConstraint      = "constraint"
	reasonData            = "data"
	reasonLimit           = "limit"
)

// deadLetterReasons lists every reason, so each collection's dead-letter
// counter starts at zero for each (an alert on increase() then sees the
// first dead letter after a start).
var deadLetterReasons = []string{reasonDecode, reasonTransform, reasonWrongCollection, reasonInvalid,
	reasonConstraint, reasonData, reasonLimit}

// decodeEnvelope is how the applier decodes every buffer message:
// envelope.DecodeShared, so the result's strings share data's memory. The
// data of a received message is never written and lives as long as the
// batch that uses the result. Anything envelope.DecodeShared refuses (not
// a version 2 envelope, cut short, a change without an ordinal) is an
// error.
func decodeEnvelope(data []byte) (*envelope.Envelope, error) {
	return envelope.DecodeShared(data)
}

// decodeFrames appends to dst the events of one buffer message for
// namespace ns: each frame of a batch (envelope.Frames), or the message
// itself. It never fails: a frame that does not decode becomes a dead
// letter, and so does a batch whose frames cannot be told apart, as a
// whole.
func decodeFrames(dst []message, ns string, seq uint64, data []byte) []message {
	frames, err := envelope.Frames(data)
	if err != nil {
		m := message{seq: seq, data: data}
		m.bad = &deadLetter{stage: stageDecode, reason: reasonDecode, err: err.Error(), seq: seq}
		m.bad.setRaw(data)
		return append(dst, m)
	}
	for k, f := range frames {
		m := decode(ns, seq, f)
		m.frame, m.frames = k, len(frames)
		if len(frames) > 1 && m.bad != nil && m.bad.stage == stageDecode {
			m.bad.err = fmt.Sprintf("frame %d of %d: %s", k+1, len(frames), m.bad.err)
		}
		dst = append(dst, m)
	}
	return dst
}

// decode turns one envelope's data into a message for namespace ns. It
// never fails: an undecodable envelope becomes a dead letter.
func decode(ns string, seq uint64, data []byte) message {
	m := message{seq: seq, frames: 1, data: data}
	env, err := decodeEnvelope(data)
	if err != nil {
		m.bad = &deadLetter{stage: stageDecode, reason: reasonDecode, err: err.Error(), seq: seq}
		m.bad.setRaw(data)
		return m
	}
	m.env = env
	if env.Collection != ns {
		m.bad = m.deadLetter(stageApply, reasonWrongCollection, fmt.Sprintf("envelope for collection %q on the subject of %q", env.Collection, ns), "", "")
	}
	return m
}

// ends reports whether m is the last event of its buffer message: a
// checkpoint at m.seq covers it and every event before it.
func (m *message) ends() bool { return m.frame >= m.frames-1 }

// deadLetter describes m as a dead letter of an apply-side stage, keeping
// the envelope as the raw event.
func (m *message) deadLetter(stage, reason, msg, path, sqlstate string) *deadLetter {
	d := &deadLetter{stage: stage, reason: reason, err: msg, path: path, sqlstate: sqlstate, seq: m.seq}
	d.setRaw(m.readable())
	if m.env != nil {
		d.documentKey = m.env.DocumentKey
		d.clusterTS, d.clusterIn = m.env.ClusterTime.T, m.env.ClusterTime.I
	}
	return d
}

// readable is m's envelope as JSON for the metadata tables (a decoded
// envelope is rendered; one that did not decode stays as received).
func (m *message) readable() []byte {
	if m.env == nil {
		return m.data
	}
	b, err := json.Marshal(m.env)
	if err != nil {
		return m.data
	}
	return b
}

// poisoned marks m as failing on its own with err (a PostgreSQL error of
// class 22, 23 or 54).
func (m *message) poisoned(err error) {
	var pgErr *pgconn.PgError
	reason, code, path := reasonData, "", ""
	if errors.As(err, &pgErr) {
		code, path = pgErr.Code, pgErr.ColumnName
		switch {
		case strings.HasPrefix(code, "23"):
			reason = reasonConstraint
		case strings.HasPrefix(code, "54"):
			reason = reasonLimit
		}
		if pgErr.TableName != "" && path != "" {
			path = pgErr.TableName + "." + path
		}
	}
	m.bad = m.deadLetter(stageApply, reason, err.Error(), path, code)
}

// rootWrite is the newest write of one root key within a batch.
type rootWrite struct {
	op       transform.Op
	ver      transform.Version
	key      []transform.Value
	values   []transform.Value
	children []transform.ChildRows
	// identity is the document's identity, for a root keyed by it.
	identity string
	// insert: the write comes from an insert event, or an insert event
	// of the same key came earlier in the batch, so its key is new unless
	// the event is applied again (a replay or redelivery), a snapshot
	// loaded the document too, or it has a tombstone (fresh.go).
	insert bool
}

// batchPlan is what one transaction writes.
type batchPlan struct {
	// last is the checkpoint after commit: the sequence of the last
	// buffer message whose events are all in the batch, 0 when none is
	// (a batch that ends inside a message leaves the checkpoint before it).
	last    uint64
	ct      transform.ClusterTime
	wall    time.Time // source time of the newest event or heartbeat
	upserts []*rootWrite
	deletes []*rootWrite
	// children[i] holds the rows of tables.desc[i] of the upserts, each
	// with its root's version.
	children    [][]row
	deadLetters []*deadLetter
	controls    []*message
	gaps        []*seqGap
	ops         map[string]int // events by operation (metrics)
	rows        int            // staged rows, to choose COPY or arrays
}

// row is one staged row: values in relation column order and the version
// of its root row.
type row struct {
	vals []transform.Value
	ver  transform.Version
}

// sourceTime is the source wall time of an envelope: its wall time, else
// its cluster time's seconds.
func sourceTime(e *envelope.Envelope) time.Time {
	if !e.WallTime.IsZero() {
		return e.WallTime
	}
	if e.ClusterTime.T != 0 {
		return time.Unix(int64(e.ClusterTime.T), 0)
	}
	return time.Time{}
}

// plan builds the writes of msgs (in sequence order, all above the
// checkpoint). The same root key written twice keeps only the newest
// version; an envelope whose mutations do not fit the tables becomes a dead
// letter as a whole, so no event is ever applied half-way.
func plan(ts *tableSet, msgs []message) *batchPlan {
	p := &batchPlan{ops: map[string]int{}}
	latest := map[string]*rootWrite{}
	var order []string
	for i := range msgs {
		m := &msgs[i]
		if m.ends() {
			p.last = m.seq
			if m.env != nil && !m.env.ClusterTime.IsZero() {
				// The checkpoint's cluster time is its message's (its last
				// event's), dead letter or not (divergence.go compares
				// them).
				p.ct = m.env.ClusterTime
			}
		}
		if m.gap != nil {
			p.gaps = append(p.gaps, m.gap)
		}
		if m.env != nil && m.bad == nil {
			if t := sourceTime(m.env); !t.IsZero() {
				p.wall = t
			}
		}
		if m.bad == nil && m.env.Kind == envelope.KindChange {
			if err := validate(ts, m.env.Mutations); err != nil {
				m.bad = m.deadLetter(stageApply, reasonInvalid, err.Error(), "", "")
			}
		}
		if m.bad != nil {
			p.deadLetters = append(p.deadLetters, m.bad)
			p.ops["dead_letter"]++
			continue
		}
		switch m.env.Kind {
		case envelope.KindHeartbeat:
			p.ops["heartbeat"]++
		case envelope.KindControl:
			p.controls = append(p.controls, m)
			p.ops["control"]++
		case envelope.KindDeadLetter:
			p.deadLetters = append(p.deadLetters, transformDeadLetter(m))
			p.ops["dead_letter"]++
		case envelope.KindChange:
			p.ops[operationLabel(m.env)]++
			// The ordinal orders writes inside the cluster time as the
			// source did, whatever order the buffer stored them in; every
			// change envelope that decoded has one (envelope.DecodeShared
			// refuses one without).
			ver := transform.Version{ClusterTime: m.env.ClusterTime, Seq: uint64(m.env.Ordinal)}
			for _, mu := range m.env.Mutations {
				k := keyString(mu.Key)
				if ts.root.identity {
					// The document, not its key (which may change), is
					// what a version orders.
					k = mu.Identity
				}
				w, seen := latest[k]
				if seen && ver.Less(w.ver) {
					// An insert delivered after a newer write of its key
					// still makes the key an inserted one.
					w.insert = w.insert || m.env.Operation == "insert" && w.op == transform.OpUpsert
					continue
				}
				if !seen {
					order = append(order, k)
				}
				// A key inserted earlier in the batch is as new as one
				// inserted by its newest write.
				inserted := m.env.Operation == "insert" || seen && w.insert
				latest[k] = &rootWrite{op: mu.Op, ver: ver, key: mu.Key, values: mu.Values, children: mu.Children, identity: mu.Identity,
					insert: inserted && mu.Op == transform.OpUpsert}
			}
		default:
			p.deadLetters = append(p.deadLetters, m.deadLetter(stageApply, reasonInvalid, fmt.Sprintf("unknown envelope kind %q", m.env.Kind), "", ""))
			p.ops["dead_letter"]++
		}
	}
	for _, k := range order {
		w := latest[k]
		p.rows++
		if w.op == transform.OpDelete {
			p.deletes = append(p.deletes, w)
			continue
		}
		p.upserts = append(p.upserts, w)
		for j := range w.children {
			cr := &w.children[j]
			// The root key columns always hold the parent's key, so the
			// child joins its parent exactly (a table referencing another
			// root column holds the values transform wrote there).
			child := ts.desc[ts.index[cr.Table]]
			byKey := child.byKey(ts.root)
			for _, r := range cr.Rows {
				if byKey {
					for j, pos := range child.rootKeyIdx {
						r[pos] = w.key[j]
					}
				}
				p.rows++
			}
		}
	}
	p.children = childRows(ts, p.upserts)
	return p
}

// childRows gathers the child rows of upserts per descendant table, each
// with its root's version.
func childRows(ts *tableSet, upserts []*rootWrite) [][]row {
	out := make([][]row, len(ts.desc))
	for _, w := range upserts {
		for _, cr := range w.children {
			ci := ts.index[cr.Table]
			for _, r := range cr.Rows {
				out[ci] = append(out[ci], row{vals: r, ver: w.ver})
			}
		}
	}
	return out
}

// keyString identifies a root key inside one batch. Values never hold a
// NUL byte (transform.Value), so NUL separates them unambiguously.
func keyString(key []transform.Value) string {
	var b strings.Builder
	for _, v := range key {
		if v.Valid {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
		b.WriteString(v.Text)
		b.WriteByte(0)
	}
	return b.String()
}

func operationLabel(e *envelope.Envelope) string {
	switch e.Operation {
	case "insert", "update", "replace", "delete", "snapshot":
		return e.Operation
	}
	if len(e.Mutations) > 0 && e.Mutations[0].Op == transform.OpDelete {
		return "delete"
	}
	return "upsert"
}

// setRaw keeps b as the dead letter's raw event: in raw_event when jsonb
// can hold it, else in raw_bytes. jsonb refuses invalid JSON and the
// \u0000 escape (SQLSTATE 22P05), and a document with a NUL character is
// exactly what transform dead-letters; failing on the dead letter itself
// would record it as an apply error and lose its reason and field path.
func (d *deadLetter) setRaw(b []byte) {
	if json.Valid(b) && !bytes.Contains(b, []byte(`\u0000`)) {
		d.rawEvent, d.rawBytes = b, nil
		return
	}
	d.rawEvent, d.rawBytes = nil, b
}

func transformDeadLetter(m *message) *deadLetter {
	d := m.deadLetter(stageTransform, reasonTransform, "", "", "")
	if dl := m.env.DeadLetter; dl != nil {
		d.err, d.path = dl.Error, dl.Path
		if len(dl.RawEvent) > 0 {
			d.setRaw(dl.RawEvent)
		}
	}
	if d.err == "" {
		d.err = "transform failed (no error text in the envelope)"
	}
	return d
}

// validate checks that mutations fit the collection's tables.
func validate(ts *tableSet, muts []transform.Mutation) error {
	root := ts.root
	for i, mu := range muts {
		if mu.Table != root.def.Name {
			return fmt.Errorf("mutation %d: table %q, want the root table %s", i, mu.Table, root.def.Name)
		}
		if root.identity != (mu.Identity != "") {
			return fmt.Errorf("mutation %d: identity %q, but the rows of %s are keyed by identity: %t", i, mu.Identity, root.def.Name, root.identity)
		}
		if root.identity && mu.Op == transform.OpDelete && len(mu.Key) == 0 {
			continue // found by its identity
		}
		if len(mu.Key) != len(root.keyIdx) {
			return fmt.Errorf("mutation %d: %d key values, %s has %d key columns", i, len(mu.Key), root.def.Name, len(root.keyIdx))
		}
		for j, v := range mu.Key {
			if !v.Valid {
				return fmt.Errorf("mutation %d: key column %s is NULL", i, root.def.Key[j])
			}
		}
		switch mu.Op {
		case transform.OpDelete:
			continue
		case transform.OpUpsert:
		default:
			return fmt.Errorf("mutation %d: unknown operation %d", i, mu.Op)
		}
		if len(mu.Values) != len(root.cols) {
			return fmt.Errorf("mutation %d: %d values, %s has %d columns", i, len(mu.Values), root.def.Name, len(root.cols))
		}
		for j, ki := range root.keyIdx {
			mu.Values[ki] = mu.Key[j] // the key identifies the row
		}
		for _, cr := range mu.Children {
			ci, ok := ts.index[cr.Table]
			if !ok {
				return fmt.Errorf("mutation %d: child table %q is not a descendant of %s", i, cr.Table, root.def.Name)
			}
			w := len(ts.desc[ci].cols)
			for r, vals := range cr.Rows {
				if len(vals) != w {
					return fmt.Errorf("mutation %d: %s row %d has %d values, the table has %d columns", i, cr.Table, r, len(vals), w)
				}
			}
		}
	}
	return nil
}
