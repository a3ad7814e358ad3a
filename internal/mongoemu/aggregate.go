package mongoemu

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// stage transforms a batch of documents.
type stage struct {
	name string
	run  func(in []Val) ([]Val, error)
}

// compilePipeline compiles aggregation stages (after any $changeStream).
func compilePipeline(stages []Val) ([]stage, error) {
	out := make([]stage, 0, len(stages))
	for _, sv := range stages {
		if sv.T != tDoc || len(sv.doc().E) != 1 {
			return nil, newErr(40323, "A pipeline stage specification object must contain exactly one field.")
		}
		e := sv.doc().E[0]
		st, err := compileStage(e.K, e.V)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func runPipeline(stages []stage, docs []Val) ([]Val, error) {
	var err error
	for _, st := range stages {
		if docs, err = st.run(docs); err != nil {
			return nil, err
		}
	}
	return docs, nil
}

func mapDocs(in []Val, f func(Val) (Val, error)) ([]Val, error) {
	out := in[:0:0]
	for _, d := range in {
		r, err := f(d)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func compileStage(name string, arg Val) (stage, error) {
	switch name {
	case "$match":
		m, err := compileFilter(arg)
		if err != nil {
			return stage{}, err
		}
		return stage{name, func(in []Val) ([]Val, error) {
			out := in[:0:0]
			for _, d := range in {
				if m(d) {
					out = append(out, d)
				}
			}
			return out, nil
		}}, nil
	case "$sort":
		keys, err := parseSort(arg)
		if err != nil {
			return stage{}, err
		}
		return stage{name, func(in []Val) ([]Val, error) { sortDocs(in, keys); return in, nil }}, nil
	case "$skip", "$limit":
		n, ok := arg.asInt64()
		if !ok || n < 0 {
			return stage{}, errBadValue("invalid argument to %s stage", name)
		}
		return stage{name, func(in []Val) ([]Val, error) {
			if name == "$skip" {
				if n >= int64(len(in)) {
					return nil, nil
				}
				return in[n:], nil
			}
			if n < int64(len(in)) {
				return in[:n], nil
			}
			return in, nil
		}}, nil
	case "$project":
		if arg.T != tDoc {
			return stage{}, newErr(15969, "$project specification must be an object")
		}
		p, err := compileProjection(arg.doc())
		if err != nil {
			return stage{}, err
		}
		return stage{name, func(in []Val) ([]Val, error) { return mapDocs(in, p.apply) }}, nil
	case "$addFields", "$set":
		if arg.T != tDoc {
			return stage{}, newErr(40272, "%s specification stage must be an object", name)
		}
		spec := arg.doc()
		return stage{name, func(in []Val) ([]Val, error) {
			return mapDocs(in, func(d Val) (Val, error) { return addFields(d, spec) })
		}}, nil
	case "$unset":
		var paths []string
		if arg.T == tString {
			paths = []string{arg.str()}
		} else {
			for _, e := range arg.elems() {
				paths = append(paths, e.str())
			}
		}
		return stage{name, func(in []Val) ([]Val, error) {
			return mapDocs(in, func(d Val) (Val, error) { return unsetFields(d, paths), nil })
		}}, nil
	case "$replaceRoot", "$replaceWith":
		expr := arg
		if name == "$replaceRoot" {
			expr = arg.field("newRoot")
		}
		return stage{name, func(in []Val) ([]Val, error) {
			return mapDocs(in, func(d Val) (Val, error) {
				r, err := evalExpr(expr, d, nil)
				if err != nil {
					return missing, err
				}
				if r.T != tDoc {
					return missing, newErr(40228, "'newRoot' expression must evaluate to an object, but resulting value was: %s. Type of resulting value: '%s'.", shellString(r), typeName(r))
				}
				return r, nil
			})
		}}, nil
	case "$count":
		field := arg.str()
		return stage{name, func(in []Val) ([]Val, error) {
			if len(in) == 0 {
				return nil, nil
			}
			return []Val{vDoc(docOf(field, vInt(int64(len(in)))))}, nil
		}}, nil
	case "$group":
		return compileGroup(arg)
	case "$sample":
		size, _ := arg.field("size").asInt64()
		return stage{name, func(in []Val) ([]Val, error) {
			rand.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
			if int64(len(in)) > size {
				in = in[:size]
			}
			return in, nil
		}}, nil
	case "$bucketAuto":
		return compileBucketAuto(arg)
	case "$unwind":
		path, preserve := arg.str(), false
		if arg.T == tDoc {
			path = arg.field("path").str()
			preserve = arg.field("preserveNullAndEmptyArrays").truthy()
		}
		path = strings.TrimPrefix(path, "$")
		return stage{name, func(in []Val) ([]Val, error) {
			var out []Val
			for _, d := range in {
				v := getPath(d, path)
				if v.T != tArray {
					if v.exists() && !v.isNullish() || preserve {
						out = append(out, d)
					}
					continue
				}
				els := v.elems()
				if len(els) == 0 && preserve {
					out = append(out, unsetFields(d, []string{path}))
				}
				for _, el := range els {
					nd := d.clone()
					setPathForce(&nd, path, el)
					out = append(out, nd)
				}
			}
			return out, nil
		}}, nil
	case "$sortByCount":
		g, err := compileGroup(vDoc(docOf("_id", arg, "count", docOf("$sum", 1))))
		if err != nil {
			return stage{}, err
		}
		return stage{name, func(in []Val) ([]Val, error) {
			out, err := g.run(in)
			if err != nil {
				return nil, err
			}
			sortDocs(out, []sortKey{{parts: []string{"count"}, desc: true}})
			return out, nil
		}}, nil
	}
	return stage{}, newErr(codeUnrecognizedPipelineStage, "Unrecognized pipeline stage name: '%s'", name)
}

func addFields(d Val, spec *Doc) (Val, error) {
	out := d.clone()
	for _, e := range spec.E {
		v, err := evalExpr(e.V, d, nil)
		if err != nil {
			return missing, err
		}
		if !v.exists() {
			out = unsetFields(out, []string{e.K})
			continue
		}
		setPathForce(&out, e.K, v)
	}
	return out, nil
}

// setPathForce sets a dotted path, creating or overwriting intermediate
// documents (aggregation semantics).
func setPathForce(root *Val, path string, v Val) {
	parts := splitPath(path)
	cur := root.mutableDoc()
	for _, p := range parts[:len(parts)-1] {
		i := cur.index(p)
		if i < 0 || cur.E[i].V.T != tDoc {
			nd := &Doc{}
			cur.Set(p, vDoc(nd))
			cur = nd
			continue
		}
		cur = cur.E[i].V.mutableDoc()
	}
	cur.Set(parts[len(parts)-1], v)
}

// accumulator implements $group accumulators.
type accumulator struct {
	op     string
	n      int
	isum   int64
	fsum   float64
	float  bool
	long   bool
	val    Val
	set    bool
	list   []Val
	counts int64
}

func newAccumulator(op string) *accumulator { return &accumulator{op: op} }

func (a *accumulator) add(v Val) {
	switch a.op {
	case "$sum", "$avg":
		if !v.isNumber() {
			return
		}
		a.n++
		if v.T == tDouble || v.T == tDecimal {
			a.float = true
		}
		if v.T == tInt64 {
			a.long = true
		}
		f, _ := v.asFloat()
		a.fsum += f
		if !a.float {
			i, _ := v.asInt64()
			a.isum += i
		}
	case "$min", "$max":
		if v.isNullish() {
			return
		}
		c := compareVals(v, a.val)
		if !a.set || (a.op == "$min" && c < 0) || (a.op == "$max" && c > 0) {
			a.val, a.set = v, true
		}
	case "$first":
		if !a.set {
			a.val, a.set = v, true
		}
	case "$last":
		a.val, a.set = v, true
	case "$push":
		if v.exists() {
			a.list = append(a.list, v)
		}
	case "$addToSet":
		if !v.exists() {
			return
		}
		for _, x := range a.list {
			if valsEqual(x, v) {
				return
			}
		}
		a.list = append(a.list, v)
	case "$count":
		a.counts++
	}
}

func (a *accumulator) result() Val {
	switch a.op {
	case "$sum":
		if a.float {
			return vDouble(a.fsum)
		}
		if !a.long && a.isum >= math.MinInt32 && a.isum <= math.MaxInt32 {
			return vInt32(int32(a.isum))
		}
		return vInt64(a.isum)
	case "$avg":
		if a.n == 0 {
			return vNull()
		}
		return vDouble(a.fsum / float64(a.n))
	case "$min", "$max", "$first", "$last":
		if !a.val.exists() {
			return vNull()
		}
		return a.val
	case "$push", "$addToSet":
		return vArr(append([]Val{}, a.list...))
	case "$count":
		return vInt(a.counts)
	}
	return vNull()
}

func compileGroup(arg Val) (stage, error) {
	if arg.T != tDoc || !arg.doc().Get("_id").exists() {
		return stage{}, newErr(15955, "a group specification must include an _id")
	}
	spec := arg.doc()
	idExpr := spec.Get("_id")
	type accSpec struct {
		field, op string
		expr      Val
	}
	var accs []accSpec
	for _, e := range spec.E {
		if e.K == "_id" {
			continue
		}
		if e.V.T != tDoc || len(e.V.doc().E) != 1 {
			return stage{}, newErr(40234, "The field '%s' must be an accumulator object", e.K)
		}
		op := e.V.doc().E[0]
		switch op.K {
		case "$sum", "$avg", "$min", "$max", "$first", "$last", "$push", "$addToSet", "$count":
		default:
			return stage{}, newErr(15952, "unknown group operator '%s'", op.K)
		}
		accs = append(accs, accSpec{field: e.K, op: op.K, expr: op.V})
	}
	return stage{"$group", func(in []Val) ([]Val, error) {
		type group struct {
			id   Val
			accs []*accumulator
		}
		groups := map[string]*group{}
		var order []*group
		for _, d := range in {
			id, err := evalExpr(idExpr, d, nil)
			if err != nil {
				return nil, err
			}
			if !id.exists() {
				id = vNull()
			}
			k := idKeyOf(id)
			g := groups[k]
			if g == nil {
				g = &group{id: id}
				for _, a := range accs {
					g.accs = append(g.accs, newAccumulator(a.op))
				}
				groups[k] = g
				order = append(order, g)
			}
			for i, a := range accs {
				v, err := evalExpr(a.expr, d, nil)
				if err != nil {
					return nil, err
				}
				g.accs[i].add(v)
			}
		}
		out := make([]Val, 0, len(order))
		for _, g := range order {
			d := docOf("_id", g.id)
			for i, a := range accs {
				d.Append(a.field, g.accs[i].result())
			}
			out = append(out, vDoc(d))
		}
		return out, nil
	}}, nil
}

// compileBucketAuto implements $bucketAuto with groupBy and buckets, with
// count as the default output.
func compileBucketAuto(arg Val) (stage, error) {
	groupBy := arg.field("groupBy")
	nb, ok := arg.field("buckets").asInt64()
	if !groupBy.exists() || !ok || nb <= 0 {
		return stage{}, newErr(40246, "$bucketAuto requires 'groupBy' and 'buckets' to be specified")
	}
	return stage{"$bucketAuto", func(in []Val) ([]Val, error) {
		type kv struct{ key, doc Val }
		items := make([]kv, 0, len(in))
		for _, d := range in {
			k, err := evalExpr(groupBy, d, nil)
			if err != nil {
				return nil, err
			}
			if !k.exists() {
				k = vNull()
			}
			items = append(items, kv{k, d})
		}
		sort.SliceStable(items, func(i, j int) bool { return compareVals(items[i].key, items[j].key) < 0 })
		if len(items) == 0 {
			return nil, nil
		}
		per := (len(items) + int(nb) - 1) / int(nb)
		var out []Val
		for i := 0; i < len(items); {
			end := i + per
			if end > len(items) {
				end = len(items)
			}
			// Keep equal keys in one bucket.
			for end < len(items) && compareVals(items[end].key, items[end-1].key) == 0 {
				end++
			}
			maxKey := items[end-1].key
			if end < len(items) {
				maxKey = items[end].key
			}
			out = append(out, vDoc(docOf("_id", docOf("min", items[i].key, "max", maxKey), "count", vInt(int64(end-i)))))
			i = end
		}
		return out, nil
	}}, nil
}
