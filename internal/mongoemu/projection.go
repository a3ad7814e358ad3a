package mongoemu

import "strings"

// projection is a compiled inclusion or exclusion projection.
type projection struct {
	root      *projNode
	inclusion bool
	idSet     bool // _id explicitly mentioned
	idInclude bool
}

type projNode struct {
	order    []string
	children map[string]*projChild
}

type projChild struct {
	include bool // leaf inclusion
	exclude bool // leaf exclusion
	expr    Val  // computed value
	hasExpr bool
	slice   Val // find-only $slice argument
	elemM   matcher
	sub     *projNode
}

func newProjNode() *projNode { return &projNode{children: map[string]*projChild{}} }

func (n *projNode) child(k string) *projChild {
	c := n.children[k]
	if c == nil {
		c = &projChild{}
		n.children[k] = c
		n.order = append(n.order, k)
	}
	return c
}

// compileProjection compiles a find projection or a $project stage.
func compileProjection(spec *Doc) (*projection, error) {
	p := &projection{root: newProjNode(), idInclude: true}
	hasInc, hasExc := false, false
	var add func(n *projNode, path string, v Val) error
	add = func(n *projNode, path string, v Val) error {
		head, rest, dotted := strings.Cut(path, ".")
		c := n.child(head)
		if dotted {
			if c.sub == nil {
				c.sub = newProjNode()
			}
			return add(c.sub, rest, v)
		}
		switch {
		case v.T == tBool || v.isNumber():
			if v.truthy() {
				c.include = true
				if path != "_id" || n != p.root {
					hasInc = true
				}
			} else {
				c.exclude = true
				if path != "_id" || n != p.root {
					hasExc = true
				}
			}
		case v.T == tDoc && v.doc().index("$slice") == 0 && len(v.doc().E) == 1:
			c.slice = v.doc().Get("$slice")
		case v.T == tDoc && v.doc().index("$elemMatch") == 0 && len(v.doc().E) == 1:
			m, err := compileFilter(v.doc().Get("$elemMatch"))
			if err != nil {
				return err
			}
			c.elemM = m
			hasInc = true
		case v.T == tDoc && !isOperatorDoc(v):
			if c.sub == nil {
				c.sub = newProjNode()
			}
			for _, e := range v.doc().E {
				if err := add(c.sub, e.K, e.V); err != nil {
					return err
				}
			}
		default:
			c.expr, c.hasExpr = v, true
			hasInc = true
		}
		return nil
	}
	for _, e := range spec.E {
		if strings.HasSuffix(e.K, ".$") {
			return nil, errBadValue("positional projection is not supported")
		}
		if err := add(p.root, e.K, e.V); err != nil {
			return nil, err
		}
		if e.K == "_id" {
			p.idSet = true
			p.idInclude = e.V.truthy() || (e.V.T != tBool && !e.V.isNumber())
		}
	}
	if hasInc && hasExc {
		return nil, newErr(31254, "Cannot do exclusion on field in inclusion projection")
	}
	p.inclusion = hasInc || (!hasExc && p.idSet && p.idInclude)
	return p, nil
}

func (p *projection) apply(doc Val) (Val, error) {
	if p.inclusion {
		out, err := p.include(p.root, doc, doc, true)
		return vDoc(out), err
	}
	return vDoc(p.exclude(p.root, doc)), nil
}

