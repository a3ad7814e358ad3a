package transform

// Mapping is a compiled, validated CollectionConfig. It is immutable and
// safe for concurrent use.
type Mapping struct {
	cfg   CollectionConfig
	ns    string
	order uuidOrder
	root  tableMap
	// keyCols are indexes into root.cols of the key columns, in key order.
	keyCols []int
	// identity: rows are identified by the _id key text (versions: table
	// with a key the documentKey does not hold; TableDef.IdentityKey).
	identity bool
	doc      *docMap
	tenant   *tenantMap
	filter   []filterMap
	tables   []TableDef
	// topKeys maps the first segment of every root-document path to its
	// slot in the one-pass scan of the document's top level (scanTop).
	topKeys map[string]int
}

// colMap is one mapped column.
type colMap struct {
	name     string
	path     fieldPath
	typ      colType
	required bool
	def      *string
	// idKey: a root text or varchar(n) column of path _id, which writes
	// the _id key text (idtext.go) instead of the plain text conversion.
	idKey bool
	// derive computes a uuid5 column (path is then empty).
	derive *deriveMap
	// vmap maps source values to the values written.
	vmap valueMap
}

type tableMap struct {
	def      TableDef
	cols     []colMap
	children []*childMap
}

// childMap is a child or grandchild table.
type childMap struct {
	def  TableDef
	path fieldPath
	// cols are the element columns (after root key, ordinals and tenant).
	cols     []colMap
	children []*childMap
	// doc is the element's JSONB column, if configured.
	doc *docMap
	// selfMapped: a column maps the element itself (".").
	selfMapped bool
	// refIdx holds the root columns (indexes into the root row's values)
	// the parent-key columns hold when they are not the root key.
	refIdx []int
	// tenant: the table has its own tenant column (it has none apart from
	// its parent-key columns when the root key holds the tenant).
	tenant bool
	// ordinal: the table has an ordinal column.
	ordinal bool
	// parentRefIdx holds, for a grandchild that references its parent
	// row's columns (TableDef.ParentRef), their positions in the parent's
	// rows; nil otherwise.
	parentRefIdx []int
}

type docMap struct {
	rest     bool
	consumed consumed
}

type tenantMap struct {
	// rootCol is the index of the tenant column among root columns.
	rootCol  int
	typ      colType
	path     *fieldPath
	value    string
	required bool
}

// indexTop gives every root-document path a slot for scanTop.
func (m *Mapping) indexTop() {
	m.topKeys = map[string]int{}
	slot := func(p *fieldPath) {
		if p.self || len(p.segs) == 0 {
			return
		}
		name := p.segs[0].name
		i, ok := m.topKeys[name]
		if !ok {
			i = len(m.topKeys)
			m.topKeys[name] = i
		}
		p.top = i
	}
	for i := range m.root.cols {
		slot(&m.root.cols[i].path)
	}
	if m.tenant != nil && m.tenant.path != nil {
		slot(m.tenant.path)
	}
	for i := range m.root.cols {
		if d := m.root.cols[i].derive; d != nil {
			for j := range d.parts {
				slot(&d.parts[j].path)
			}
		}
	}
	for _, ch := range m.root.children {
		slot(&ch.path)
	}
}

// scanTop reads, in one pass over doc, the first occurrence of every
// top-level field a root path starts with.
func (m *Mapping) scanTop(doc []byte, top []rawValue) error {
	it := newDocIter(doc)
	found := 0
	for k, v, ok := it.next(); ok && found < len(top); k, v, ok = it.next() {
		if i, hit := m.topKeys[string(k)]; hit && top[i].missing() {
			top[i] = v
			found++
		}
	}
	return it.err
}

// Namespace returns the source namespace, "db.coll".
func (m *Mapping) Namespace() string { return m.ns }

// Table returns the root table name, "schema.table".
func (m *Mapping) Table() string { return m.root.def.Name }

// Tables returns the root table first, then child tables in config order,
// each child followed by its own children.
func (m *Mapping) Tables() []TableDef { return append([]TableDef(nil), m.tables...) }

// TenantPath is the document path the tenant column is read from, "" when
// the mapping has no tenant or a constant one.
func (m *Mapping) TenantPath() string {
	if m.tenant == nil || m.tenant.path == nil {
		return ""
	}
	return m.tenant.path.text
}

// Config returns the configuration with defaults filled in (on_error,
// full_document, id_column).
func (m *Mapping) Config() CollectionConfig { return m.cfg }
