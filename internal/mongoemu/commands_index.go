package mongoemu

import "strings"

func indexNameFor(key *Doc) string {
	var parts []string
	for _, e := range key.E {
		v := e.V.str()
		if e.V.isNumber() {
			n, _ := e.V.asInt64()
			v = itoa(int(n))
		}
		parts = append(parts, e.K+"_"+v)
	}
	return strings.Join(parts, "_")
}

func cmdCreateIndexes(x *cmdCtx) (*Doc, error) {
	specs := x.body.Get("indexes")
	if specs.T != tArray || len(specs.elems()) == 0 {
		return nil, newErr(codeFailedToParse, "Must specify at least one index to create")
	}
	s := x.s
	x.lock()
	defer x.unlock()
	var es []*entry
	created := s.getColl(x.db, x.collName()) == nil
	c, err := x.collForWrite(x.db, x.collName(), &es)
	if err != nil {
		return nil, err
	}
	before := len(c.indexes)
	var newSpecs []Val
	for _, sv := range specs.elems() {
		sd := sv.doc()
		key := sd.Get("key")
		if key.T != tDoc || len(key.doc().E) == 0 {
			return nil, newErr(codeFailedToParse, "The 'key' field must be a non-empty object")
		}
		name := sd.Get("name").str()
		if name == "" {
			name = indexNameFor(key.doc())
		}
		dupe := false
		for _, ix := range c.indexes {
			sameKey := compareDocs(ix.key, key.doc()) == 0
			if ix.name == name && !sameKey {
				return nil, newErr(codeIndexKeySpecsConflict, "An existing index has the same name as the requested index. Requested index: %s, existing index: %s", shellString(sv), shellString(vDoc(ix.spec)))
			}
			if sameKey && ix.name != name && ix.name != "_id_" {
				return nil, newErr(codeIndexOptionsConflict, "Index already exists with a different name: %s", ix.name)
			}
			if ix.name == name || (sameKey && ix.name == "_id_") {
				dupe = true
			}
		}
		if dupe {
			continue
		}
		spec := docOf("v", 2, "key", key)
		spec.Append("name", vString(name))
		for _, e := range sd.E {
			if e.K != "key" && e.K != "name" && e.K != "v" {
				spec.Append(e.K, e.V)
			}
		}
		ix := &index{name: name, key: key.doc(), spec: spec, unique: sd.Get("unique").truthy(), sparse: sd.Get("sparse").truthy()}
		if ix.unique {
			ix.entries = map[string]string{}
			for _, r := range c.rows {
				if r.raw == nil {
					continue
				}
				k, ok := ix.indexKey(r.raw)
				if !ok {
					continue
				}
				if _, dup := ix.entries[k]; dup {
					kv := &Doc{}
					for _, e := range ix.key.E {
						kv.Append(e.K, getPath(vRawDoc(r.raw), e.K))
					}
					return nil, dupKeyError(c, name, ix.key, kv)
				}
				ix.entries[k] = r.key
			}
		}
		c.indexes = append(c.indexes, ix)
		newSpecs = append(newSpecs, vDoc(spec))
	}
	if len(newSpecs) > 0 {
		es = append(es, &entry{op: opCreateIndexes, db: c.db, coll: c.name, uuid: c.uuid,
			opDesc: docOf("indexes", vArr(newSpecs)).Bytes()})
	}
	s.oplog.append(es, false)
	reply := docOf("numIndexesBefore", before, "numIndexesAfter", len(c.indexes))
	if created {
		reply.Append("createdCollectionAutomatically", vBool(true))
	} else {
		reply.Append("createdCollectionAutomatically", vBool(false))
	}
	if len(newSpecs) == 0 {
		reply.Append("note", vString("all indexes already exist"))
	}
	reply.Append("ok", vDouble(1))
	return reply, nil
}

func cmdDropIndexes(x *cmdCtx) (*Doc, error) {
	s := x.s
	x.lock()
	defer x.unlock()
	c := s.getColl(x.db, x.collName())
	if c == nil {
		return nil, newErr(codeNamespaceNotFound, "ns not found %s.%s", x.db, x.collName())
	}
	arg := x.body.Get("index")
	before := len(c.indexes)
	var drop []int
	switch {
	case arg.T == tString && arg.str() == "*":
		for i := 1; i < len(c.indexes); i++ {
			drop = append(drop, i)
		}
	case arg.T == tString || arg.T == tArray:
		names := []Val{arg}
		if arg.T == tArray {
			names = arg.elems()
		}
		for _, n := range names {
			found := false
			for i, ix := range c.indexes {
				if ix.name == n.str() {
					if i == 0 {
						return nil, newErr(72, "cannot drop _id index")
					}
					drop = append(drop, i)
					found = true
				}
			}
			if !found {
				return nil, newErr(codeIndexNotFound, "index not found with name [%s]", n.str())
			}
		}
	case arg.T == tDoc:
		found := false
		for i, ix := range c.indexes {
			if compareDocs(ix.key, arg.doc()) == 0 && i > 0 {
				drop = append(drop, i)
				found = true
			}
		}
		if !found {
			return nil, newErr(codeIndexNotFound, "can't find index with key: %s", shellString(arg))
		}
	default:
		return nil, newErr(codeTypeMismatch, "invalid index argument")
	}
	var specs []Val
	keep := c.indexes[:0:0]
	dropSet := map[int]bool{}
	for _, i := range drop {
		dropSet[i] = true
	}
	for i, ix := range c.indexes {
		if dropSet[i] {
			specs = append(specs, vDoc(ix.spec))
			continue
		}
		keep = append(keep, ix)
	}
	c.indexes = keep
	if len(specs) > 0 {
		s.oplog.append([]*entry{{op: opDropIndexes, db: c.db, coll: c.name, uuid: c.uuid,
			opDesc: docOf("indexes", vArr(specs)).Bytes()}}, false)
	}
	return docOf("nIndexesWas", before, "ok", 1.0), nil
}

func cmdListIndexes(x *cmdCtx) (*Doc, error) {
	x.rlock()
	c := x.s.getColl(x.db, x.collName())
	if c == nil {
		x.runlock()
		return nil, newErr(codeNamespaceNotFound, "ns does not exist: %s.%s", x.db, x.collName())
	}
	var out [][]byte
	for _, ix := range c.indexes {
		out = append(out, ix.spec.Bytes())
	}
	x.runlock()
	batch, err := batchSizeArg(x.body.Get("cursor").field("batchSize"), defaultBatch)
	if err != nil {
		return nil, err
	}
	return x.openCursor(x.db+"."+x.collName(), out, batch, false), nil
}
