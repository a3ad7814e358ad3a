package transform

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fieldPath is a parsed dotted path. A segment of digits indexes an array
// (and also matches a document field of that name, as in MongoDB).
type fieldPath struct {
	text string
	// self is the path ".": the value itself (array elements in children).
	self bool
	segs []pathSeg
	// top indexes Mapping.topKeys for a root-document path with a first
	// segment (see Mapping.scanTop), or is -1.
	top int
}

type pathSeg struct {
	name string
	// index is the array index of an all-digit segment, or -1.
	index int
}

var errCrossesArray = errors.New("path crosses an array; index it with a number or map it as a child table")

// parsePath parses a dotted path. allowSelf admits ".". A path never holds
// a NUL byte or invalid UTF-8 (no BSON field name does), so the path text
// a dead letter records is always valid PostgreSQL text; paths reach SQL
// only as bound parameters and never reach subjects.
func parsePath(s string, allowSelf bool) (fieldPath, error) {
	p := fieldPath{text: s, top: -1}
	if strings.IndexByte(s, 0) >= 0 {
		return p, fmt.Errorf("path %q contains a NUL character", s)
	}
	if !utf8.ValidString(s) {
		return p, fmt.Errorf("path %q is not valid UTF-8", s)
	}
	if s == "." {
		if !allowSelf {
			return p, errors.New(`path "." (the element itself) only works in a child table`)
		}
		p.self = true
		return p, nil
	}
	if s == "" {
		return p, errors.New("path is empty")
	}
	for _, seg := range strings.Split(s, ".") {
		if seg == "" {
			return p, fmt.Errorf("path %q has an empty segment", s)
		}
		if strings.HasPrefix(seg, "$") {
			return p, fmt.Errorf("path %q: segment %q starts with $", s, seg)
		}
		idx := -1
		if n, err := strconv.Atoi(seg); err == nil && n >= 0 && strconv.Itoa(n) == seg {
			idx = n
		}
		p.segs = append(p.segs, pathSeg{name: seg, index: idx})
	}
	return p, nil
}

// resolve walks p from root. A field that is absent, or a path that
// continues below a scalar, resolves to missing. A named segment applied
// to an array is an error (MongoDB would fan out over the elements; a
// column holds one value).
func (p *fieldPath) resolve(root rawValue) (rawValue, error) {
	return resolveSegs(root, p.segs)
}

// resolveTop resolves p using the pre-scanned top-level fields of the root
// document when p has a top index.
func (p *fieldPath) resolveTop(root rawValue, top []rawValue) (rawValue, error) {
	if p.top < 0 || top == nil {
		return resolveSegs(root, p.segs)
	}
	v := top[p.top]
	if v.missing() {
		return v, nil
	}
	return resolveSegs(v, p.segs[1:])
}

func resolveSegs(root rawValue, segs []pathSeg) (rawValue, error) {
	cur := root
	for i := range segs {
		seg := &segs[i]
		switch cur.typ {
		case bsonDocument:
			v, err := lookup(cur.data, seg.name)
			if err != nil {
				return rawValue{}, err
			}
			cur = v
		case bsonArray:
			if seg.index < 0 {
				return rawValue{}, errCrossesArray
			}
			v, err := index(cur.data, seg.index)
			if err != nil {
				return rawValue{}, err
			}
			cur = v
		default:
			return rawValue{}, nil
		}
		if cur.missing() {
			return cur, nil
		}
	}
	return cur, nil
}

// lookup returns the first field named key, or missing.
func lookup(doc []byte, key string) (rawValue, error) {
	it := newDocIter(doc)
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		if string(k) == key {
			return v, nil
		}
	}
	return rawValue{}, it.err
}

// index returns the i-th element of an array, or missing.
func index(arr []byte, i int) (rawValue, error) {
	it := newDocIter(arr)
	n := 0
	for _, v, ok := it.next(); ok; _, v, ok = it.next() {
		if n == i {
			return v, nil
		}
		n++
	}
	return rawValue{}, it.err
}

// consumed records which document fields columns and children read, so
// `include: rest` keeps exactly the others. A path through an array index
// consumes nothing: the array stays whole in rest.
type consumed struct {
	whole bool
	sub   map[string]*consumed
}

func (c *consumed) add(p fieldPath) {
	if p.self {
		return
	}
	n := c
	for i, seg := range p.segs {
		if seg.index >= 0 {
			return
		}
		if n.sub == nil {
			n.sub = map[string]*consumed{}
		}
		next := n.sub[seg.name]
		if next == nil {
			next = &consumed{}
			n.sub[seg.name] = next
		}
		n = next
		if i == len(p.segs)-1 {
			n.whole = true
		}
	}
}

// rest appends to e the JSON object of doc's fields that c does not
// consume. A partly consumed sub-document keeps its other fields; one left
// empty is omitted.
func (e *jsonEncoder) rest(doc []byte, c *consumed, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	e.buf = append(e.buf, '{')
	it := newDocIter(doc)
	first := true
	for key, v, ok := it.next(); ok; key, v, ok = it.next() {
		sub := c.sub[string(key)]
		if sub != nil && sub.whole {
			continue
		}
		mark := len(e.buf)
		if !first {
			e.buf = append(e.buf, ',')
		}
		if err := e.str(key); err != nil {
			return under(string(key), err)
		}
		e.buf = append(e.buf, ':')
		var err error
		if sub != nil && v.typ == bsonDocument {
			inner := len(e.buf)
			err = e.rest(v.data, sub, depth+1)
			if err == nil && len(e.buf) == inner+2 { // "{}": nothing left
				e.buf = e.buf[:mark]
				continue
			}
		} else {
			err = e.value(v, depth)
		}
		if err != nil {
			return under(string(key), err)
		}
		first = false
	}
	if it.err != nil {
		return it.err
	}
	e.buf = append(e.buf, '}')
	return nil
}
