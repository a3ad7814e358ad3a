package mongoemu

import (
	"bytes"
)

// collForWrite returns the collection a write goes to, creating it
// implicitly (with a "create" event) when missing. Caller holds s.mu.
func (x *cmdCtx) collForWrite(db, name string, out *[]*entry) (*collection, error) {
	if err := validCollName(name); err != nil {
		return nil, err
	}
	if x.txn != nil {
		c := x.txnColl(db, name)
		if c == nil {
			c = newCollection(db, name)
			x.txn.colls[db+"."+name] = c
			desc := docOf("idIndex", c.indexes[0].spec.clone())
			*out = append(*out, &entry{op: opCreate, db: db, coll: name, uuid: c.uuid, opDesc: desc.Bytes()})
		}
		return c, nil
	}
	c := x.s.getColl(db, name)
	if c == nil {
		var e *entry
		c, e = x.s.createCollLocked(db, name, nil)
		*out = append(*out, e)
	}
	if c.isView() {
		return nil, newErr(166, "Namespace %s.%s is a view, not a collection", db, name)
	}
	return c, nil
}

// collForRead returns the collection to read (the transaction's copy inside
// a transaction) or nil. Caller holds s.mu.
func (x *cmdCtx) collForRead(db, name string) *collection {
	if x.txn != nil {
		return x.txnColl(db, name)
	}
	return x.s.getColl(db, name)
}

// emit publishes write entries: to the oplog, or to the transaction buffer.
// Caller holds s.mu exclusively.
func (x *cmdCtx) emit(es []*entry) {
	if len(es) == 0 {
		return
	}
	if x.txn != nil {
		x.txn.ops = append(x.txn.ops, es...)
		return
	}
	x.s.oplog.append(es, false)
}

func writeErrorDoc(i int, err error) Val {
	ce := asCmdError(err)
	d := docOf("index", i, "code", ce.Code)
	if ce.dupPattern != nil {
		d.Append("keyPattern", vDoc(ce.dupPattern))
		d.Append("keyValue", vDoc(ce.dupValue))
	}
	d.Append("errmsg", vString(ce.Msg))
	return vDoc(d)
}

func cmdInsert(x *cmdCtx) (*Doc, error) {
	docs := x.body.Get("documents")
	if docs.T != tArray {
		return nil, newErr(codeFailedToParse, "BSON field 'insert.documents' is missing but a required field")
	}
	ordered := !x.body.Get("ordered").exists() || x.body.Get("ordered").truthy()
	els := docs.elems()
	x.lock()
	entries := make([]*entry, 0, len(els)+1)
	c, err := x.collForWrite(x.db, x.collName(), &entries)
	if err != nil {
		x.unlock()
		return nil, err
	}
	var werrs []Val
	n := 0
	slab := make([]entry, len(els))
	for i, d := range els {
		if d.T != tDoc {
			werrs = append(werrs, writeErrorDoc(i, errBadValue("document must be an object")))
			if ordered {
				break
			}
			continue
		}
		raw, id, err := prepareInsert(d.raw())
		if err == nil && len(raw) > maxBSONSize {
			err = newErr(10334, "object to insert too large. size in bytes: %d, max size: %d", len(raw), maxBSONSize)
		}
		if err != nil {
			werrs = append(werrs, writeErrorDoc(i, err))
			if ordered {
				break
			}
			continue
		}
		key := idKeyOf(id)
		if c.get(key) != nil {
			werrs = append(werrs, writeErrorDoc(i, dupKeyError(c, "_id_", docOf("_id", 1), docOf("_id", id))))
			if ordered {
				break
			}
			continue
		}
		if derr := c.checkUnique(raw, key); derr != nil {
			werrs = append(werrs, writeErrorDoc(i, derr))
			if ordered {
				break
			}
			continue
		}
		c.insertRow(key, raw)
		e := &slab[i]
		e.op, e.db, e.coll, e.uuid, e.key, e.doc = opInsert, c.db, c.name, c.uuid, key, raw
		entries = append(entries, e)
		n++
	}
	x.emit(entries)
	x.unlock()
	if x.txn != nil && len(werrs) > 0 {
		// A write error aborts the transaction.
		x.s.sessions.abortOnError(x, nil)
	}
	reply := docOf("n", n)
	if len(werrs) > 0 {
		reply.Append("writeErrors", vArr(werrs))
	}
	return reply, nil
}

