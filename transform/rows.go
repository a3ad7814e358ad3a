package transform

import (
	"fmt"
	"strconv"
)

// column converts one mapped column of root (a document or an element)
// into a; top is root's pre-scanned top level, or nil.
func (m *Mapping) column(a *arena, col *colMap, root rawValue, top []rawValue) (Value, error) {
	if col.derive != nil {
		return a.derive(col.derive, uuid5Inputs{value: func(p *fieldPath) (rawValue, error) {
			return p.resolveTop(root, top)
		}}, m.order, col.required)
	}
	v, err := col.path.resolveTop(root, top)
	if err != nil {
		return Null, err
	}
	if col.idKey && !v.missing() {
		return a.idText(col.typ, v, m.order)
	}
	if col.vmap != nil && !v.isNullish() {
		mapped, err := col.vmap.lookup(v)
		if err != nil || mapped.Valid {
			return mapped, err
		}
		// Mapped to null: as a null source value (default, or required).
		v = rawValue{typ: bsonNull}
	}
	if v.isNullish() {
		switch {
		case col.def != nil:
			return Text(*col.def), nil
		case col.required:
			return Null, ErrRequired
		}
		return Null, nil
	}
	return a.convert(col.typ, v, m.order)
}

// upsertRow builds the root row and every child row from doc.
func (m *Mapping) upsertRow(doc, docKey []byte) (Mutation, error) {
	a := newArena(m.arenaSize(len(doc)))
	// Key and Values share one backing array.
	nkey := len(m.keyCols)
	row := make([]Value, nkey+len(m.root.def.Columns))
	key, vals := row[:nkey:nkey], row[nkey:nkey]
	if err := m.keyValues(a, key, docKey, doc); err != nil {
		return Mutation{}, err
	}
	root := rawValue{typ: bsonDocument, data: doc}
	var topBuf [32]rawValue
	top := topBuf[:0]
	if len(m.topKeys) <= len(topBuf) {
		top = topBuf[:len(m.topKeys)]
	} else {
		top = make([]rawValue, len(m.topKeys))
	}
	if err := m.scanTop(doc, top); err != nil {
		return Mutation{}, m.newError(docKey, "", err)
	}
	for i := range m.root.cols {
		col := &m.root.cols[i]
		if k := m.keyIndex(i); k >= 0 {
			vals = append(vals, key[k])
			continue
		}
		v, err := m.column(a, col, root, top)
		if err != nil {
			f, err := col.errField(err)
			return Mutation{}, m.newError(docKey, f, err)
		}
		vals = append(vals, v)
	}
	tenant := Null
	var err error
	if m.tenant != nil {
		if m.tenant.rootCol < len(m.root.cols) {
			tenant = vals[m.tenant.rootCol]
		} else {
			tenant, err = m.tenantValue(a, root, top, docKey)
			if err != nil {
				return Mutation{}, err
			}
			vals = append(vals, tenant)
		}
		if !tenant.Valid && m.tenant.required {
			p := ""
			if m.tenant.path != nil {
				p = m.tenant.path.text
			}
			return Mutation{}, m.newError(docKey, p, fmt.Errorf("tenant column %s: %w", m.tenantColumn(), ErrRequired))
		}
	}
	if m.doc != nil {
		e := jsonEncoder{buf: a.buf}
		if m.doc.rest {
			err = e.rest(doc, &m.doc.consumed, 0)
		} else {
			err = e.document(doc, 0)
		}
		if err != nil {
			return Mutation{}, m.newError(docKey, "", err)
		}
		vals = append(vals, Text(a.keep(e.buf)))
	}
	mut := Mutation{Table: m.root.def.Name, Op: OpUpsert, Key: key, Values: vals}
	if m.identity {
		if mut.Identity, err = m.identityText(a, docKey); err != nil {
			return Mutation{}, err
		}
	}
	if len(m.tables) > 1 {
		mut.Children = make([]ChildRows, 0, len(m.tables)-1)
		for _, ch := range m.root.children {
			link := key
			if ch.refIdx != nil {
				link = make([]Value, len(ch.refIdx))
				for j, ri := range ch.refIdx {
					if link[j] = vals[ri]; !link[j].Valid {
						return Mutation{}, m.newError(docKey, m.root.cols[ri].path.text,
							fmt.Errorf("column %s, which child table %s references, is NULL", m.root.cols[ri].name, ch.def.Name))
					}
				}
			}
			if mut.Children, err = m.childRows(mut.Children, a, ch, root, top, link, tenant, -1, docKey); err != nil {
				return Mutation{}, err
			}
		}
	}
	return mut, nil
}

