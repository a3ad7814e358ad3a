package transform

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// ConfigError is one problem in a CollectionConfig. Field is the YAML key
// path inside the collection entry ("columns.cvss.type",
// "children[0].table"), so callers can point at the file position.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

var (
	identRE   = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	settingRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$`)
)

// problems collects ConfigErrors.
type problems []error

func (p *problems) add(field string, format string, args ...any) {
	*p = append(*p, &ConfigError{Field: field, Err: fmt.Errorf(format, args...)})
}

func (p *problems) addErr(field string, err error) {
	*p = append(*p, &ConfigError{Field: field, Err: err})
}

func checkIdent(p *problems, field, name, what string) {
	switch {
	case name == "":
		p.add(field, "%s is empty", what)
	case len(name) > 63:
		p.add(field, "%s %q is longer than 63 bytes", what, name)
	case !identRE.MatchString(name):
		p.add(field, "%s %q must be lower case letters, digits and underscores, not starting with a digit", what, name)
	case strings.HasPrefix(name, "_cdc_"):
		p.add(field, "%s %q: the _cdc_ prefix is reserved for version columns", what, name)
	}
}

// QualifiedTable returns "schema.table" for a configured table name
// ("table" alone is in schema public) and whether it is well formed.
func QualifiedTable(name string) (string, bool) {
	parts := strings.Split(name, ".")
	if len(parts) == 1 {
		parts = []string{"public", parts[0]}
	}
	if len(parts) != 2 {
		return name, false
	}
	for _, s := range parts {
		if len(s) > 63 || !identRE.MatchString(s) {
			return name, false
		}
	}
	return parts[0] + "." + parts[1], true
}

// Compile validates cfg and returns its Mapping. Every problem is reported
// at once: the error joins one *ConfigError per problem.
func Compile(cfg CollectionConfig) (*Mapping, error) {
	var p problems
	m := &Mapping{cfg: cfg}
	c := &m.cfg
	if c.OnError == "" {
		c.OnError = OnErrorDeadLetter
	}
	if c.FullDocument == "" {
		c.FullDocument = FullDocumentLookup
	}
	if c.IDColumn == "" {
		c.IDColumn = defaultIDColumn
	}
	switch c.Versions {
	case "":
		c.Versions = VersionsColumns
	case VersionsColumns, VersionsTable:
	default:
		p.add("versions", "versions %q must be columns or table", c.Versions)
	}
	if t := c.TenantID; t != nil && t.Setting != "" {
		if c.Versions != VersionsTable {
			p.add("tenant_id.setting", "a tenant setting needs versions: table (the sink keeps each row's tenant beside its version, to know the tenant of a delete)")
		}
		if t.Optional {
			p.add("tenant_id.optional", "a tenant setting needs a tenant on every row: row-level security admits no row without one")
		}
	}
	if c.UUID5Namespace == "" {
		c.UUID5Namespace = DefaultUUID5Namespace
	} else if _, ok := parseUUID([]byte(c.UUID5Namespace)); !ok {
		p.add("uuid5_namespace", "uuid5_namespace %q is not a UUID", c.UUID5Namespace)
	}
	if err := CheckNamespace(c.Source); err != nil {
		p.addErr("source", err)
	}
	m.ns = c.Source
	table, ok := QualifiedTable(c.Table)
	if !ok {
		p.add("table", "table %q must be schema.table in lower case letters, digits and underscores", c.Table)
	}
	switch c.OnError {
	case OnErrorDeadLetter, OnErrorHalt:
	default:
		p.add("on_error", "on_error %q must be dead_letter or halt", c.OnError)
	}
	switch c.FullDocument {
	case FullDocumentLookup, FullDocumentPostImage:
	default:
		p.add("full_document", "full_document %q must be update_lookup or post_image", c.FullDocument)
	}
	if c.DeadLetterThreshold < 0 {
		p.add("dead_letter_threshold", "dead_letter_threshold must be 0 (never halt) or more")
	}
	if c.Partitions < 0 || c.Partitions > MaxPartitions {
		p.add("partitions", "partitions %d must be between 1 and %d (0 means 1)", c.Partitions, MaxPartitions)
	}
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	order, ok := uuidOrders[c.UUIDRepresentation]
	if !ok {
		p.add("uuid_representation", "uuid_representation %q must be standard, java_legacy, csharp_legacy or python_legacy", c.UUIDRepresentation)
	}
	m.order = order

	m.root.def.Name = table
	m.root.def.ExternalVersions = c.Versions == VersionsTable
	m.compileRoot(&p)
	if len(p) > 0 {
		return nil, errors.Join(p...)
	}
	m.indexTop()
	m.markTenant()
	if c.Versions == VersionsTable {
		for _, ki := range m.keyCols {
			if !m.root.cols[ki].fromIDField() {
				m.identity, m.root.def.IdentityKey = true, true
			}
		}
	}
	m.tables = append(m.tables, m.root.def)
	var walk func([]*childMap)
	walk = func(cs []*childMap) {
		for _, ch := range cs {
			m.tables = append(m.tables, ch.def)
			walk(ch.children)
		}
	}
	walk(m.root.children)
	return m, nil
}

// compileColumns parses the columns of table; names must be unique within
// seen.
func (m *Mapping) compileColumns(p *problems, field, table string, cols Columns, inChild bool, seen map[string]bool) []colMap {
	var out []colMap
	for _, c := range cols {
		f := field + "." + c.Name
		checkIdent(p, f, c.Name, "column name")
		if seen[c.Name] {
			p.add(f, "column %q is defined twice", c.Name)
		}
		seen[c.Name] = true
		typ, err := parseType(c.Type)
		if err != nil {
			p.addErr(f+".type", err)
		}
		col := colMap{name: c.Name, typ: typ, required: c.Required, def: c.Default}
		if c.UUID5 != nil {
			if c.Path != "" {
				p.add(f+".path", "a uuid5 column takes no path (its parts are in uuid5.from)")
			}
			if c.Map != nil || c.Default != nil {
				p.add(f+".uuid5", "a uuid5 column takes no map or default")
			}
			col.path = fieldPath{top: -1}
			col.derive = compileDerive(p, f+".uuid5", c.UUID5, typ, table, m.cfg.UUID5Namespace, inChild)
		} else {
			path, err := parsePath(c.Path, inChild)
			if err != nil {
				p.addErr(f+".path", err)
			}
			col.path = path
		}
		if c.Map != nil {
			col.vmap = compileValueMap(p, f+".map", c.Map, typ, m.order)
		}
		if c.Default != nil && c.Required {
			p.add(f+".default", "a column cannot be both required and have a default")
		}
		if c.Default != nil && strings.IndexByte(*c.Default, 0) >= 0 {
			p.add(f+".default", "default contains a NUL character")
		}
		out = append(out, col)
	}
	return out
}

// fromIDField reports whether col is read from _id or its sub-fields
// only, so a delete's documentKey gives its value.
func (col *colMap) fromIDField() bool {
	under := func(p fieldPath) bool { return p.text == "_id" || strings.HasPrefix(p.text, "_id.") }
	if d := col.derive; d != nil {
		for _, part := range d.parts {
			if part.parent || part.ordinal || !under(part.path) {
				return false
			}
		}
		return true
	}
	return under(col.path)
}

// checkKeyMap refuses a key column's map that is not one to one: two
// documents would share one row.
func checkKeyMap(p *problems, col colMap) {
	if col.vmap == nil || col.idKey {
		return
	}
	keys := make([]string, 0, len(col.vmap))
	for k := range col.vmap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	from := map[Value]string{}
	for _, k := range keys {
		v := col.vmap[k]
		switch prev, dup := from[v]; {
		case !v.Valid:
			p.add("columns."+col.name+".map", "key column %s maps %q to null", col.name, k)
		case dup:
			p.add("columns."+col.name+".map", "key column %s maps %q and %q to one value: two documents would share one row", col.name, prev, k)
		default:
			from[v] = k
		}
	}
}

// fromID reports whether col is read from _id alone: mapped from path _id,
// or a uuid5 column whose only part is _id.
func (col *colMap) fromID() bool {
	if d := col.derive; d != nil {
		return len(d.parts) == 1 && d.parts[0].path.text == "_id"
	}
	return col.path.text == "_id"
}

func (m *Mapping) compileRoot(p *problems) {
	c := &m.cfg
	seen := map[string]bool{}
	table := m.root.def.Name
	cols := m.compileColumns(p, "columns", table, c.Columns, false, seen)
	hasID := false
	for i := range cols {
		if cols[i].fromID() {
			hasID = true
		}
	}
	if !hasID && len(c.Key) == 0 {
		// The implicit _id column (renamed by id_column).
		checkIdent(p, "id_column", c.IDColumn, "id_column")
		if seen[c.IDColumn] {
			p.add("id_column", "id_column %q clashes with a mapped column", c.IDColumn)
		}
		seen[c.IDColumn] = true
		idPath, _ := parsePath("_id", false)
		cols = append([]colMap{{name: c.IDColumn, path: idPath, typ: colType{kind: kText}}}, cols...)
	}
	// Text columns of path _id write the injective _id key text.
	for i := range cols {
		t := cols[i].typ
		cols[i].idKey = cols[i].path.text == "_id" && !t.array && (t.kind == kText || t.kind == kVarchar)
		if cols[i].idKey && cols[i].vmap != nil {
			p.add("columns."+cols[i].name+".map", "a text column of _id writes the _id key text and takes no map (map it to another column type)")
		}
	}
	m.root.cols = cols
	keys := c.Key
	if len(keys) == 0 {
		for i := range cols {
			if cols[i].fromID() {
				keys = []string{cols[i].name}
				break
			}
		}
	}
	keySeen := map[string]bool{}
	for i, k := range keys {
		idx := -1
		for j, col := range cols {
			if col.name == k {
				idx = j
			}
		}
		switch {
		case idx < 0 && c.TenantID != nil && k == m.tenantColumnName():
			p.add(fmt.Sprintf("key[%d]", i), "key column %q is the tenant column: to use it in the key, map it in columns (%s: {path: …, type: …}) and give tenant_id only its column", k, k)
		case idx < 0:
			p.add(fmt.Sprintf("key[%d]", i), "key column %q is not mapped in columns", k)
		case keySeen[k]:
			p.add(fmt.Sprintf("key[%d]", i), "key column %q is listed twice", k)
		case cols[idx].typ.kind == kJSON:
			p.add(fmt.Sprintf("key[%d]", i), "key column %q has type json, which PostgreSQL cannot compare for equality: use jsonb or text", k)
		default:
			m.keyCols = append(m.keyCols, idx)
			m.root.def.Key = append(m.root.def.Key, k)
			checkKeyMap(p, cols[idx])
		}
		keySeen[k] = true
	}
	m.compileTenant(p, seen)
	if d := c.Document; d != nil {
		m.doc = &docMap{}
		checkIdent(p, "document.column", d.Column, "document column")
		if seen[d.Column] {
			p.add("document.column", "column %q is defined twice", d.Column)
		}
		seen[d.Column] = true
		switch d.Include {
		case "", DocumentIncludeRest:
			m.doc.rest = true
		case DocumentIncludeAll:
		default:
			p.add("document.include", "include %q must be rest or all", d.Include)
		}
	}
	for _, col := range m.root.cols {
		m.root.def.Columns = append(m.root.def.Columns, ColumnDef{
			Name: col.name, Type: col.typ.String(), NotNull: col.required || keySeen[col.name],
			PerDocument: col.idKey || (col.derive != nil && col.fromID()),
		})
	}
	if m.tenant != nil && m.tenant.rootCol == len(m.root.cols) {
		m.root.def.Columns = append(m.root.def.Columns, ColumnDef{
			Name: m.tenantColumn(), Type: m.tenant.typ.String(), NotNull: m.tenant.required,
		})
	}
	if m.doc != nil {
		m.root.def.Columns = append(m.root.def.Columns, ColumnDef{Name: c.Document.Column, Type: "jsonb"})
	}
	m.compileFilter(p)

	for _, col := range m.root.cols {
		if col.derive == nil {
			m.consume(col.path)
		}
	}
	if m.tenant != nil && m.tenant.path != nil {
		m.consume(*m.tenant.path)
	}
	tables := map[string]bool{m.root.def.Name: true}
	for i := range c.Children {
		ch := m.compileChild(p, fmt.Sprintf("children[%d]", i), &c.Children[i], &m.root.def, defaultOrdinalColumn, 1, tables)
		if ch != nil {
			m.root.children = append(m.root.children, ch)
			m.consume(ch.path)
		}
	}
}

func (m *Mapping) consume(p fieldPath) {
	if m.doc != nil {
		m.doc.consumed.add(p)
	}
}
