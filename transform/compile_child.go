package transform

import (
	"slices"
	"strconv"
	"strings"
)

func (m *Mapping) tenantColumn() string { return m.tenantColumnName() }

// tenantColumnName is the tenant column's name (tenant_id must be set).
func (m *Mapping) tenantColumnName() string {
	if m.cfg.TenantID.Column == "" {
		return defaultTenantColumn
	}
	return m.cfg.TenantID.Column
}

func (m *Mapping) compileTenant(p *problems, seen map[string]bool) {
	tc := m.cfg.TenantID
	if tc == nil {
		return
	}
	name := m.tenantColumn()
	checkIdent(p, "tenant_id.column", name, "tenant column")
	if tc.Setting != "" && !settingRE.MatchString(tc.Setting) {
		p.add("tenant_id.setting", "setting %q must be a custom session variable, prefix.name in lower case (for example app.tenant_id)", tc.Setting)
	}
	t := &tenantMap{required: !tc.Optional}
	for i, col := range m.root.cols {
		if col.name == name {
			if tc.Path != "" || tc.Value != "" || tc.Type != "" {
				p.add("tenant_id", "tenant column %q is mapped in columns; tenant_id then takes no path, value or type", name)
			}
			t.rootCol, t.typ, t.path = i, col.typ, &m.root.cols[i].path
			t.required = col.required || !tc.Optional
			m.root.cols[i].required = t.required
			m.tenant = t
			return
		}
	}
	switch {
	case (tc.Path == "") == (tc.Value == ""):
		p.add("tenant_id", "tenant_id needs exactly one of path or value")
	case tc.Path != "":
		fp, err := parsePath(tc.Path, false)
		if err != nil {
			p.addErr("tenant_id.path", err)
		}
		t.path = &fp
	default:
		t.value = tc.Value
		if strings.IndexByte(tc.Value, 0) >= 0 {
			p.add("tenant_id.value", "value contains a NUL character")
		}
	}
	typ := colType{kind: kText}
	if tc.Type != "" {
		var err error
		if typ, err = parseType(tc.Type); err != nil {
			p.addErr("tenant_id.type", err)
		}
	}
	t.typ = typ
	seen[name] = true
	t.rootCol = len(m.root.cols)
	m.tenant = t
}

// markTenant records the tenant column and setting in every table: each
// descendant holds the tenant column under the root's name (as its own
// column, or as a parent-key column when the root key holds it).
func (m *Mapping) markTenant() {
	if m.tenant == nil {
		return
	}
	mark := func(d *TableDef) { d.Tenant, d.TenantSetting = m.tenantColumn(), m.cfg.TenantID.Setting }
	mark(&m.root.def)
	var walk func([]*childMap)
	walk = func(cs []*childMap) {
		for _, ch := range cs {
			mark(&ch.def)
			walk(ch.children)
		}
	}
	walk(m.root.children)
}

