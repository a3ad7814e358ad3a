package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mongopg/replicator/transform"
)

// table is a TableDef resolved for SQL generation.
type table struct {
	def   transform.TableDef
	ident string   // quoted "schema"."table"
	cols  []string // quoted column names, TableDef.Columns order
	types []string // column types as written in DDL
	// keyIdx holds the positions of the key columns in cols (root key for
	// the root table).
	keyIdx []int
	// rootKeyIdx holds, for a descendant table, the positions in cols of the
	// root key columns, in the root's key order.
	rootKeyIdx []int
	// refIdx holds, for a descendant table, the positions in the root
	// table's cols of the columns its rootKeyIdx columns hold: the root
	// key, or the root columns TableDef.RootRef names.
	refIdx []int
	// tenantIdx is the position of the tenant column (TableDef.Tenant), or
	// -1.
	tenantIdx int
	// parent, parentLinkIdx and parentRefIdx describe a grandchild that
	// references its parent row's own columns (TableDef.ParentLink): its
	// columns holding them, and their positions in the parent's columns.
	parent                      *table
	parentLinkIdx, parentRefIdx []int
	// identity: a root table whose rows are identified by the document's
	// identity (TableDef.IdentityKey), staged as the extra column
	// c<len(cols)> of its relations.
	identity bool
	// idIdx are the staged positions identifying a root row: keyIdx, or
	// the identity's position.
	idIdx []int
}

// byKey reports whether descendant t holds the root key itself.
func (t *table) byKey(root *table) bool {
	return t.parent == nil && slices.Equal(t.refIdx, root.keyIdx)
}

// tableSet is one collection's root table and its descendants.
type tableSet struct {
	root  *table
	desc  []*table       // Tables order: each after its parent
	index map[string]int // descendant name → position in desc
	// applied records, during one write, the root rows the upsert wrote
	// (merge.go); nil without descendant tables.
	applied *appliedRel
	// external: versions are kept in replicator.row_versions (versions.go).
	external bool
	// noInsertTriggers: the root table has no BEFORE INSERT row trigger
	// (checked when an applier session starts), so the upsert need not
	// leave out rows that are not newer before proposing them (merge.go,
	// upsertRoot): the conflict clause refuses them as well.
	noInsertTriggers bool
	// tenantIdx is the root's tenant column position, or -1.
	tenantIdx int
	// setting is the session variable row-level security reads the tenant
	// from ("" when not configured; rls.go).
	setting string
	// filtered: the collection has a filter (Collection.Filtered), so
	// every upsert removes older tombstones, not only an insert's
	// (apply.go, queueWrites).
	filtered bool
}

func quoteTable(name string) (string, error) {
	schema, tbl, ok := strings.Cut(name, ".")
	if !ok || schema == "" || tbl == "" || strings.Contains(tbl, ".") {
		return "", fmt.Errorf("table %q: want schema.table", name)
	}
	return transform.QuoteTable(name), nil
}

func resolveTable(def transform.TableDef) (*table, error) {
	ident, err := quoteTable(def.Name)
	if err != nil {
		return nil, err
	}
	t := &table{def: def, ident: ident, tenantIdx: -1}
	pos := map[string]int{}
	for i, c := range def.Columns {
		if c.Name == "" || c.Type == "" {
			return nil, fmt.Errorf("table %s: column %d needs a name and a type", def.Name, i)
		}
		if _, dup := pos[c.Name]; dup {
			return nil, fmt.Errorf("table %s: column %s appears twice", def.Name, c.Name)
		}
		// Types are written into SQL casts unquoted: only the canonical
		// spellings transform.Compile produces are accepted.
		if canon, err := transform.CanonicalType(c.Type); err != nil || canon != c.Type {
			return nil, fmt.Errorf("table %s: column %s: type %q is not a canonical column type", def.Name, c.Name, c.Type)
		}
		pos[c.Name] = i
		t.cols = append(t.cols, transform.QuoteIdent(c.Name))
		t.types = append(t.types, c.Type)
	}
	find := func(names []string, what string) ([]int, error) {
		out := make([]int, 0, len(names))
		for _, n := range names {
			i, ok := pos[n]
			if !ok {
				return nil, fmt.Errorf("table %s: %s column %s is not among its columns", def.Name, what, n)
			}
			out = append(out, i)
		}
		return out, nil
	}
	if t.keyIdx, err = find(def.Key, "key"); err != nil {
		return nil, err
	}
	if len(t.keyIdx) == 0 {
		return nil, fmt.Errorf("table %s: no key columns", def.Name)
	}
	if def.Root != "" {
		if t.rootKeyIdx, err = find(def.RootKey, "root key"); err != nil {
			return nil, err
		}
	}
	if def.Tenant != "" {
		tc, err := find([]string{def.Tenant}, "tenant")
		if err != nil {
			return nil, err
		}
		t.tenantIdx = tc[0]
	}
	return t, nil
}

