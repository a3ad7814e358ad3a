package mongoemu

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// updateDesc is the serialised updateDescription of an update event.
type updateDesc struct {
	updated   []byte // updatedFields document
	removed   []byte // removedFields array
	truncated []byte // truncatedArrays array
	disamb    []byte // disambiguatedPaths document (showExpandedEvents only)
}

// pathChange is one reported path with its components (strings for field
// names, ints for array indexes).
type pathChange struct {
	comps []any
	val   Val
}

func (p pathChange) path() string {
	var b strings.Builder
	for i, c := range p.comps {
		if i > 0 {
			b.WriteByte('.')
		}
		switch t := c.(type) {
		case string:
			b.WriteString(t)
		case int:
			b.WriteString(itoa(t))
		}
	}
	return b.String()
}

// ambiguous reports whether the dotted path alone does not identify the
// components: a numeric field name, an array index, or a dotted field name.
func (p pathChange) ambiguous() bool {
	for _, c := range p.comps {
		switch t := c.(type) {
		case int:
			return true
		case string:
			if _, num := arrayIndex(t); num || strings.Contains(t, ".") {
				return true
			}
		}
	}
	return false
}

type truncation struct {
	comps   []any
	newSize int
}

type diffResult struct {
	updated   []pathChange
	removed   []pathChange
	truncated []truncation
}

// describeOperatorUpdate reports an operator update the way MongoDB's
// delta oplog entries do: each touched path with its new value (new
// sub-documents are reported at the highest newly created field), removed
// paths, and appended array elements as individual indexes.
func describeOperatorUpdate(old, nw Val, touched []string) *diffResult {
	r := &diffResult{}
	done := map[string]bool{}
	for _, p := range touched {
		parts := splitPath(p)
		// Find the highest prefix that did not exist before.
		cut := len(parts)
		comps := make([]any, 0, len(parts))
		ov, nv := old, nw
		for i, part := range parts {
			if nv.T == tArray || (!nv.exists() && ov.T == tArray) {
				n, _ := arrayIndex(part)
				comps = append(comps, n)
			} else {
				comps = append(comps, part)
			}
			ov = childOf(ov, part)
			nv = childOf(nv, part)
			if !ov.exists() && nv.exists() {
				cut = i + 1
				break
			}
		}
		comps = comps[:cut]
		pc := pathChange{comps: comps}
		key := pc.path()
		if done[key] {
			continue
		}
		done[key] = true
		ov, nv = getPath(old, key), getPath(nw, key)
		switch {
		case !nv.exists():
			if ov.exists() {
				r.removed = append(r.removed, pc)
			}
		case ov.exists() && valsEqual(ov, nv) && ov.T == nv.T:
		case ov.T == tArray && nv.T == tArray && isPrefix(ov.elems(), nv.elems()):
			for i, e := range nv.elems()[len(ov.elems()):] {
				c := append(append([]any{}, comps...), len(ov.elems())+i)
				r.updated = append(r.updated, pathChange{comps: c, val: e})
			}
		default:
			pc.val = nv
			r.updated = append(r.updated, pc)
		}
	}
	return r
}

func childOf(v Val, part string) Val {
	switch v.T {
	case tDoc:
		return v.field(part)
	case tArray:
		if n, ok := arrayIndex(part); ok {
			els := v.elems()
			if n < len(els) {
				return els[n]
			}
		}
	}
	return missing
}

func isPrefix(a, b []Val) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if !(valsEqual(a[i], b[i]) && a[i].T == b[i].T) {
			return false
		}
	}
	return true
}

// diffDocs computes a full structural diff (used for pipeline updates).
func diffDocs(old, nw Val, prefix []any, r *diffResult) {
	od, nd := old.doc(), nw.doc()
	for _, e := range od.E {
		if !nd.Get(e.K).exists() {
			r.removed = append(r.removed, pathChange{comps: appendComp(prefix, e.K)})
		}
	}
	for _, e := range nd.E {
		ov := od.Get(e.K)
		diffValue(ov, e.V, appendComp(prefix, e.K), r)
	}
}

func appendComp(prefix []any, c any) []any {
	return append(append(make([]any, 0, len(prefix)+1), prefix...), c)
}

func diffValue(ov, nv Val, comps []any, r *diffResult) {
	switch {
	case !ov.exists():
		r.updated = append(r.updated, pathChange{comps: comps, val: nv})
	case ov.T == tDoc && nv.T == tDoc:
		diffDocs(ov, nv, comps, r)
	case ov.T == tArray && nv.T == tArray:
		oe, ne := ov.elems(), nv.elems()
		if len(ne) < len(oe) {
			r.truncated = append(r.truncated, truncation{comps: comps, newSize: len(ne)})
		}
		for i, e := range ne {
			if i < len(oe) {
				if oe[i].T == tDoc && e.T == tDoc {
					diffDocs(oe[i], e, appendComp(comps, i), r)
				} else if !(valsEqual(oe[i], e) && oe[i].T == e.T) {
					r.updated = append(r.updated, pathChange{comps: appendComp(comps, i), val: e})
				}
				continue
			}
			r.updated = append(r.updated, pathChange{comps: appendComp(comps, i), val: e})
		}
	case !(valsEqual(ov, nv) && ov.T == nv.T):
		r.updated = append(r.updated, pathChange{comps: comps, val: nv})
	}
}

func (r *diffResult) empty() bool {
	return len(r.updated) == 0 && len(r.removed) == 0 && len(r.truncated) == 0
}

func compsVal(comps []any) Val {
	vals := make([]Val, len(comps))
	for i, c := range comps {
		switch t := c.(type) {
		case string:
			vals[i] = vString(t)
		case int:
			vals[i] = vInt32(int32(t))
		}
	}
	return vArr(vals)
}

// encode serialises the diff.
func (r *diffResult) encode() *updateDesc {
	upd, rem, trunc, dis := &Doc{}, []Val{}, []Val{}, &Doc{}
	note := func(pc pathChange) {
		if pc.ambiguous() {
			dis.Set(pc.path(), compsVal(pc.comps))
		}
	}
	for _, pc := range r.updated {
		upd.Append(pc.path(), pc.val)
		note(pc)
	}
	for _, pc := range r.removed {
		rem = append(rem, vString(pc.path()))
		note(pc)
	}
	for _, t := range r.truncated {
		pc := pathChange{comps: t.comps}
		trunc = append(trunc, vDoc(docOf("field", pc.path(), "newSize", t.newSize)))
		note(pc)
	}
	return &updateDesc{
		updated:   upd.Bytes(),
		removed:   appendValue(nil, vArr(rem)),
		truncated: appendValue(nil, vArr(trunc)),
		disamb:    dis.Bytes(),
	}
}

// appendTo appends the updateDescription document.
func (u *updateDesc) appendTo(dst []byte, expanded bool) []byte {
	idx, dst := bsoncore.AppendDocumentElementStart(dst, "updateDescription")
	dst = bsoncore.AppendDocumentElement(dst, "updatedFields", u.updated)
	dst = bsoncore.AppendArrayElement(dst, "removedFields", u.removed)
	dst = bsoncore.AppendArrayElement(dst, "truncatedArrays", u.truncated)
	if expanded {
		dst = bsoncore.AppendDocumentElement(dst, "disambiguatedPaths", u.disamb)
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}
