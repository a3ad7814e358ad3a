package mongoemu

import (
	"strings"
)

func cmdListDatabases(x *cmdCtx) (*Doc, error) {
	m, err := compileFilter(x.body.Get("filter"))
	if err != nil {
		return nil, err
	}
	nameOnly := x.body.Get("nameOnly").truthy()
	x.rlock()
	var dbs []Val
	total := int64(0)
	for _, name := range sortedNames(x.s.dbs) {
		d := x.s.dbs[name]
		if len(d.colls) == 0 {
			continue
		}
		size := int64(0)
		for _, c := range d.colls {
			for _, r := range c.rows {
				size += int64(len(r.raw))
			}
		}
		total += size
		var doc *Doc
		if nameOnly {
			doc = docOf("name", name)
		} else {
			doc = docOf("name", name, "sizeOnDisk", size, "empty", size == 0)
		}
		if m(vDoc(doc)) {
			dbs = append(dbs, vDoc(doc))
		}
	}
	x.runlock()
	if nameOnly {
		return docOf("databases", vArr(dbs), "ok", 1.0), nil
	}
	return docOf("databases", vArr(dbs), "totalSize", total, "totalSizeMb", total>>20, "ok", 1.0), nil
}

func collInfo(c *collection, nameOnly bool) *Doc {
	typ := "collection"
	if c.isView() {
		typ = "view"
	}
	if nameOnly {
		return docOf("name", c.name, "type", typ)
	}
	opts := &Doc{}
	for _, e := range c.options.E {
		opts.Append(e.K, e.V)
	}
	if c.isView() {
		return docOf("name", c.name, "type", typ, "options", opts, "info", docOf("readOnly", true))
	}
	return docOf("name", c.name, "type", typ, "options", opts,
		"info", docOf("readOnly", false, "uuid", uuidVal(c.uuid)),
		"idIndex", c.indexes[0].spec.clone())
}

func cmdListCollections(x *cmdCtx) (*Doc, error) {
	m, err := compileFilter(x.body.Get("filter"))
	if err != nil {
		return nil, err
	}
	nameOnly := x.body.Get("nameOnly").truthy()
	x.rlock()
	var out [][]byte
	if d := x.s.dbs[x.db]; d != nil {
		for _, name := range sortedNames(d.colls) {
			full := collInfo(d.colls[name], false)
			if !m(vDoc(full)) {
				continue
			}
			out = append(out, collInfo(d.colls[name], nameOnly).Bytes())
		}
	}
	x.runlock()
	batch, err := batchSizeArg(x.body.Get("cursor").field("batchSize"), defaultBatch)
	if err != nil {
		return nil, err
	}
	return x.openCursor(x.db+".$cmd.listCollections", out, batch, false), nil
}

func cmdCreate(x *cmdCtx) (*Doc, error) {
	name := x.collName()
	if err := validCollName(name); err != nil {
		return nil, err
	}
	opts := &Doc{}
	for _, e := range x.body.E[1:] {
		switch e.K {
		case "$db", "lsid", "txnNumber", "autocommit", "startTransaction", "$clusterTime",
			"writeConcern", "comment", "$readPreference", "apiVersion", "apiStrict", "apiDeprecationErrors":
			continue
		}
		opts.Append(e.K, e.V)
	}
	if v := opts.Get("viewOn"); v.exists() && v.T != tString {
		return nil, newErr(codeTypeMismatch, "'viewOn' must be a string")
	}
	s := x.s
	x.lock()
	defer x.unlock()
	if s.getColl(x.db, name) != nil {
		return nil, newErr(codeNamespaceExists, "Collection %s.%s already exists.", x.db, name)
	}
	_, e := s.createCollLocked(x.db, name, opts)
	s.oplog.append([]*entry{e}, false)
	return docOf("ok", 1.0), nil
}

func cmdCollMod(x *cmdCtx) (*Doc, error) {
	name := x.collName()
	s := x.s
	x.lock()
	defer x.unlock()
	c := s.getColl(x.db, name)
	if c == nil {
		return nil, newErr(codeNamespaceNotFound, "ns does not exist: %s.%s", x.db, name)
	}
	before := c.options.clone()
	desc := &Doc{}
	for _, e := range x.body.E[1:] {
		switch e.K {
		case "$db", "lsid", "txnNumber", "$clusterTime", "writeConcern", "comment", "$readPreference":
			continue
		case "changeStreamPreAndPostImages":
			c.preAndPost = e.V.field("enabled").truthy()
			c.options.Set(e.K, e.V)
		case "index":
			// hidden/expireAfterSeconds changes are accepted and ignored.
		case "viewOn":
			c.viewOn = e.V.str()
			c.options.Set(e.K, e.V)
		case "pipeline":
			c.pipeline = e.V
			c.options.Set(e.K, e.V)
		default:
			c.options.Set(e.K, e.V)
		}
		desc.Append(e.K, e.V)
	}
	x.s.oplog.append([]*entry{{op: opModify, db: x.db, coll: name, uuid: c.uuid, isView: c.isView(), opDesc: desc.Bytes(),
		stateBefore: docOf("collectionOptions", before).Bytes()}}, false)
	return docOf("ok", 1.0), nil
}

