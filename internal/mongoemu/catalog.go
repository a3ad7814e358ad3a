package mongoemu

import (
	"crypto/rand"
	"encoding/binary"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

type database struct {
	name  string
	colls map[string]*collection
}

// collection stores documents as raw BSON in insertion order, indexed by
// the canonical encoding of _id (see keyBytes).
type collection struct {
	db, name   string
	uuid       []byte
	options    *Doc // options given to create (for listCollections)
	preAndPost bool // changeStreamPreAndPostImages.enabled
	viewOn     string
	pipeline   Val

	ids     map[string]int // canonical _id -> index into rows
	rows    []row
	deleted int
	indexes []*index // indexes[0] is _id_
}

type row struct {
	key string
	raw []byte // nil when deleted
}

// index is a secondary index definition. Unique indexes other than _id are
// enforced through entries (canonical index key -> canonical _id).
type index struct {
	name    string
	key     *Doc
	spec    *Doc
	unique  bool
	sparse  bool
	entries map[string]string
}

func newUUID() []byte {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b[:]
}

func uuidVal(u []byte) Val { return Val{T: tBinary, B: binPayload(4, u)} }

func newCollection(db, name string) *collection {
	c := &collection{db: db, name: name, uuid: newUUID(), options: &Doc{}, ids: make(map[string]int)}
	c.indexes = []*index{{name: "_id_", key: docOf("_id", 1), spec: docOf("v", 2, "key", docOf("_id", 1), "name", "_id_")}}
	return c
}

func (c *collection) ns() string   { return c.db + "." + c.name }
func (c *collection) count() int   { return len(c.ids) }
func (c *collection) isView() bool { return c.viewOn != "" }

func (c *collection) get(key string) []byte {
	if i, ok := c.ids[key]; ok {
		return c.rows[i].raw
	}
	return nil
}

func (c *collection) insertRow(key string, raw []byte) {
	c.ids[key] = len(c.rows)
	c.rows = append(c.rows, row{key: key, raw: raw})
	c.indexAdd(raw, key)
}

func (c *collection) replaceRow(key string, raw []byte) {
	i, ok := c.ids[key]
	if !ok {
		c.insertRow(key, raw)
		return
	}
	c.indexRemove(c.rows[i].raw)
	c.rows[i].raw = raw
	c.indexAdd(raw, key)
}

func (c *collection) deleteRow(key string) {
	i, ok := c.ids[key]
	if !ok {
		return
	}
	c.indexRemove(c.rows[i].raw)
	c.rows[i].raw = nil
	delete(c.ids, key)
	c.deleted++
	if c.deleted > 1024 && c.deleted > len(c.rows)/2 {
		rows := make([]row, 0, len(c.ids))
		for _, r := range c.rows {
			if r.raw != nil {
				c.ids[r.key] = len(rows)
				rows = append(rows, r)
			}
		}
		c.rows, c.deleted = rows, 0
	}
}

// docs returns the live documents in natural order.
func (c *collection) docs() [][]byte {
	out := make([][]byte, 0, len(c.ids))
	for _, r := range c.rows {
		if r.raw != nil {
			out = append(out, r.raw)
		}
	}
	return out
}

// clone copies the collection for a transaction's private view. Documents
// are immutable byte slices and are shared.
func (c *collection) clone() *collection {
	n := *c
	n.ids = make(map[string]int, len(c.ids))
	n.rows = make([]row, 0, len(c.ids))
	for _, r := range c.rows {
		if r.raw != nil {
			n.ids[r.key] = len(n.rows)
			n.rows = append(n.rows, r)
		}
	}
	n.deleted = 0
	n.indexes = make([]*index, len(c.indexes))
	for i, ix := range c.indexes {
		cp := *ix
		if ix.entries != nil {
			cp.entries = make(map[string]string, len(ix.entries))
			for k, v := range ix.entries {
				cp.entries[k] = v
			}
		}
		n.indexes[i] = &cp
	}
	return &n
}

// indexKey computes the canonical key of doc for a secondary index; ok is
// false when a sparse index does not cover doc.
func (ix *index) indexKey(doc []byte) (string, bool) {
	var b []byte
	root := vRawDoc(doc)
	any := false
	for _, e := range ix.key.E {
		v := getPath(root, e.K)
		if v.exists() {
			any = true
		}
		b = keyBytes(b, v)
	}
	if ix.sparse && !any {
		return "", false
	}
	return string(b), true
}

// checkUnique returns a duplicate-key error if doc (with canonical _id
// idKey) would violate a unique secondary index.
func (c *collection) checkUnique(doc []byte, idKey string) *cmdError {
	for _, ix := range c.indexes[1:] {
		if !ix.unique {
			continue
		}
		k, ok := ix.indexKey(doc)
		if !ok {
			continue
		}
		if owner, dup := ix.entries[k]; dup && owner != idKey {
			kv := &Doc{}
			for _, e := range ix.key.E {
				kv.Append(e.K, getPath(vRawDoc(doc), e.K))
			}
			return dupKeyError(c, ix.name, ix.key, kv)
		}
	}
	return nil
}

func (c *collection) indexAdd(doc []byte, idKey string) {
	for _, ix := range c.indexes[1:] {
		if ix.entries == nil {
			continue
		}
		if k, ok := ix.indexKey(doc); ok {
			ix.entries[k] = idKey
		}
	}
}

func (c *collection) indexRemove(doc []byte) {
	for _, ix := range c.indexes[1:] {
		if ix.entries == nil {
			continue
		}
		if k, ok := ix.indexKey(doc); ok {
			delete(ix.entries, k)
		}
	}
}

func dupKeyError(c *collection, indexName string, keyPattern, keyValue *Doc) *cmdError {
	return &cmdError{Code: codeDuplicateKey, Msg: "E11000 duplicate key error collection: " + c.ns() +
		" index: " + indexName + " dup key: " + shellString(vDoc(keyValue)),
		dupPattern: keyPattern, dupValue: keyValue}
}

// getColl returns the collection or nil. Caller holds s.mu.
func (s *Server) getColl(db, name string) *collection {
	if d := s.dbs[db]; d != nil {
		return d.colls[name]
	}
	return nil
}

// createCollLocked creates a collection and returns it with its "create"
// oplog entry. Caller holds s.mu exclusively.
func (s *Server) createCollLocked(db, name string, opts *Doc) (*collection, *entry) {
	d := s.dbs[db]
	if d == nil {
		d = &database{name: db, colls: make(map[string]*collection)}
		s.dbs[db] = d
	}
	c := newCollection(db, name)
	if opts != nil {
		c.options = opts
		if pp := opts.Get("changeStreamPreAndPostImages"); pp.T == tDoc {
			c.preAndPost = pp.field("enabled").truthy()
		}
		if v := opts.Get("viewOn"); v.T == tString {
			c.viewOn = v.str()
			c.pipeline = opts.Get("pipeline")
		}
	}
	d.colls[name] = c
	desc := &Doc{}
	if c.isView() {
		desc.Append("viewOn", vString(c.viewOn))
		if c.pipeline.exists() {
			desc.Append("pipeline", c.pipeline)
		}
	} else {
		desc.Append("idIndex", vDoc(c.indexes[0].spec.clone()))
	}
	return c, &entry{op: opCreate, db: db, coll: name, uuid: c.uuid, opDesc: desc.Bytes(), isView: c.isView()}
}

// internalDB reports databases excluded from cluster-wide change streams.
func internalDB(db string) bool { return db == "admin" || db == "config" || db == "local" }

func isSystemColl(name string) bool { return strings.HasPrefix(name, "system.") }

var oidCounter atomic.Uint32

var oidProcess = func() [5]byte {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return b
}()

func newObjectID() [12]byte {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:], uint32(time.Now().Unix()))
	copy(b[4:9], oidProcess[:])
	n := oidCounter.Add(1)
	b[9], b[10], b[11] = byte(n>>16), byte(n>>8), byte(n)
	return b
}

