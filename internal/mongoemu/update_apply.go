package mongoemu

import (
	"strconv"
	"time"
)

func itoa(i int) string { return strconv.Itoa(i) }

// slot addresses one field of a mutable document or one array element.
type slot struct {
	doc *Doc
	arr *Arr
	key string
	idx int
}

func (s slot) get() Val {
	if s.doc != nil {
		return s.doc.Get(s.key)
	}
	if s.idx < len(s.arr.V) {
		return s.arr.V[s.idx]
	}
	return missing
}

func (s slot) set(v Val) {
	if s.doc != nil {
		s.doc.Set(s.key, v)
		return
	}
	for len(s.arr.V) <= s.idx {
		s.arr.V = append(s.arr.V, vNull())
	}
	s.arr.V[s.idx] = v
}

func (s slot) unset() bool {
	if s.doc != nil {
		return s.doc.Delete(s.key)
	}
	if s.idx < len(s.arr.V) {
		s.arr.V[s.idx] = vNull()
		return true
	}
	return false
}

// mutable returns a pointer to the value in the slot so containers can be
// converted to their mutable form in place.
func (s slot) mutable() *Val {
	if s.doc != nil {
		i := s.doc.index(s.key)
		if i < 0 {
			return nil
		}
		return &s.doc.E[i].V
	}
	if s.idx < len(s.arr.V) {
		return &s.arr.V[s.idx]
	}
	return nil
}

// findSlot navigates to path. With create, missing intermediate documents
// are created; ok is false when the path cannot exist (and !create).
func findSlot(root *Doc, path string, create bool, id Val) (slot, bool, error) {
	parts := splitPath(path)
	cur := slot{doc: root, key: parts[0]}
	for i, p := range parts {
		if i > 0 {
			vp := cur.mutable()
			if vp == nil || !vp.exists() {
				if !create {
					return slot{}, false, nil
				}
				nd := &Doc{}
				cur.set(vDoc(nd))
				cur = slot{doc: nd, key: p}
				continue
			}
			switch vp.T {
			case tDoc:
				cur = slot{doc: vp.mutableDoc(), key: p}
			case tArray:
				n, ok := arrayIndex(p)
				if !ok {
					if !create {
						return slot{}, false, nil
					}
					return slot{}, false, newErr(codePathNotViable, "Cannot create field '%s' in element {%s: %s}", p, parts[i-1], shellString(*vp))
				}
				cur = slot{arr: vp.mutableArr(), idx: n}
			default:
				if !create {
					return slot{}, false, nil
				}
				return slot{}, false, newErr(codePathNotViable, "Cannot create field '%s' in element {%s: %s}", p, parts[i-1], shellString(*vp))
			}
		}
	}
	return cur, true, nil
}