func (m *Mapping) keyIndex(i int) int {
	for k, ci := range m.keyCols {
		if ci == i {
			return k
		}
	}
	return -1
}

func (m *Mapping) tenantValue(a *arena, root rawValue, top []rawValue, docKey []byte) (Value, error) {
	t := m.tenant
	if t.path == nil {
		if err := validText([]byte(t.value)); err != nil {
			return Null, m.newError(docKey, "", err)
		}
		return Text(t.value), nil
	}
	v, err := t.path.resolveTop(root, top)
	if err != nil {
		return Null, m.newError(docKey, t.path.text, err)
	}
	val, err := a.convert(t.typ, v, m.order)
	if err != nil {
		return Null, m.newError(docKey, t.path.text, err)
	}
	return val, nil
}

// childRows appends the ChildRows of ch (and then of its children) for the
// array at ch.path in parent, their texts in a. parentOrd is the parent
// element's ordinal for a grandchild, -1 for a child. base is parent's
// field path.
func (m *Mapping) childRows(out []ChildRows, a *arena, ch *childMap, parent rawValue, top []rawValue, key []Value, tenant Value, parentOrd int, docKey []byte, base ...string) ([]ChildRows, error) {
	return m.childRowsOf(out, a, ch, parent, top, key, nil, tenant, parentOrd, docKey, base...)
}

// childRowsOf is childRows; parentRow is the parent child row of a
// grandchild (whose ParentRef columns a grandchild that references them
// copies), nil for a child.
func (m *Mapping) childRowsOf(out []ChildRows, a *arena, ch *childMap, parent rawValue, top []rawValue, key, parentRow []Value, tenant Value, parentOrd int, docKey []byte, base ...string) ([]ChildRows, error) {
	prefix := ""
	if len(base) > 0 {
		prefix = base[0]
	}
	arrPath := ch.path.text
	if prefix != "" {
		arrPath = prefix + "." + arrPath
	}
	cr := ChildRows{Table: ch.def.Name, Rows: [][]Value{}}
	at := len(out)
	out = append(out, cr)
	arr, err := ch.path.resolveTop(parent, top)
	if err != nil {
		return nil, m.newError(docKey, arrPath, err)
	}
	if arr.isNullish() {
		// No array: no rows here, and none in the grandchild tables.
		return appendEmpty(out, ch.children), nil
	}
	if arr.typ != bsonArray {
		return nil, m.newError(docKey, arrPath, fmt.Errorf("child table %s needs an array, found %s", ch.def.Name, typeName(arr.typ)))
	}
	width := len(ch.def.Columns)
	n, err := countElements(arr.data)
	if err != nil {
		return nil, m.newError(docKey, arrPath, err)
	}
	// One backing array for every row of this table.
	cells := make([]Value, 0, n*width)
	out[at].Rows = make([][]Value, 0, n)
	it := newDocIter(arr.data)
	var grand [][]ChildRows
	ord := 0
	for _, el, ok := it.next(); ok; _, el, ok = it.next() {
		start := len(cells)
		if ch.parentRefIdx != nil {
			for _, pi := range ch.parentRefIdx {
				if !parentRow[pi].Valid {
					return nil, m.newError(docKey, prefix, fmt.Errorf("column %s, which child table %s references, is NULL", ch.def.ParentRef[0], ch.def.Name))
				}
				cells = append(cells, parentRow[pi])
			}
		} else {
			cells = append(cells, key...)
			if parentOrd >= 0 {
				cells = append(cells, ordinalValue(parentOrd))
			}
		}
		// The parent reference: the parent-key (and parent ordinal) cells.
		parentRef := cells[start:len(cells):len(cells)]
		if ch.ordinal {
			cells = append(cells, ordinalValue(ord))
		}
		if ch.tenant {
			cells = append(cells, tenant)
		}
		for i := range ch.cols {
			col := &ch.cols[i]
			var v Value
			var err error
			if col.derive != nil {
				v, err = a.derive(col.derive, uuid5Inputs{value: func(p *fieldPath) (rawValue, error) {
					return p.resolve(el)
				}, parent: parentRef, ordinal: ord}, m.order, col.required)
			} else {
				v, err = m.column(a, col, el, nil)
			}
			if err != nil {
				f, err := col.errField(err)
				return nil, m.newError(docKey, joinField(arrPath+"."+strconv.Itoa(ord), f), err)
			}
			cells = append(cells, v)
		}
		if ch.doc != nil {
			v, err := elementDocument(a, ch, el)
			if err != nil {
				return nil, m.newError(docKey, arrPath+"."+strconv.Itoa(ord), err)
			}
			cells = append(cells, v)
		}
		row := cells[start:len(cells):len(cells)]
		out[at].Rows = append(out[at].Rows, row)
		if len(ch.children) > 0 {
			var g []ChildRows
			for _, gc := range ch.children {
				if g, err = m.childRowsOf(g, a, gc, el, nil, key, row, tenant, ord, docKey, arrPath+"."+strconv.Itoa(ord)); err != nil {
					return nil, err
				}
			}
			grand = append(grand, g)
		}
		ord++
	}
	if it.err != nil {
		return nil, m.newError(docKey, arrPath, it.err)
	}
	// Merge each element's grandchild rows table by table.
	if len(ch.children) > 0 {
		if len(grand) == 0 {
			return appendEmpty(out, ch.children), nil
		}
		merged := grand[0]
		for _, g := range grand[1:] {
			for i := range merged {
				merged[i].Rows = append(merged[i].Rows, g[i].Rows...)
			}
		}
		out = append(out, merged...)
	}
	return out, nil
}