// prepareInsert validates a document for insertion, generating _id if
// missing and moving _id to the front. It returns the stored bytes and _id.
func prepareInsert(raw []byte) ([]byte, Val, error) {
	if len(raw) < 5 {
		return nil, missing, errBadValue("invalid document")
	}
	// Fast path: _id is the first field.
	if len(raw) > 8 && raw[5] == '_' && raw[6] == 'i' && raw[7] == 'd' && raw[8] == 0 {
		t := bsoncore.Type(raw[4])
		v, _, ok := bsoncore.ReadValue(raw[9:], t)
		if !ok {
			return nil, missing, errBadValue("invalid document")
		}
		id := Val{T: t, B: v.Data}
		if err := checkID(id); err != nil {
			return nil, missing, err
		}
		return raw, id, nil
	}
	id := rawLookup(raw, "_id")
	if !id.exists() {
		oid := newObjectID()
		id = Val{T: tOID, B: oid[:]}
	}
	if err := checkID(id); err != nil {
		return nil, missing, err
	}
	out := make([]byte, 0, len(raw)+20)
	idx, out := bsoncore.AppendDocumentStart(out)
	out = appendElem(out, "_id", id)
	rem := raw[4 : len(raw)-1]
	for len(rem) > 0 {
		t := bsoncore.Type(rem[0])
		i := 1
		for i < len(rem) && rem[i] != 0 {
			i++
		}
		key := rem[1:i]
		v, r2, ok := bsoncore.ReadValue(rem[i+1:], t)
		if !ok {
			return nil, missing, errBadValue("invalid document")
		}
		if string(key) != "_id" {
			out = append(out, rem[:i+1]...)
			out = append(out, v.Data...)
		}
		rem = r2
	}
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out, id, nil
}

func checkID(id Val) error {
	switch id.T {
	case tArray:
		return newErr(codeInvalidIdField, "The '_id' value cannot be of type array")
	case tRegex:
		return newErr(codeInvalidIdField, "can't use a regex for _id")
	case tUndef:
		return newErr(codeInvalidIdField, "can't use a undefined for _id")
	}
	return nil
}

func idKeyOf(id Val) string {
	var buf [32]byte
	return string(keyBytes(buf[:0], id))
}

// docKeyOf builds the documentKey {_id: id}.
func docKeyOf(id Val) []byte {
	out := make([]byte, 0, 16+len(id.B))
	idx, out := bsoncore.AppendDocumentStart(out)
	out = appendElem(out, "_id", id)
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out
}

// sortedNames returns map keys in order.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
