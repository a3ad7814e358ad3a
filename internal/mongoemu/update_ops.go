package mongoemu

import (
	"strings"
)

// updateKind distinguishes the three update forms.
type updateKind int

const (
	updReplace updateKind = iota
	updOperators
	updPipeline
)

// updateSpec is a parsed update: a replacement document, operator document
// or aggregation pipeline.
type updateSpec struct {
	kind     updateKind
	repl     *Doc
	ops      *Doc
	pipeline []stage
	// query is the statement's filter, used by the positional "$" operator.
	query Val
}

var updateOperators = map[string]bool{
	"$set": true, "$unset": true, "$inc": true, "$mul": true, "$min": true, "$max": true,
	"$push": true, "$pull": true, "$pullAll": true, "$addToSet": true, "$pop": true,
	"$rename": true, "$currentDate": true, "$setOnInsert": true,
}

func parseUpdate(u Val) (*updateSpec, error) {
	switch u.T {
	case tArray:
		for _, st := range u.elems() {
			if st.T == tDoc && len(st.doc().E) == 1 {
				switch st.doc().E[0].K {
				case "$set", "$addFields", "$unset", "$project", "$replaceRoot", "$replaceWith":
					continue
				}
				return nil, newErr(codeInvalidOptions, "%s is not allowed to be used within an update", st.doc().E[0].K)
			}
		}
		p, err := compilePipeline(u.elems())
		if err != nil {
			return nil, err
		}
		return &updateSpec{kind: updPipeline, pipeline: p}, nil
	case tDoc:
		d := u.doc()
		if len(d.E) > 0 && strings.HasPrefix(d.E[0].K, "$") {
			for _, e := range d.E {
				if !updateOperators[e.K] {
					return nil, newErr(codeFailedToParse, "Unknown modifier: %s. Expected a valid update modifier or pipeline-style update specified as an array", e.K)
				}
				if e.V.T != tDoc {
					return nil, newErr(codeFailedToParse, "Modifiers operate on fields but we found type %s instead. For example: {$mod: {<field>: ...}} not {%s: %s}", typeName(e.V), e.K, shellString(e.V))
				}
			}
			return &updateSpec{kind: updOperators, ops: d}, nil
		}
		for _, e := range d.E {
			if strings.HasPrefix(e.K, "$") {
				return nil, newErr(codeDollarPrefixedFieldName, "The dollar ($) prefixed field '%s' in '%s' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith.", e.K, e.K)
			}
		}
		return &updateSpec{kind: updReplace, repl: d}, nil
	}
	return nil, newErr(codeFailedToParse, "Update argument must be either an object or an array")
}

// apply computes the new document. old is the current document (an empty
// document for upserts, with isInsert set). It returns the new document and
// the paths touched by operators (for the change event description).
func (u *updateSpec) apply(old Val, isInsert bool, arrayFilters []Val) (Val, []string, error) {
	id := old.field("_id")
	switch u.kind {
	case updReplace:
		nd := &Doc{}
		if rid := u.repl.Get("_id"); rid.exists() {
			if id.exists() && !valsEqual(rid, id) {
				return missing, nil, immutableID(id)
			}
			nd.Append("_id", rid)
		} else if id.exists() {
			nd.Append("_id", id)
		}
		for _, e := range u.repl.E {
			if e.K != "_id" {
				nd.Append(e.K, e.V)
			}
		}
		return vDoc(nd), nil, nil
	case updPipeline:
		out, err := runPipeline(u.pipeline, []Val{old})
		if err != nil {
			return missing, nil, err
		}
		if len(out) != 1 || out[0].T != tDoc {
			return missing, nil, errBadValue("pipeline update must produce one document")
		}
		nd := out[0]
		nid := nd.field("_id")
		if id.exists() && !valsEqual(nid, id) {
			if !nid.exists() {
				// _id cannot be removed; keep it first.
				cl := nd.clone()
				d := cl.mutableDoc()
				d.E = append([]Elem{{K: "_id", V: id}}, d.E...)
				return vDoc(d), nil, nil
			}
			return missing, nil, immutableID(id)
		}
		return nd, nil, nil
	}
	nd := old.clone()
	root := nd.mutableDoc()
	var touched []string
	seen := map[string]string{}
	for _, opE := range u.ops.E {
		if opE.K == "$setOnInsert" && !isInsert {
			continue
		}
		for _, f := range opE.V.doc().E {
			if f.K == "" {
				return missing, nil, errBadValue("An empty update path is not valid.")
			}
			paths := []string{f.K}
			if opE.K == "$rename" {
				paths = append(paths, f.V.str())
			}
			for _, p := range paths {
				for q := range seen {
					if q == p || strings.HasPrefix(q, p+".") || strings.HasPrefix(p, q+".") {
						return missing, nil, newErr(codeConflictingUpdateOps, "Updating the path '%s' would create a conflict at '%s'", p, commonPrefix(p, q))
					}
				}
			}
			for _, p := range paths {
				seen[p] = opE.K
			}
			expanded, err := expandArrayPaths(root, f.K, arrayFilters, u.query)
			if err != nil {
				return missing, nil, err
			}
			for _, path := range expanded {
				changed, err := applyOp(root, opE.K, path, f.V, id)
				if err != nil {
					return missing, nil, err
				}
				if changed {
					touched = append(touched, path)
					if opE.K == "$rename" {
						touched = append(touched, f.V.str())
					}
				}
			}
		}
	}
	if nid := root.Get("_id"); id.exists() && !valsEqual(nid, id) {
		return missing, nil, immutableID(id)
	}
	return nd, touched, nil
}

