package mongoemu

func cmdFindAndModify(x *cmdCtx) (*Doc, error) {
	b := x.body
	q := b.Get("query")
	remove := b.Get("remove").truthy()
	returnNew := b.Get("new").truthy()
	upsert := b.Get("upsert").truthy()
	af := b.Get("arrayFilters").elems()
	var u *updateSpec
	if !remove {
		if !b.Get("update").exists() {
			return nil, newErr(codeFailedToParse, "Either an update or remove=true must be specified")
		}
		var err error
		if u, err = parseUpdate(b.Get("update")); err != nil {
			return nil, err
		}
		u.query = q
	}
	var proj *projection
	if f := b.Get("fields"); f.T == tDoc && len(f.doc().E) > 0 {
		var err error
		if proj, err = compileProjection(f.doc()); err != nil {
			return nil, err
		}
	}
	x.lock()
	var entries []*entry
	c, err := x.collForWrite(x.db, x.collName(), &entries)
	if err != nil {
		x.unlock()
		return nil, err
	}
	docs, err := selectDocs(c, q, 0)
	if err == nil && b.Get("sort").T == tDoc {
		var keys []sortKey
		if keys, err = parseSort(b.Get("sort")); err == nil {
			vals := make([]Val, len(docs))
			for i, d := range docs {
				vals[i] = vRawDoc(d)
			}
			sortDocs(vals, keys)
			for i := range vals {
				docs[i] = vals[i].B
			}
		}
	}
	if err != nil {
		x.unlock()
		return nil, err
	}
	lastErr := &Doc{}
	var value Val = vNull()
	switch {
	case len(docs) == 0 && upsert && !remove:
		raw, id, err := x.upsertDoc(c, q, u, af, &entries)
		if err != nil {
			x.unlock()
			return nil, err
		}
		lastErr.Append("n", vInt32(1)).Append("updatedExisting", vBool(false)).Append("upserted", id)
		if returnNew {
			value = vRawDoc(raw)
		}
	case len(docs) == 0:
		lastErr.Append("n", vInt32(0))
		if !remove {
			lastErr.Append("updatedExisting", vBool(false))
		}
	case remove:
		entries = append(entries, deleteEntry(c, docs[0]))
		lastErr.Append("n", vInt32(1))
		value = vRawDoc(docs[0])
	default:
		nr, _, err := x.applyUpdate(c, docs[0], u, af, &entries)
		if err != nil {
			x.unlock()
			return nil, err
		}
		lastErr.Append("n", vInt32(1)).Append("updatedExisting", vBool(true))
		value = vRawDoc(docs[0])
		if returnNew {
			value = vRawDoc(nr)
		}
	}
	x.emit(entries)
	x.unlock()
	if proj != nil && value.T == tDoc {
		if value, err = proj.apply(value); err != nil {
			return nil, err
		}
	}
	return docOf("lastErrorObject", lastErr, "value", value, "ok", 1.0), nil
}