// applyOp applies one operator to one path; it reports whether the
// document changed.
func applyOp(root *Doc, op, path string, arg Val, id Val) (bool, error) {
	if path == "_id" && op != "$set" && op != "$setOnInsert" {
		return false, immutableID(id)
	}
	switch op {
	case "$set", "$setOnInsert":
		s, _, err := findSlot(root, path, true, id)
		if err != nil {
			return false, err
		}
		old := s.get()
		if old.exists() && valsEqual(old, arg) && old.T == arg.T {
			return false, nil
		}
		s.set(arg.clone())
		return true, nil
	case "$unset":
		s, ok, err := findSlot(root, path, false, id)
		if err != nil || !ok || !s.get().exists() {
			return false, err
		}
		return s.unset(), nil
	case "$inc", "$mul":
		if !arg.isNumber() {
			return false, newErr(codeTypeMismatch, "Cannot %s with non-numeric argument: {%s: %s}", op[1:], path, shellString(arg))
		}
		s, _, err := findSlot(root, path, true, id)
		if err != nil {
			return false, err
		}
		old := s.get()
		if !old.exists() {
			if op == "$mul" {
				arg, _ = arith("$multiply", []Val{arg, vInt32(0)})
			}
			s.set(arg)
			return true, nil
		}
		if !old.isNumber() {
			return false, newErr(codeTypeMismatch, "Cannot apply %s to a value of non-numeric type. {_id: %s} has the field '%s' of non-numeric type %s", op, shellString(id), lastPart(path), typeName(old))
		}
		aop := "$add"
		if op == "$mul" {
			aop = "$multiply"
		}
		nv, err := arith(aop, []Val{old, arg})
		if err != nil {
			return false, err
		}
		if old.T == tInt64 || arg.T == tInt64 {
			if n, ok := nv.asInt64(); ok && nv.T == tInt32 {
				nv = vInt64(n)
			}
		}
		s.set(nv)
		return !(valsEqual(nv, old) && nv.T == old.T), nil
	case "$min", "$max":
		s, _, err := findSlot(root, path, true, id)
		if err != nil {
			return false, err
		}
		old := s.get()
		c := compareVals(arg, old)
		if !old.exists() || (op == "$min" && c < 0) || (op == "$max" && c > 0) {
			s.set(arg.clone())
			return true, nil
		}
		return false, nil
	case "$currentDate":
		s, _, err := findSlot(root, path, true, id)
		if err != nil {
			return false, err
		}
		if arg.T == tDoc && arg.field("$type").str() == "timestamp" {
			now := time.Now()
			s.set(vTS(uint32(now.Unix()), 1))
		} else {
			s.set(vDate(nowMS()))
		}
		return true, nil
	case "$rename":
		to := arg.str()
		if to == "" || to == path {
			return false, errBadValue("The 'to' field for $rename must differ from the 'from' field")
		}
		s, ok, err := findSlot(root, path, false, id)
		if err != nil || !ok {
			return false, err
		}
		v := s.get()
		if !v.exists() {
			return false, nil
		}
		if s.arr != nil {
			return false, errBadValue("The source field cannot be an array element")
		}
		s.unset()
		t, _, err := findSlot(root, to, true, id)
		if err != nil {
			return false, err
		}
		t.set(v)
		return true, nil
	case "$push", "$addToSet":
		return applyPush(root, op, path, arg, id)
	case "$pop":
		s, ok, err := findSlot(root, path, false, id)
		if err != nil || !ok || !s.get().exists() {
			return false, err
		}
		vp := s.mutable()
		if vp.T != tArray {
			return false, newErr(codeTypeMismatch, "Path '%s' contains an element of non-array type '%s'", path, typeName(*vp))
		}
		a := vp.mutableArr()
		if len(a.V) == 0 {
			return false, nil
		}
		if n, _ := arg.asInt64(); n < 0 {
			a.V = a.V[1:]
		} else {
			a.V = a.V[:len(a.V)-1]
		}
		return true, nil
	case "$pull", "$pullAll":
		s, ok, err := findSlot(root, path, false, id)
		if err != nil || !ok || !s.get().exists() {
			return false, err
		}
		vp := s.mutable()
		if vp.T != tArray {
			return false, errBadValue("Cannot apply %s to a non-array value", op)
		}
		var match func(Val) bool
		if op == "$pullAll" {
			list := arg.elems()
			match = func(v Val) bool {
				for _, x := range list {
					if valsEqual(v, x) {
						return true
					}
				}
				return false
			}
		} else if arg.T == tDoc {
			var m matcher
			if isOperatorDoc(arg) && !isLogical(arg.doc().E[0].K) {
				m, err = compileField(nil, arg)
			} else {
				m, err = compileFilter(arg)
			}
			if err != nil {
				return false, err
			}
			valueMode := isOperatorDoc(arg) && !isLogical(arg.doc().E[0].K)
			match = func(v Val) bool {
				if valueMode {
					return m(v)
				}
				return v.T == tDoc && m(v)
			}
		} else {
			match = eqPred(arg)
		}
		a := vp.mutableArr()
		out := a.V[:0:0]
		for _, v := range a.V {
			if !match(v) {
				out = append(out, v)
			}
		}
		changed := len(out) != len(a.V)
		a.V = out
		return changed, nil
	}
	return false, newErr(codeFailedToParse, "Unknown modifier: %s", op)
}

func lastPart(path string) string {
	parts := splitPath(path)
	return parts[len(parts)-1]
}

func applyPush(root *Doc, op, path string, arg Val, id Val) (bool, error) {
	items := []Val{arg}
	var slice, position Val
	var sortSpec Val
	if arg.T == tDoc && arg.doc().Get("$each").exists() {
		each := arg.doc().Get("$each")
		if each.T != tArray {
			return false, errBadValue("The argument to $each in %s must be an array but it was of type: %s", op, typeName(each))
		}
		items = each.elems()
		slice = arg.doc().Get("$slice")
		position = arg.doc().Get("$position")
		sortSpec = arg.doc().Get("$sort")
	}
	s, _, err := findSlot(root, path, true, id)
	if err != nil {
		return false, err
	}
	old := s.get()
	if !old.exists() {
		s.set(vArr(nil))
	} else if old.T != tArray {
		return false, errBadValue("The field '%s' must be an array but is of type %s in document {_id: %s}", lastPart(path), typeName(old), shellString(id))
	}
	vp := s.mutable()
	a := vp.mutableArr()
	before := len(a.V)
	if op == "$addToSet" {
		for _, it := range items {
			dup := false
			for _, x := range a.V {
				if valsEqual(x, it) {
					dup = true
					break
				}
			}
			if !dup {
				a.V = append(a.V, it.clone())
			}
		}
		return len(a.V) != before || !old.exists(), nil
	}
	pos := len(a.V)
	if position.exists() {
		p, _ := position.asInt64()
		if p < 0 {
			p += int64(len(a.V))
			if p < 0 {
				p = 0
			}
		}
		if p < int64(pos) {
			pos = int(p)
		}
	}
	cl := make([]Val, len(items))
	for i, it := range items {
		cl[i] = it.clone()
	}
	nv := append(append(append([]Val{}, a.V[:pos]...), cl...), a.V[pos:]...)
	if sortSpec.exists() {
		if sortSpec.isNumber() {
			n, _ := sortSpec.asInt64()
			sortDocs(nv, []sortKey{{desc: n < 0}})
		} else if keys, err := parseSort(sortSpec); err == nil {
			sortDocs(nv, keys)
		}
	}
	if slice.exists() {
		n, _ := slice.asInt64()
		switch {
		case n >= 0 && int(n) < len(nv):
			nv = nv[:n]
		case n < 0 && int(-n) < len(nv):
			nv = nv[len(nv)+int(n):]
		}
	}
	a.V = nv
	return true, nil
}