// dropLocked removes a collection and returns its drop entry.
func (s *Server) dropLocked(c *collection) *entry {
	delete(s.dbs[c.db].colls, c.name)
	if len(s.dbs[c.db].colls) == 0 {
		delete(s.dbs, c.db)
	}
	return &entry{op: opDrop, db: c.db, coll: c.name, uuid: c.uuid}
}

func cmdDrop(x *cmdCtx) (*Doc, error) {
	name := x.collName()
	s := x.s
	x.lock()
	defer x.unlock()
	c := s.getColl(x.db, name)
	if c == nil {
		return docOf("ok", 1.0), nil
	}
	n := len(c.indexes)
	s.oplog.append([]*entry{s.dropLocked(c)}, false)
	return docOf("nIndexesWas", n, "ns", x.db+"."+name, "ok", 1.0), nil
}

func cmdDropDatabase(x *cmdCtx) (*Doc, error) {
	s := x.s
	x.lock()
	defer x.unlock()
	d := s.dbs[x.db]
	var es []*entry
	if d != nil {
		for _, name := range sortedNames(d.colls) {
			es = append(es, s.dropLocked(d.colls[name]))
		}
	}
	delete(s.dbs, x.db)
	es = append(es, &entry{op: opDropDatabase, db: x.db})
	s.oplog.append(es, false)
	return docOf("dropped", x.db, "ok", 1.0), nil
}

func cmdRenameCollection(x *cmdCtx) (*Doc, error) {
	if x.db != "admin" {
		return nil, newErr(13, "renameCollection may only be run against the admin database.")
	}
	from := x.body.Get("renameCollection").str()
	to := x.body.Get("to").str()
	fdb, fcoll, ok1 := strings.Cut(from, ".")
	tdb, tcoll, ok2 := strings.Cut(to, ".")
	if !ok1 || !ok2 {
		return nil, newErr(codeInvalidNamespace, "Invalid namespace specified '%s'", from)
	}
	if err := validCollName(tcoll); err != nil {
		return nil, err
	}
	s := x.s
	x.lock()
	defer x.unlock()
	src := s.getColl(fdb, fcoll)
	if src == nil {
		return nil, newErr(codeNamespaceNotFound, "Source collection %s does not exist", from)
	}
	if from == to {
		return nil, newErr(codeIllegalOperation, "Can't rename a collection to itself")
	}
	e := &entry{op: opRename, db: fdb, coll: fcoll, uuid: src.uuid, toDB: tdb, toColl: tcoll}
	if dst := s.getColl(tdb, tcoll); dst != nil {
		if !x.body.Get("dropTarget").truthy() {
			return nil, newErr(codeNamespaceExists, "target namespace exists")
		}
		e.dropTargetUUID = dst.uuid
		delete(s.dbs[tdb].colls, tcoll)
	}
	delete(s.dbs[fdb].colls, fcoll)
	if len(s.dbs[fdb].colls) == 0 && fdb != tdb {
		delete(s.dbs, fdb)
	}
	if s.dbs[tdb] == nil {
		s.dbs[tdb] = &database{name: tdb, colls: map[string]*collection{}}
	}
	src.db, src.name = tdb, tcoll
	s.dbs[tdb].colls[tcoll] = src
	od := docOf("to", docOf("db", tdb, "coll", tcoll))
	if e.dropTargetUUID != nil {
		od.Append("dropTarget", uuidVal(e.dropTargetUUID))
	}
	e.opDesc = od.Bytes()
	s.oplog.append([]*entry{e}, false)
	return docOf("ok", 1.0), nil
}

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

func cmdDBStats(x *cmdCtx) (*Doc, error) {
	x.rlock()
	defer x.runlock()
	colls, objects, size, idx := 0, 0, int64(0), 0
	if d := x.s.dbs[x.db]; d != nil {
		for _, c := range d.colls {
			colls++
			objects += c.count()
			idx += len(c.indexes)
			for _, r := range c.rows {
				size += int64(len(r.raw))
			}
		}
	}
	avg := 0.0
	if objects > 0 {
		avg = float64(size) / float64(objects)
	}
	return docOf("db", x.db, "collections", colls, "views", 0, "objects", objects, "avgObjSize", avg,
		"dataSize", float64(size), "storageSize", float64(size), "indexes", idx, "indexSize", 0.0,
		"totalSize", float64(size), "scaleFactor", 1.0, "ok", 1.0), nil
}

func cmdCollStats(x *cmdCtx) (*Doc, error) {
	x.rlock()
	defer x.runlock()
	c := x.s.getColl(x.db, x.collName())
	if c == nil {
		return nil, newErr(codeNamespaceNotFound, "Collection [%s.%s] not found.", x.db, x.collName())
	}
	size := int64(0)
	for _, r := range c.rows {
		size += int64(len(r.raw))
	}
	return docOf("ns", c.ns(), "size", size, "count", c.count(), "storageSize", size,
		"nindexes", len(c.indexes), "totalIndexSize", 0, "ok", 1.0), nil
}