func commonPrefix(a, b string) string {
	if len(a) < len(b) {
		return a
	}
	return b
}

func immutableID(id Val) error {
	return newErr(codeImmutableField, "Performing an update on the path '_id' would modify the immutable field '_id'")
}

// expandArrayPaths expands "$[]" and "$[ident]" path components against
// the document.
func expandArrayPaths(root *Doc, path string, arrayFilters []Val, query Val) ([]string, error) {
	if !strings.Contains(path, "$") {
		return []string{path}, nil
	}
	parts := splitPath(path)
	for i, p := range parts {
		if p == "$" {
			prefix := strings.Join(parts[:i], ".")
			n, ok := positionalIndex(vDoc(root), prefix, query)
			if !ok {
				return nil, errBadValue("The positional operator did not find the match needed from the query.")
			}
			parts[i] = itoa(n)
			return expandArrayPaths(root, strings.Join(parts, "."), arrayFilters, query)
		}
		if !strings.HasPrefix(p, "$[") || !strings.HasSuffix(p, "]") {
			continue
		}
		ident := p[2 : len(p)-1]
		var filter matcher
		if ident != "" {
			for _, af := range arrayFilters {
				for _, e := range af.doc().E {
					name, rest, _ := strings.Cut(e.K, ".")
					if name != ident {
						continue
					}
					var m matcher
					var err error
					if rest == "" {
						m, err = compileField(nil, e.V)
					} else {
						sub := &Doc{}
						sub.Append(rest, e.V)
						m, err = compileFilter(vDoc(sub))
					}
					if err != nil {
						return nil, err
					}
					if filter == nil {
						filter = m
					} else {
						prev := filter
						filter = func(v Val) bool { return prev(v) && m(v) }
					}
				}
			}
			if filter == nil {
				return nil, errBadValue("No array filter found for identifier '%s' in path '%s'", ident, path)
			}
		}
		prefix := strings.Join(parts[:i], ".")
		arr := getPath(vDoc(root), prefix)
		if arr.T != tArray {
			return nil, errBadValue("The path '%s' must exist in the document in order to apply array updates.", prefix)
		}
		var out []string
		for j, el := range arr.elems() {
			if filter != nil && !filter(el) {
				continue
			}
			rest := strings.Join(parts[i+1:], ".")
			sub := prefix + "." + itoa(j)
			if rest != "" {
				sub += "." + rest
			}
			more, err := expandArrayPaths(root, sub, arrayFilters, query)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
		return out, nil
	}
	return []string{path}, nil
}

// positionalIndex finds the index of the first element of the array at
// arrayPath that satisfies the query's conditions on that array (the
// positional "$" update operator).
func positionalIndex(doc Val, arrayPath string, query Val) (int, bool) {
	arr := getPath(doc, arrayPath)
	if arr.T != tArray || query.T != tDoc {
		return 0, false
	}
	var conds []matcher
	var collect func(q Val)
	collect = func(q Val) {
		for _, e := range q.doc().E {
			switch {
			case e.K == "$and":
				for _, sub := range e.V.elems() {
					collect(sub)
				}
			case e.K == arrayPath:
				if e.V.T == tDoc && e.V.doc().index("$elemMatch") == 0 {
					if m, err := compileFilter(e.V.doc().Get("$elemMatch")); err == nil {
						inner := m
						conds = append(conds, func(v Val) bool { return v.T == tDoc && inner(v) })
					}
				} else if m, err := compileField(nil, e.V); err == nil {
					conds = append(conds, m)
				}
			case strings.HasPrefix(e.K, arrayPath+"."):
				if m, err := compileField(splitPath(e.K[len(arrayPath)+1:]), e.V); err == nil {
					conds = append(conds, m)
				}
			}
		}
	}
	collect(query)
	if len(conds) == 0 {
		return 0, false
	}
	for i, el := range arr.elems() {
		ok := true
		for _, m := range conds {
			if !m(el) {
				ok = false
				break
			}
		}
		if ok {
			return i, true
		}
	}
	return 0, false
}