func (p *projection) include(n *projNode, d Val, root Val, top bool) (*Doc, error) {
	out := &Doc{}
	src := d.doc()
	if top && p.idInclude {
		if id := src.Get("_id"); id.exists() {
			if c := n.children["_id"]; c == nil || !c.hasExpr {
				out.Append("_id", id)
			}
		}
	}
	for _, e := range src.E {
		c := n.children[e.K]
		if c == nil || (top && e.K == "_id") {
			continue
		}
		switch {
		case c.include:
			out.Append(e.K, e.V)
		case c.elemM != nil:
			if e.V.T == tArray {
				for _, el := range e.V.elems() {
					if el.T == tDoc && c.elemM(el) {
						out.Append(e.K, vArr([]Val{el}))
						break
					}
				}
			}
		case c.slice.exists():
			out.Append(e.K, applySlice(e.V, c.slice))
		case c.sub != nil:
			switch e.V.T {
			case tDoc:
				sub, err := p.include(c.sub, e.V, root, false)
				if err != nil {
					return nil, err
				}
				out.Append(e.K, vDoc(sub))
			case tArray:
				var arr []Val
				for _, el := range e.V.elems() {
					if el.T == tDoc {
						sub, err := p.include(c.sub, el, root, false)
						if err != nil {
							return nil, err
						}
						arr = append(arr, vDoc(sub))
					}
				}
				out.Append(e.K, vArr(arr))
			}
		}
	}
	for _, k := range n.order {
		c := n.children[k]
		if c.hasExpr {
			v, err := evalExpr(c.expr, root, nil)
			if err != nil {
				return nil, err
			}
			if v.exists() {
				out.Set(k, v)
			}
		} else if c.sub != nil && c.sub.hasExprs() && !src.Get(k).exists() {
			sub, err := p.include(c.sub, vDoc(&Doc{}), root, false)
			if err != nil {
				return nil, err
			}
			out.Append(k, vDoc(sub))
		}
	}
	if top && p.idInclude {
		if c := n.children["_id"]; c != nil && c.hasExpr {
			// computed _id stays first
			id := out.Get("_id")
			out.Delete("_id")
			out.E = append([]Elem{{K: "_id", V: id}}, out.E...)
		}
	}
	return out, nil
}

func (n *projNode) hasExprs() bool {
	for _, c := range n.children {
		if c.hasExpr || (c.sub != nil && c.sub.hasExprs()) {
			return true
		}
	}
	return false
}

func (p *projection) exclude(n *projNode, d Val) *Doc {
	out := &Doc{}
	for _, e := range d.doc().E {
		c := n.children[e.K]
		if c == nil {
			out.Append(e.K, e.V)
			continue
		}
		switch {
		case c.exclude:
		case c.slice.exists():
			out.Append(e.K, applySlice(e.V, c.slice))
		case c.sub != nil && e.V.T == tDoc:
			out.Append(e.K, vDoc(p.exclude(c.sub, e.V)))
		case c.sub != nil && e.V.T == tArray:
			var arr []Val
			for _, el := range e.V.elems() {
				if el.T == tDoc {
					arr = append(arr, vDoc(p.exclude(c.sub, el)))
				} else {
					arr = append(arr, el)
				}
			}
			out.Append(e.K, vArr(arr))
		default:
			out.Append(e.K, e.V)
		}
	}
	return out
}

func applySlice(v Val, arg Val) Val {
	if v.T != tArray {
		return v
	}
	els := v.elems()
	skip, limit := int64(0), int64(len(els))
	if arg.T == tArray {
		a := arg.elems()
		if len(a) == 2 {
			skip, _ = a[0].asInt64()
			limit, _ = a[1].asInt64()
		}
	} else {
		n, _ := arg.asInt64()
		if n < 0 {
			skip, limit = n, -n
		} else {
			limit = n
		}
	}
	if skip < 0 {
		skip += int64(len(els))
		if skip < 0 {
			skip = 0
		}
	}
	if skip > int64(len(els)) {
		skip = int64(len(els))
	}
	end := skip + limit
	if end > int64(len(els)) {
		end = int64(len(els))
	}
	return vArr(append([]Val(nil), els[skip:end]...))
}

// unsetFields removes dotted paths (the $unset stage).
func unsetFields(doc Val, paths []string) Val {
	spec := &Doc{}
	for _, p := range paths {
		spec.Append(p, vInt32(0))
	}
	p, err := compileProjection(spec)
	if err != nil {
		return doc
	}
	return vDoc(p.exclude(p.root, doc))
}