// elementDocument is a child row's JSONB column: the whole element (all),
// or the element's fields no column or grandchild consumed (rest). A
// non-document element under rest is NULL when a column maps it whole
// ("."), else its JSON.
func elementDocument(a *arena, ch *childMap, el rawValue) (Value, error) {
	e := jsonEncoder{buf: a.buf}
	var err error
	switch {
	case ch.doc.rest && el.typ == bsonDocument:
		err = e.rest(el.data, &ch.doc.consumed, 0)
	case ch.doc.rest && ch.selfMapped, el.isNullish():
		return Null, nil
	default:
		err = e.value(el, 0)
	}
	if err != nil {
		return Null, err
	}
	return Text(a.keep(e.buf)), nil
}

// countElements returns the number of elements of a BSON array.
func countElements(arr []byte) (int, error) {
	it := newDocIter(arr)
	n := 0
	for _, _, ok := it.next(); ok; _, _, ok = it.next() {
		n++
	}
	return n, it.err
}

// ordinals holds the text of small ordinals, so rows do not allocate them.
var ordinals = func() [256]Value {
	var o [256]Value
	for i := range o {
		o[i] = Text(strconv.Itoa(i))
	}
	return o
}()

func ordinalValue(i int) Value {
	if i < len(ordinals) {
		return ordinals[i]
	}
	return Text(strconv.Itoa(i))
}

// appendEmpty appends empty row sets for tables below a missing array.
func appendEmpty(out []ChildRows, cs []*childMap) []ChildRows {
	for _, c := range cs {
		out = append(out, ChildRows{Table: c.def.Name, Rows: [][]Value{}})
		out = appendEmpty(out, c.children)
	}
	return out
}

func joinField(base, p string) string {
	if p == "." || p == "" {
		return base
	}
	return base + "." + p
}

// errField returns the field path an error of col is reported at, and the
// error: the column's path, or for a uuid5 column the failing part's.
func (col *colMap) errField(err error) (string, error) {
	if col.derive != nil {
		if part, e := splitPart(err); part != "" {
			return part, fmt.Errorf("uuid5 column %s: %w", col.name, e)
		}
		return "", fmt.Errorf("uuid5 column %s: %w", col.name, err)
	}
	return col.path.text, err
}

// identityText is the _id key text of the documentKey, the identity of a
// document whose row key the documentKey does not hold.
func (m *Mapping) identityText(a *arena, docKey []byte) (string, error) {
	id, err := lookup(docKey, "_id")
	if err == nil && id.missing() {
		err = fmt.Errorf("documentKey: %w", ErrMissingKey)
	}
	if err != nil {
		return "", m.newError(docKey, "_id", err)
	}
	v, err := a.idText(colType{kind: kText}, id, m.order)
	if err != nil {
		return "", m.newError(docKey, "_id", err)
	}
	return v.Text, nil
}