// compileChild compiles one child table config. parent is the parent
// table; parentOrdinal its ordinal column ("" for the root).
func (m *Mapping) compileChild(p *problems, field string, cc *ChildConfig, parent *TableDef, parentOrdinal string, depth int, tables map[string]bool) *childMap {
	ch := &childMap{}
	name, ok := QualifiedTable(cc.Table)
	if !ok {
		p.add(field+".table", "table %q must be schema.table in lower case letters, digits and underscores", cc.Table)
	} else if tables[name] {
		p.add(field+".table", "table %q is used twice in this collection", name)
	}
	tables[name] = true
	path, err := parsePath(cc.Path, false)
	if err != nil {
		p.addErr(field+".path", err)
	}
	ch.path = path
	def := TableDef{Name: name, Root: m.root.def.Name, Parent: parent.Name}
	seen := map[string]bool{}
	addCol := func(f, col, typ string) {
		checkIdent(p, f, col, "column name")
		if seen[col] {
			p.add(f, "column %q is defined twice in table %s", col, name)
		}
		seen[col] = true
		def.Columns = append(def.Columns, ColumnDef{Name: col, Type: typ, NotNull: true})
	}
	rootKey := m.root.def.Key
	var rootRef []string
	linkTypes := make([]string, 0, len(rootKey))
	for _, ki := range m.keyCols {
		linkTypes = append(linkTypes, m.root.cols[ki].typ.String())
	}
	viaParent := false
	if parent.Root != "" && cc.References != "" {
		// A grandchild that references its parent row's own column.
		idx := slices.IndexFunc(parent.Columns, func(c ColumnDef) bool { return c.Name == cc.References })
		switch {
		case idx < 0:
			p.add(field+".references", "references %q is not a column of %s", cc.References, parent.Name)
		case cc.ParentKey == "":
			p.add(field+".parent_key", "references needs parent_key: the column that holds %s.%s", parent.Name, cc.References)
		case cc.ParentOrdinal != "":
			p.add(field+".parent_ordinal", "a grandchild that references its parent's %s has no parent ordinal", cc.References)
		default:
			viaParent = true
			ch.parentRefIdx = []int{idx}
			def.ParentLink, def.ParentRef = []string{cc.ParentKey}, []string{cc.References}
			addCol(field+".parent_key", cc.ParentKey, parent.Columns[idx].Type)
		}
		rootKey = nil
	} else if parent.Root != "" {
		// A grandchild names the root key as its parent table does.
		rootKey, rootRef = parent.RootKey, parent.RootRef
		if len(rootRef) > 0 {
			linkTypes = linkTypes[:0]
			for _, c := range parent.Columns[:len(rootKey)] {
				linkTypes = append(linkTypes, c.Type)
			}
		}
	} else if cc.References != "" {
		idx := -1
		for i, col := range m.root.cols {
			if col.name == cc.References {
				idx = i
			}
		}
		switch {
		case idx < 0:
			p.add(field+".references", "references %q is not a column of %s", cc.References, m.root.def.Name)
		case cc.ParentKey == "":
			p.add(field+".parent_key", "references needs parent_key: the child column that holds %s", cc.References)
		default:
			ch.refIdx = []int{idx}
			rootKey, rootRef = []string{cc.ParentKey}, []string{cc.References}
			linkTypes = []string{m.root.cols[idx].typ.String()}
		}
	}
	def.RootRef = rootRef
	for i, k := range rootKey {
		col := k
		if cc.ParentKey != "" && len(rootKey) == 1 {
			col = cc.ParentKey
		}
		if i < len(linkTypes) {
			addCol(field+".parent_key", col, linkTypes[i])
		}
		def.RootKey = append(def.RootKey, col)
	}
	if cc.ParentKey != "" && len(rootKey) > 1 {
		p.add(field+".parent_key", "parent_key needs a one-column root key; with a composite key the key column names are used")
	}
	def.Key = append(def.Key, def.RootKey...)
	def.Key = append(def.Key, def.ParentLink...)
	if depth == 2 && !viaParent {
		po := cc.ParentOrdinal
		if po == "" {
			po = defaultParentOrdPrefix + parentOrdinal
		}
		addCol(field+".parent_ordinal", po, "integer")
		def.Key = append(def.Key, po)
	} else if cc.ParentOrdinal != "" {
		p.add(field+".parent_ordinal", "parent_ordinal only applies to a nested child table")
	}
	ord := cc.Ordinal
	if ord == "" {
		ord = defaultOrdinalColumn
	}
	if ord == OrdinalNone {
		if len(cc.Key) == 0 {
			p.add(field+".ordinal", "a child table without an ordinal column needs its own key (key: [...])")
		}
		for i, g := range cc.Children {
			if g.References == "" {
				p.add(field+".children["+strconv.Itoa(i)+"].references",
					"a child table without an ordinal column has grandchildren only through a column of its own (references: id, with parent_key)")
			}
		}
	} else {
		ch.ordinal = true
		addCol(field+".ordinal", ord, "integer")
		def.Key = append(def.Key, ord)
	}
	if m.tenant != nil && !seen[m.tenantColumn()] {
		// (The root key holds the tenant when its column is a key column.)
		ch.tenant = true
		addCol("tenant_id.column", m.tenantColumn(), m.tenant.typ.String())
		def.Columns[len(def.Columns)-1].NotNull = m.tenant.required
	}
	ch.cols = m.compileColumns(p, field+".columns", name, cc.Columns, true, seen)
	for _, col := range ch.cols {
		def.Columns = append(def.Columns, ColumnDef{Name: col.name, Type: col.typ.String(), NotNull: col.required})
	}
	if d := cc.Document; d != nil {
		ch.doc = &docMap{}
		addCol(field+".document.column", d.Column, "jsonb")
		def.Columns[len(def.Columns)-1].NotNull = false
		switch d.Include {
		case "", DocumentIncludeRest:
			ch.doc.rest = true
		case DocumentIncludeAll:
		default:
			p.add(field+".document.include", "include %q must be rest or all", d.Include)
		}
		for _, col := range ch.cols {
			if col.derive == nil {
				ch.doc.consumed.add(col.path)
				ch.selfMapped = ch.selfMapped || col.path.self
			}
		}
		for _, g := range cc.Children {
			if gp, err := parsePath(g.Path, false); err == nil {
				ch.doc.consumed.add(gp)
			}
		}
	}
	if len(cc.Key) > 0 {
		def.Key = nil
		keySeen := map[string]bool{}
		for i, k := range cc.Key {
			f := field + ".key[" + strconv.Itoa(i) + "]"
			j := slices.IndexFunc(def.Columns, func(c ColumnDef) bool { return c.Name == k })
			switch {
			case j < 0:
				p.add(f, "key column %q is not a column of %s", k, name)
			case keySeen[k]:
				p.add(f, "key column %q is listed twice", k)
			default:
				def.Columns[j].NotNull = true
				def.Key = append(def.Key, k)
			}
			keySeen[k] = true
		}
		for i := range ch.cols {
			if keySeen[ch.cols[i].name] {
				ch.cols[i].required = true
			}
		}
	}
	ch.def = def
	for i := range cc.Children {
		f := field + ".children[" + strconv.Itoa(i) + "]"
		if depth >= 2 {
			p.add(f, "children nest one level only (child → grandchild)")
			continue
		}
		if g := m.compileChild(p, f, &cc.Children[i], &ch.def, ord, depth+1, tables); g != nil {
			ch.children = append(ch.children, g)
		}
	}
	return ch
}
