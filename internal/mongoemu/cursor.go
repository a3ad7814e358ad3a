package mongoemu

import (
	"strconv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

const maxBatchBytes = 16 * 1024 * 1024

// cursorRegistry holds open cursors by id.
type cursorRegistry struct {
	mu   sync.Mutex
	next int64
	m    map[int64]any // *findCursor or *changeStream
}

func newCursorRegistry() *cursorRegistry {
	return &cursorRegistry{next: 1000, m: make(map[int64]any)}
}

func (r *cursorRegistry) add(c any) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	r.m[r.next] = c
	return r.next
}

func (r *cursorRegistry) get(id int64) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[id]
}

func (r *cursorRegistry) remove(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[id]
	delete(r.m, id)
	return ok
}

// findCursor serves the remaining results of a find or aggregate.
type findCursor struct {
	mu   sync.Mutex
	id   int64
	ns   string
	docs [][]byte
	pos  int
}

// nextBatch returns up to n documents (0 = as many as fit in 16 MiB).
func (c *findCursor) nextBatch(n int) [][]byte {
	var out [][]byte
	size := 0
	for c.pos < len(c.docs) {
		if n > 0 && len(out) >= n {
			break
		}
		d := c.docs[c.pos]
		if len(out) > 0 && size+len(d) > maxBatchBytes {
			break
		}
		out = append(out, d)
		size += len(d)
		c.pos++
	}
	return out
}

func (c *findCursor) exhausted() bool { return c.pos >= len(c.docs) }

// cursorDoc builds the {cursor: {...}} reply body.
func cursorDoc(batchKey string, docs [][]byte, id int64, ns string, pbrt *token) *Doc {
	size := 64 + len(ns)
	for _, d := range docs {
		size += len(d) + 8
	}
	buf := make([]byte, 0, size)
	idx, buf := bsoncore.AppendDocumentStart(buf)
	aidx, buf := bsoncore.AppendArrayElementStart(buf, batchKey)
	for i, d := range docs {
		buf = append(buf, byte(bsoncore.TypeEmbeddedDocument))
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, 0)
		buf = append(buf, d...)
	}
	buf, _ = bsoncore.AppendArrayEnd(buf, aidx)
	if pbrt != nil {
		buf = bsoncore.AppendDocumentElement(buf, "postBatchResumeToken", pbrt.doc().Bytes())
	}
	buf = bsoncore.AppendInt64Element(buf, "id", id)
	buf = bsoncore.AppendStringElement(buf, "ns", ns)
	buf, _ = bsoncore.AppendDocumentEnd(buf, idx)
	return docOf("cursor", vRawDoc(buf), "ok", 1.0)
}

// batchSizeArg reads cursor.batchSize (aggregate) or batchSize (find).
func batchSizeArg(v Val, def int) (int, error) {
	if !v.exists() {
		return def, nil
	}
	n, ok := v.asInt64()
	if !ok || n < 0 {
		return 0, errBadValue("batchSize must be a non-negative number")
	}
	return int(n), nil
}

// openCursor returns the first batch (first documents; 0 means an empty
// first batch) and registers a cursor for the rest unless single is set.
func (x *cmdCtx) openCursor(ns string, docs [][]byte, first int, single bool) *Doc {
	c := &findCursor{ns: ns, docs: docs}
	var batch [][]byte
	switch {
	case single:
		batch = c.nextBatch(first)
		c.pos = len(docs)
	case first > 0:
		batch = c.nextBatch(first)
	}
	var id int64
	if !c.exhausted() {
		id = x.s.cursors.add(c)
		c.id = id
	}
	return cursorDoc("firstBatch", batch, id, ns, nil)
}

func cmdKillCursors(x *cmdCtx) (*Doc, error) {
	var killed, notFound []Val
	for _, v := range x.body.Get("cursors").elems() {
		id, _ := v.asInt64()
		cur := x.s.cursors.get(id)
		if cs, ok := cur.(*changeStream); ok {
			cs.kill()
		}
		if x.s.cursors.remove(id) {
			killed = append(killed, vInt64(id))
		} else {
			notFound = append(notFound, vInt64(id))
		}
	}
	return docOf("cursorsKilled", vArr(killed), "cursorsNotFound", vArr(notFound),
		"cursorsAlive", vArr(nil), "cursorsUnknown", vArr(nil), "ok", 1.0), nil
}

func cmdGetMore(x *cmdCtx) (*Doc, error) {
	id, _ := x.body.Get("getMore").asInt64()
	coll := x.body.Get("collection").str()
	cur := x.s.cursors.get(id)
	if cur == nil {
		return nil, newErr(codeCursorNotFound, "cursor id %d not found", id)
	}
	n, err := batchSizeArg(x.body.Get("batchSize"), 0)
	if err != nil {
		return nil, err
	}
	switch c := cur.(type) {
	case *findCursor:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.ns != x.db+"."+coll {
			return nil, newErr(13, "Requested getMore on namespace '%s.%s', but cursor belongs to a different namespace %s", x.db, coll, c.ns)
		}
		batch := c.nextBatch(n)
		rid := c.id
		if c.exhausted() {
			x.s.cursors.remove(c.id)
			rid = 0
		}
		return cursorDoc("nextBatch", batch, rid, c.ns, nil), nil
	case *changeStream:
		return c.getMore(x, n)
	}
	return nil, newErr(codeCursorNotFound, "cursor id %d not found", id)
}