// compileTables resolves a collection's tables: the root first, then
// descendants whose Root is the root table.
func compileTables(defs []transform.TableDef) (*tableSet, error) {
	if len(defs) == 0 {
		return nil, errors.New("no tables")
	}
	if defs[0].Root != "" {
		return nil, fmt.Errorf("table %s: the first table must be the root table", defs[0].Name)
	}
	root, err := resolveTable(defs[0])
	if err != nil {
		return nil, err
	}
	for _, c := range []string{transform.VersionTSColumn, transform.VersionIncColumn, transform.VersionSeqColumn} {
		for _, col := range defs[0].Columns {
			if col.Name == c {
				return nil, fmt.Errorf("table %s: %s is a hidden version column and must not be mapped", defs[0].Name, c)
			}
		}
	}
	root.idIdx = root.keyIdx
	if defs[0].IdentityKey {
		if !defs[0].ExternalVersions {
			return nil, fmt.Errorf("table %s: rows keyed by identity need external versions", defs[0].Name)
		}
		root.identity, root.idIdx = true, []int{len(root.cols)}
	}
	ts := &tableSet{root: root, index: map[string]int{}, external: defs[0].ExternalVersions, tenantIdx: -1,
		setting: defs[0].TenantSetting}
	ts.tenantIdx = root.tenantIdx
	if ts.setting != "" && (!ts.external || ts.tenantIdx < 0) {
		return nil, fmt.Errorf("table %s: a tenant setting needs a tenant column and external versions", defs[0].Name)
	}
	seen := map[string]bool{defs[0].Name: true}
	for _, d := range defs[1:] {
		if d.Root != defs[0].Name {
			return nil, fmt.Errorf("table %s: root is %q, want %s", d.Name, d.Root, defs[0].Name)
		}
		if !seen[d.Parent] {
			return nil, fmt.Errorf("table %s: parent %q must come before it", d.Name, d.Parent)
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("table %s appears twice", d.Name)
		}
		seen[d.Name] = true
		t, err := resolveTable(d)
		if err != nil {
			return nil, err
		}
		if len(d.ParentLink) > 0 {
			// A grandchild linked to its parent row's own column.
			pi, ok := ts.index[d.Parent]
			if !ok || len(ts.desc[pi].rootKeyIdx) == 0 {
				return nil, fmt.Errorf("table %s: parent_link needs a parent table that holds the root key", d.Name)
			}
			t.parent = ts.desc[pi]
			if t.parentLinkIdx, err = columnPos(t, d.ParentLink); err != nil {
				return nil, fmt.Errorf("table %s: %w", d.Name, err)
			}
			if t.parentRefIdx, err = columnPos(t.parent, d.ParentRef); err != nil {
				return nil, fmt.Errorf("table %s: parent_ref: %w", d.Name, err)
			}
			if len(t.parentLinkIdx) != len(t.parentRefIdx) || len(t.rootKeyIdx) > 0 {
				return nil, fmt.Errorf("table %s: parent_link and parent_ref differ in length, or a root key is given too", d.Name)
			}
		} else {
			t.refIdx = root.keyIdx
			if len(d.RootRef) > 0 {
				if t.refIdx, err = rootPos(root, d.RootRef); err != nil {
					return nil, fmt.Errorf("table %s: %w", d.Name, err)
				}
			}
			if len(t.rootKeyIdx) != len(t.refIdx) {
				return nil, fmt.Errorf("table %s: %d root key columns, the root key (or root_ref) has %d", d.Name, len(t.rootKeyIdx), len(t.refIdx))
			}
		}
		if ts.setting != "" && t.tenantIdx < 0 {
			return nil, fmt.Errorf("table %s: a tenant setting needs the tenant column in every table", d.Name)
		}
		ts.index[d.Name] = len(ts.desc)
		ts.desc = append(ts.desc, t)
	}
	if len(ts.desc) > 0 {
		ts.applied = newAppliedRel(ts)
	}
	return ts, nil
}

