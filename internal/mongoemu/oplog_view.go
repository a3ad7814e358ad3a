package mongoemu

// The local.oplog.rs view renders retained oplog entries in the shape of
// real oplog documents: {op, ns, ui, o, o2, ts, t, v, wall}, with lsid and
// txnNumber for transaction writes. Transactions appear as individual
// entries (not one applyOps entry). No-op entries, such as the replica-set
// initiation entry that opens the oplog, render as {op: "n", ns: "", o}.

func oplogDoc(e *entry) Val {
	t, i := splitTS(e.ts)
	d := &Doc{}
	ns := e.db + "." + e.coll
	switch e.op {
	case opNoop:
		d.Append("op", vString("n")).Append("ns", vString("")).Append("o", vRawDoc(e.doc))
	case opInsert:
		d.Append("op", vString("i")).Append("ns", vString(ns))
		d.Append("ui", uuidVal(e.uuid)).Append("o", vRawDoc(e.doc)).Append("o2", vRawDoc(e.documentKey()))
	case opUpdate:
		d.Append("op", vString("u")).Append("ns", vString(ns)).Append("ui", uuidVal(e.uuid))
		diff := &Doc{}
		if e.upd != nil {
			diff.Append("u", vRawDoc(e.upd.updated))
		}
		d.Append("o", vDoc(docOf("$v", 2, "diff", diff))).Append("o2", vRawDoc(e.documentKey()))
	case opReplace:
		d.Append("op", vString("u")).Append("ns", vString(ns)).Append("ui", uuidVal(e.uuid))
		d.Append("o", vRawDoc(e.doc)).Append("o2", vRawDoc(e.documentKey()))
	case opDelete:
		d.Append("op", vString("d")).Append("ns", vString(ns)).Append("ui", uuidVal(e.uuid))
		d.Append("o", vRawDoc(e.documentKey()))
	default:
		d.Append("op", vString("c")).Append("ns", vString(e.db+".$cmd"))
		if e.uuid != nil {
			d.Append("ui", uuidVal(e.uuid))
		}
		o := &Doc{}
		switch e.op {
		case opDrop:
			o.Append("drop", vString(e.coll))
		case opCreate:
			o.Append("create", vString(e.coll))
		case opRename:
			o.Append("renameCollection", vString(ns)).Append("to", vString(e.toDB+"."+e.toColl))
		case opDropDatabase:
			o.Append("dropDatabase", vInt32(1))
		default:
			o.Append(e.op, vString(e.coll))
		}
		d.Append("o", vDoc(o))
	}
	if e.inTxn {
		d.Append("lsid", vRawDoc(e.lsid)).Append("txnNumber", vInt64(e.txnNumber))
	}
	d.Append("ts", vTS(t, i)).Append("t", vInt64(1)).Append("v", vInt64(2)).Append("wall", vDate(e.wall))
	return vDoc(d)
}

func oplogDocs(es []*entry) []Val {
	out := make([]Val, len(es))
	for i, e := range es {
		out[i] = oplogDoc(e)
	}
	return out
}

// findOplogFast serves unfiltered finds on local.oplog.rs (typically
// sort {$natural: ±1} with a small limit) without rendering every entry.
func (x *cmdCtx) findOplogFast(ns string, keys []sortKey, skip, limit int64, batch int, single bool, proj *projection) (*Doc, error) {
	if len(keys) > 0 && !keys[0].natural {
		docs := oplogDocs(x.s.oplog.snapshot())
		sortDocs(docs, keys)
		return x.finishFind(ns, docs, skip, limit, batch, single, proj)
	}
	newest := len(keys) > 0 && keys[0].desc
	return x.finishFind(ns, oplogDocs(x.s.oplog.window(skip, limit, newest)), 0, 0, batch, single, proj)
}

// finishFind applies skip, limit and the projection to sorted documents and
// opens the cursor; find on collections and on local.oplog.rs share it.
func (x *cmdCtx) finishFind(ns string, docs []Val, skip, limit int64, batch int, single bool, proj *projection) (*Doc, error) {
	if skip > 0 {
		if skip >= int64(len(docs)) {
			docs = nil
		} else {
			docs = docs[skip:]
		}
	}
	if limit > 0 && limit < int64(len(docs)) {
		docs = docs[:limit]
	}
	raws := make([][]byte, len(docs))
	for i, d := range docs {
		if proj != nil {
			pd, err := proj.apply(d)
			if err != nil {
				return nil, err
			}
			d = pd
		}
		raws[i] = d.raw()
	}
	return x.openCursor(ns, raws, batch, single), nil
}
