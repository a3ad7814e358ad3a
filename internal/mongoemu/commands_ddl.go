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
