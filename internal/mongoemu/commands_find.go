package mongoemu

const defaultBatch = 101

// sourceDocs returns the documents of a collection or view in natural
// order. Caller holds s.mu (read).
func (x *cmdCtx) sourceDocs(db, name string) ([]Val, error) {
	if db == "local" && name == "oplog.rs" {
		return oplogDocs(x.s.oplog.snapshot()), nil
	}
	c := x.collForRead(db, name)
	if c == nil {
		return nil, nil
	}
	if c.isView() {
		src, err := x.sourceDocs(db, c.viewOn)
		if err != nil {
			return nil, err
		}
		st, err := compilePipeline(c.pipeline.elems())
		if err != nil {
			return nil, err
		}
		return runPipeline(st, src)
	}
	out := make([]Val, 0, c.count())
	for _, r := range c.rows {
		if r.raw != nil {
			out = append(out, vRawDoc(r.raw))
		}
	}
	return out, nil
}

func cmdFind(x *cmdCtx) (*Doc, error) {
	b := x.body
	name := x.collName()
	ns := x.db + "." + name
	filter := b.Get("filter")
	keys, err := parseSort(b.Get("sort"))
	if err != nil {
		return nil, err
	}
	skip := intArg(b, "skip", 0)
	limit := intArg(b, "limit", 0)
	single := b.Get("singleBatch").truthy()
	if limit < 0 {
		limit, single = -limit, true
	}
	if skip < 0 {
		return nil, errBadValue("skip value must be non-negative, but received: %d", skip)
	}
	batch, err := batchSizeArg(b.Get("batchSize"), defaultBatch)
	if err != nil {
		return nil, err
	}
	var proj *projection
	if p := b.Get("projection"); p.T == tDoc && len(p.doc().E) > 0 {
		if proj, err = compileProjection(p.doc()); err != nil {
			return nil, err
		}
	}
	if x.db == "local" && name == "oplog.rs" && !filter.exists() || (x.db == "local" && name == "oplog.rs" && len(filter.doc().E) == 0) {
		return x.findOplogFast(ns, keys, skip, limit, batch, single, proj)
	}
	m, err := compileFilter(filter)
	if err != nil {
		return nil, err
	}
	x.rlock()
	var docs []Val
	if key, ok := idFilterKey(filter); ok && !(x.db == "local") {
		if c := x.collForRead(x.db, name); c != nil && !c.isView() {
			if raw := c.get(key); raw != nil {
				docs = []Val{vRawDoc(raw)}
			}
		}
	} else {
		src, err := x.sourceDocs(x.db, name)
		if err != nil {
			x.runlock()
			return nil, err
		}
		for _, d := range src {
			if m(d) {
				docs = append(docs, d)
			}
		}
	}
	x.runlock()
	sortDocs(docs, keys)
	if single && !b.Get("batchSize").exists() {
		batch = 0
	}
	return x.finishFind(ns, docs, skip, limit, batch, single, proj)
}

func cmdCount(x *cmdCtx) (*Doc, error) {
	b := x.body
	m, err := compileFilter(b.Get("query"))
	if err != nil {
		return nil, err
	}
	x.rlock()
	src, err := x.sourceDocs(x.db, x.collName())
	x.runlock()
	if err != nil {
		return nil, err
	}
	n := int64(0)
	if !b.Get("query").exists() || len(b.Get("query").doc().E) == 0 {
		n = int64(len(src))
	} else {
		for _, d := range src {
			if m(d) {
				n++
			}
		}
	}
	n -= intArg(b, "skip", 0)
	if n < 0 {
		n = 0
	}
	if l := intArg(b, "limit", 0); l > 0 && n > l {
		n = l
	}
	return docOf("n", vInt(n), "ok", 1.0), nil
}

func cmdDistinct(x *cmdCtx) (*Doc, error) {
	b := x.body
	key := b.Get("key").str()
	if key == "" {
		return nil, newErr(codeFailedToParse, "BSON field 'distinct.key' is missing but a required field")
	}
	m, err := compileFilter(b.Get("query"))
	if err != nil {
		return nil, err
	}
	x.rlock()
	src, err := x.sourceDocs(x.db, x.collName())
	x.runlock()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Val
	parts := splitPath(key)
	for _, d := range src {
		if !m(d) {
			continue
		}
		var vals []Val
		collectLeaves(d, parts, &vals, true)
		for _, v := range vals {
			if v.T == tUndef {
				continue
			}
			k := idKeyOf(v)
			if !seen[k] {
				seen[k] = true
				out = append(out, v)
			}
		}
	}
	sortDocs(out, []sortKey{{}})
	return docOf("values", vArr(out), "ok", 1.0), nil
}

func cmdAggregate(x *cmdCtx) (*Doc, error) {
	b := x.body
	pl := b.Get("pipeline")
	if pl.T != tArray {
		return nil, newErr(codeFailedToParse, "'pipeline' option must be specified as an array")
	}
	stages := pl.elems()
	if len(stages) > 0 && stages[0].T == tDoc && stages[0].doc().index("$changeStream") == 0 {
		return openChangeStream(x, stages)
	}
	for _, st := range stages {
		if st.T == tDoc && len(st.doc().E) > 0 {
			switch st.doc().E[0].K {
			case "$changeStream":
				return nil, newErr(40602, "$changeStream is only valid as the first stage in a pipeline")
			case "$out", "$merge", "$lookup", "$facet", "$graphLookup", "$unionWith":
				return nil, newErr(codeUnrecognizedPipelineStage, "%s is not supported by this server", st.doc().E[0].K)
			}
		}
	}
	if !b.Get("cursor").exists() && !b.Get("explain").truthy() {
		return nil, newErr(codeFailedToParse, "The 'cursor' option is required, except for aggregate with the explain argument")
	}
	first := b.E[0].V
	if first.T != tString {
		// Database-level aggregate: only the session/operation listing
		// stages are supported, and they return nothing.
		if len(stages) > 0 {
			switch name := stages[0].doc().E[0].K; name {
			case "$currentOp", "$listLocalSessions", "$listSessions":
				return x.openCursor(x.db+".$cmd.aggregate", nil, 0, false), nil
			case "$documents":
			default:
				return nil, newErr(codeInvalidNamespace, "%s can only be run against a collection", name)
			}
		}
	}
	compiled, err := compilePipeline(stages)
	if err != nil {
		return nil, err
	}
	var src []Val
	ns := x.db + ".$cmd.aggregate"
	if first.T == tString {
		ns = x.db + "." + first.str()
		x.rlock()
		src, err = x.sourceDocs(x.db, first.str())
		x.runlock()
		if err != nil {
			return nil, err
		}
	}
	out, err := runPipeline(compiled, src)
	if err != nil {
		return nil, err
	}
	raws := make([][]byte, len(out))
	for i, d := range out {
		raws[i] = d.raw()
	}
	batch, err := batchSizeArg(b.Get("cursor").field("batchSize"), defaultBatch)
	if err != nil {
		return nil, err
	}
	return x.openCursor(ns, raws, batch, false), nil
}