// columnPos finds the named columns of t.
func columnPos(t *table, names []string) ([]int, error) {
	out := make([]int, len(names))
	for j, n := range names {
		i := slices.IndexFunc(t.def.Columns, func(c transform.ColumnDef) bool { return c.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("column %s is not a column of %s", n, t.def.Name)
		}
		out[j] = i
	}
	return out, nil
}

// rootPos finds the named root columns.
func rootPos(root *table, names []string) ([]int, error) {
	out := make([]int, len(names))
	for j, n := range names {
		i := slices.IndexFunc(root.def.Columns, func(c transform.ColumnDef) bool { return c.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("root_ref column %s is not a column of %s", n, root.def.Name)
		}
		out[j] = i
	}
	return out, nil
}

// appliedRel is the temporary table that records, in one transaction,
// the root rows the guarded upsert wrote, with their versions: the key
// columns and every root column a descendant table references (cols,
// named c<i> as in relations). Child rows are replaced only for them, so
// an event applied again writes nothing at all (merge.go).
type appliedRel struct {
	cols []int
	temp string
}

func newAppliedRel(ts *tableSet) *appliedRel {
	seen := map[int]bool{}
	var cols []int
	add := func(idx []int) {
		for _, i := range idx {
			if !seen[i] {
				seen[i] = true
				cols = append(cols, i)
			}
		}
	}
	add(ts.root.keyIdx)
	for _, d := range ts.desc {
		add(d.refIdx)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s", ts.root.def.Name)
	for _, i := range cols {
		fmt.Fprintf(h, "\x00%s\x00%s", ts.root.def.Columns[i].Name, ts.root.types[i])
	}
	return &appliedRel{cols: cols, temp: "rs_applied_" + hex.EncodeToString(h.Sum(nil)[:8])}
}

// create is the DDL of the table, created once per connection.
func (a *appliedRel) create(root *table) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TEMP TABLE IF NOT EXISTS %s (", a.temp)
	for _, i := range a.cols {
		fmt.Fprintf(&b, "%s %s, ", colName(i), root.types[i])
	}
	b.WriteString("v_ts int8, v_inc int8, v_seq int8) ON COMMIT DELETE ROWS")
	return b.String()
}

// relation is one staged input of a batch: the root upserts, the root
// deletes, or the rows of one descendant table. In SQL its alias is s, its
// columns are c<i> (i = position in the table's columns) and v_ts, v_inc,
// v_seq (the version of the root row the input belongs to).
type relation struct {
	tbl *table
	// cols are the positions (in tbl.cols) the relation carries.
	cols []int
	// temp is the staging table's name for the COPY path; it encodes the
	// column types so a changed mapping gets a new table.
	temp string
}

func newRelation(collection string, kind string, tbl *table, cols []int) *relation {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", collection, kind, tbl.def.Name)
	for _, i := range cols {
		typ := "text" // the identity (table.identity)
		if i < len(tbl.types) {
			typ = tbl.types[i]
		}
		fmt.Fprintf(h, "\x00%s", typ)
	}
	return &relation{tbl: tbl, cols: cols, temp: "rs_" + kind + "_" + hex.EncodeToString(h.Sum(nil)[:8])}
}

// allCols are the staged columns of t's rows: every column, and the
// identity of a root keyed by it.
func allCols(t *table) []int {
	out := make([]int, len(t.cols))
	for i := range out {
		out[i] = i
	}
	if t.identity {
		out = append(out, len(t.cols))
	}
	return out
}

func colName(i int) string { return fmt.Sprintf("c%d", i) }

// createTemp is the DDL of the relation's staging table. Rows vanish at
// commit, so the table is created once per connection and reused.
func (r *relation) createTemp() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TEMP TABLE IF NOT EXISTS %s (", r.temp)
	for _, i := range r.cols {
		fmt.Fprintf(&b, "%s text, ", colName(i))
	}
	b.WriteString("v_ts int8, v_inc int8, v_seq int8) ON COMMIT DELETE ROWS")
	return b.String()
}

// copyColumns are the staging table's columns in COPY order.
func (r *relation) copyColumns() []string {
	out := make([]string, 0, len(r.cols)+3)
	for _, i := range r.cols {
		out = append(out, colName(i))
	}
	return append(out, "v_ts", "v_inc", "v_seq")
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