// idFilterKey returns the canonical _id for filters of the form {_id: v}
// or {_id: {$eq: v}}.
func idFilterKey(f Val) (string, bool) {
	if f.T != tDoc {
		return "", false
	}
	d := f.doc()
	if len(d.E) != 1 || d.E[0].K != "_id" {
		return "", false
	}
	v := d.E[0].V
	if v.T == tDoc && isOperatorDoc(v) {
		if len(v.doc().E) != 1 || v.doc().E[0].K != "$eq" {
			return "", false
		}
		v = v.doc().E[0].V
	}
	if v.T == tArray || v.T == tRegex || v.T == tNull || v.T == tDoc {
		return "", false
	}
	return idKeyOf(v), true
}

// selectDocs returns up to limit (0 = all) documents matching filter in
// natural order.
func selectDocs(c *collection, filter Val, limit int) ([][]byte, error) {
	if c == nil {
		return nil, nil
	}
	if key, ok := idFilterKey(filter); ok {
		if raw := c.get(key); raw != nil {
			return [][]byte{raw}, nil
		}
		return nil, nil
	}
	m, err := compileFilter(filter)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, r := range c.rows {
		if r.raw == nil {
			continue
		}
		if m(vRawDoc(r.raw)) {
			out = append(out, r.raw)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
	}
	return out, nil
}

// applyUpdate updates one stored document and records its event.
func (x *cmdCtx) applyUpdate(c *collection, oldRaw []byte, u *updateSpec, af []Val, out *[]*entry) ([]byte, bool, error) {
	old := vRawDoc(oldRaw)
	nd, touched, err := u.apply(old, false, af)
	if err != nil {
		return nil, false, err
	}
	newRaw := nd.raw()
	if bytes.Equal(newRaw, oldRaw) {
		return oldRaw, false, nil
	}
	newRaw, id, err := prepareInsert(newRaw)
	if err != nil {
		return nil, false, err
	}
	if len(newRaw) > maxBSONSize {
		return nil, false, newErr(17419, "Resulting document after update is larger than %d", maxBSONSize)
	}
	key := idKeyOf(id)
	if derr := c.checkUnique(newRaw, key); derr != nil {
		return nil, false, derr
	}
	c.replaceRow(key, newRaw)
	e := &entry{db: c.db, coll: c.name, uuid: c.uuid, key: key, docKey: docKeyOf(id), pre: oldRaw, post: newRaw, images: c.preAndPost}
	switch u.kind {
	case updReplace:
		e.op = opReplace
		e.doc = newRaw
	case updPipeline:
		e.op = opUpdate
		r := &diffResult{}
		diffDocs(old, vRawDoc(newRaw), nil, r)
		e.upd = r.encode()
	default:
		e.op = opUpdate
		e.upd = describeOperatorUpdate(old, vRawDoc(newRaw), touched).encode()
	}
	*out = append(*out, e)
	return newRaw, true, nil
}

// upsertDoc builds and inserts the document for an upsert that matched
// nothing.
func (x *cmdCtx) upsertDoc(c *collection, filter Val, u *updateSpec, af []Val, out *[]*entry) ([]byte, Val, error) {
	base := &Doc{}
	if u.kind != updReplace {
		addEqualityFields(base, filter)
	} else if id := filter.field("_id"); id.exists() && !isOperatorDoc(id) {
		base.Append("_id", id)
	}
	var nd Val
	if u.kind == updReplace {
		r, _, err := u.apply(vDoc(base), true, af)
		if err != nil {
			return nil, missing, err
		}
		nd = r
	} else {
		r, _, err := u.apply(vDoc(base), true, af)
		if err != nil {
			return nil, missing, err
		}
		nd = r
	}
	raw, id, err := prepareInsert(nd.raw())
	if err != nil {
		return nil, missing, err
	}
	key := idKeyOf(id)
	if c.get(key) != nil {
		return nil, missing, dupKeyError(c, "_id_", docOf("_id", 1), docOf("_id", id))
	}
	if derr := c.checkUnique(raw, key); derr != nil {
		return nil, missing, derr
	}
	c.insertRow(key, raw)
	*out = append(*out, &entry{op: opInsert, db: c.db, coll: c.name, uuid: c.uuid, key: key, doc: raw})
	return raw, id, nil
}

// addEqualityFields copies equality conditions of a filter into base, as
// MongoDB seeds upserted documents.
func addEqualityFields(base *Doc, filter Val) {
	if filter.T != tDoc {
		return
	}
	root := vDoc(base)
	for _, e := range filter.doc().E {
		switch {
		case e.K == "$and":
			for _, sub := range e.V.elems() {
				addEqualityFields(base, sub)
			}
		case len(e.K) > 0 && e.K[0] == '$':
		case isOperatorDoc(e.V):
			if eq := e.V.doc().Get("$eq"); eq.exists() {
				setPathForce(&root, e.K, eq)
			}
		default:
			setPathForce(&root, e.K, e.V)
		}
	}
	if id := base.Get("_id"); id.exists() && base.index("_id") != 0 {
		base.Delete("_id")
		base.E = append([]Elem{{K: "_id", V: id}}, base.E...)
	}
}

func cmdUpdate(x *cmdCtx) (*Doc, error) {
	ups := x.body.Get("updates")
	if ups.T != tArray {
		return nil, newErr(codeFailedToParse, "BSON field 'update.updates' is missing but a required field")
	}
	ordered := !x.body.Get("ordered").exists() || x.body.Get("ordered").truthy()
	x.lock()
	var entries []*entry
	c, err := x.collForWrite(x.db, x.collName(), &entries)
	if err != nil {
		x.unlock()
		return nil, err
	}
	var werrs, upserted []Val
	n, nMod := 0, 0
	for i, st := range ups.elems() {
		err := func() error {
			q := st.field("q")
			u, err := parseUpdate(st.field("u"))
			if err != nil {
				return err
			}
			u.query = q
			multi := st.field("multi").truthy()
			if multi && u.kind == updReplace {
				return newErr(codeFailedToParse, "multi update is not supported for replacement-style update")
			}
			af := st.field("arrayFilters").elems()
			limit := 1
			if multi {
				limit = 0
			}
			docs, err := selectDocs(c, q, limit)
			if err != nil {
				return err
			}
			if len(docs) == 0 && st.field("upsert").truthy() {
				_, id, err := x.upsertDoc(c, q, u, af, &entries)
				if err != nil {
					return err
				}
				n++
				upserted = append(upserted, vDoc(docOf("index", i, "_id", id)))
				return nil
			}
			for _, d := range docs {
				_, changed, err := x.applyUpdate(c, d, u, af, &entries)
				if err != nil {
					return err
				}
				n++
				if changed {
					nMod++
				}
			}
			return nil
		}()
		if err != nil {
			werrs = append(werrs, writeErrorDoc(i, err))
			if ordered {
				break
			}
		}
	}
	x.emit(entries)
	x.unlock()
	if x.txn != nil && len(werrs) > 0 {
		x.s.sessions.abortOnError(x, nil)
	}
	reply := docOf("n", n, "nModified", nMod)
	if len(upserted) > 0 {
		reply.Append("upserted", vArr(upserted))
	}
	if len(werrs) > 0 {
		reply.Append("writeErrors", vArr(werrs))
	}
	return reply, nil
}

func deleteEntry(c *collection, raw []byte) *entry {
	id := rawLookup(raw, "_id")
	key := idKeyOf(id)
	c.deleteRow(key)
	return &entry{op: opDelete, db: c.db, coll: c.name, uuid: c.uuid, key: key, docKey: docKeyOf(id), pre: raw, images: c.preAndPost}
}

func cmdDelete(x *cmdCtx) (*Doc, error) {
	dels := x.body.Get("deletes")
	if dels.T != tArray {
		return nil, newErr(codeFailedToParse, "BSON field 'delete.deletes' is missing but a required field")
	}
	ordered := !x.body.Get("ordered").exists() || x.body.Get("ordered").truthy()
	s := x.s
	x.lock()
	var entries []*entry
	var c *collection
	if x.txn != nil {
		c = x.txnColl(x.db, x.collName())
	} else {
		c = s.getColl(x.db, x.collName())
	}
	var werrs []Val
	n := 0
	for i, st := range dels.elems() {
		limit, _ := st.field("limit").asInt64()
		docs, err := selectDocs(c, st.field("q"), int(limit))
		if err != nil {
			werrs = append(werrs, writeErrorDoc(i, err))
			if ordered {
				break
			}
			continue
		}
		for _, d := range docs {
			entries = append(entries, deleteEntry(c, d))
			n++
		}
	}
	x.emit(entries)
	x.unlock()
	reply := docOf("n", n)
	if len(werrs) > 0 {
		reply.Append("writeErrors", vArr(werrs))
	}
	return reply, nil
}
