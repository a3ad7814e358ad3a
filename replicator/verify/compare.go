package verify

import (
	"context"
	"crypto/md5"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/transform"
)

// buckets is how many parts of a table's key space are checksummed
// apart: only the parts whose checksums differ are joined row by row.
const buckets = 1024

// sums is one side's part of a table: its row count and the sums of two
// 60-bit parts of every row's md5.
type sums struct {
	n      int64
	s1, s2 big.Int
}

func (s *sums) add(o *sums) {
	s.n += o.n
	s.s1.Add(&s.s1, &o.s1)
	s.s2.Add(&s.s2, &o.s2)
}

func (s *sums) equal(o *sums) bool {
	return s.n == o.n && s.s1.Cmp(&o.s1) == 0 && s.s2.Cmp(&o.s2) == 0
}

// checksum is the text of the whole side: independent of row order.
func (s *sums) checksum() string {
	return fmt.Sprintf("%x", md5.Sum([]byte(fmt.Sprintf("%d:%s:%s", s.n, s.s1.String(), s.s2.String()))))
}

// compareTable compares the staged expected rows of tables[i] with the
// table in PostgreSQL. Both sides are cast to the mapped column types
// (json compared as jsonb, which has equality), so values compare as
// PostgreSQL compares them; rows are matched by the table's key, and rows
// of left-out documents (excludedCond) are not read. tx is the snapshot
// of the target every table is compared in. The key space is cut
// into buckets by a hash of the key: each side's buckets are checksummed,
// and only the rows of buckets that differ are joined.
func compareTable(ctx context.Context, tx pgx.Tx, st *stage, i int, def transform.TableDef, maxDiffs int) (TableReport, error) {
	tr := TableReport{Table: def.Name, Key: def.Key, TenantColumn: def.Tenant,
		Differences: Differences{Rows: []Difference{}}}
	q := newQueries(st, i)
	rows, err := tx.Query(ctx, q.buckets())
	if err != nil {
		return tr, fmt.Errorf("compare %s: checksums: %w", def.Name, err)
	}
	parts := map[int32]*[2]sums{}
	var total [2]sums
	for rows.Next() {
		var (
			side   int
			b      int32
			n      int64
			s1, s2 string
		)
		if err := rows.Scan(&side, &b, &n, &s1, &s2); err != nil {
			rows.Close()
			return tr, fmt.Errorf("compare %s: checksums: %w", def.Name, err)
		}
		p := parts[b]
		if p == nil {
			p = &[2]sums{}
			parts[b] = p
		}
		p[side].n = n
		p[side].s1.SetString(s1, 10)
		p[side].s2.SetString(s2, 10)
		total[side].add(&p[side])
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return tr, fmt.Errorf("compare %s: checksums: %w", def.Name, err)
	}
	var differ []int32
	for b, p := range parts {
		if !p[0].equal(&p[1]) {
			differ = append(differ, b)
		}
	}
	slices.Sort(differ)
	tr.ExpectedRows, tr.ExpectedChecksum = total[0].n, total[0].checksum()
	tr.ActualRows, tr.ActualChecksum = total[1].n, total[1].checksum()
	if def.Tenant != "" {
		rows, err := tx.Query(ctx, q.tenants())
		if err != nil {
			return tr, fmt.Errorf("compare %s: tenants: %w", def.Name, err)
		}
		tr.Tenants, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (TenantCounts, error) {
			var t TenantCounts
			err := r.Scan(&t.Tenant, &t.ExpectedRows, &t.ActualRows)
			return t, err
		})
		if err != nil {
			return tr, fmt.Errorf("compare %s: tenants: %w", def.Name, err)
		}
	}
	if len(differ) == 0 {
		return tr, nil
	}
	rows, err = tx.Query(ctx, q.differences(), max(maxDiffs, 1), differ)
	if err != nil {
		return tr, fmt.Errorf("compare %s: differences: %w", def.Name, err)
	}
	defer rows.Close()
	d := &tr.Differences
	for rows.Next() {
		var (
			kind             string
			expected, actual []*string
			distinct         []bool
		)
		if err := rows.Scan(&kind, &expected, &actual, &distinct, &d.Total, &d.Missing, &d.Extra); err != nil {
			return tr, fmt.Errorf("compare %s: differences: %w", def.Name, err)
		}
		if len(d.Rows) < maxDiffs {
			d.Rows = append(d.Rows, q.difference(kind, expected, actual, distinct))
		}
	}
	if err := rows.Err(); err != nil {
		return tr, fmt.Errorf("compare %s: differences: %w", def.Name, err)
	}
	d.Different = d.Total - d.Missing - d.Extra
	return tr, nil
}

// queries builds the comparison's statements for one table.
type queries struct {
	def    transform.TableDef
	i      int
	byName map[string]transform.TableDef
	all    []transform.TableDef
	// sample: only the rows under the sampled root keys (sampleTable)
	// are compared.
	sample bool
	root   transform.TableDef
	keyIdx []int // positions of the key columns in def.Columns
	isKey  []bool
}

func newQueries(st *stage, i int) *queries {
	tables := st.tables
	q := &queries{def: tables[i], i: i, byName: map[string]transform.TableDef{}, root: tables[0], all: tables, sample: st.sample}
	for _, t := range tables {
		q.byName[t.Name] = t
	}
	q.isKey = make([]bool, len(q.def.Columns))
	for _, k := range q.def.Key {
		j := columnIndex(q.def, k)
		q.keyIdx = append(q.keyIdx, j)
		q.isKey[j] = true
	}
	return q
}

func columnIndex(def transform.TableDef, name string) int {
	for j, c := range def.Columns {
		if c.Name == name {
			return j
		}
	}
	return -1
}

func columnType(def transform.TableDef, name string) string {
	return compareType(def.Columns[columnIndex(def, name)].Type)
}

// compareType is the type values of a column of type t are compared as:
// json has no equality operator, jsonb compares the same documents equal.
func compareType(t string) string {
	switch t {
	case "json":
		return "jsonb"
	case "json[]":
		return "jsonb[]"
	}
	return t
}

func ident(s ...string) string { return pgx.Identifier(s).Sanitize() }

func tableIdent(name string) string {
	schema, table, ok := strings.Cut(name, ".")
	if !ok {
		return ident(name)
	}
	return ident(schema, table)
}

// with defines e (expected) and a (actual): a marker p, every mapped
// column as c0, c1, … cast to its compared type, and b, the bucket of the
// row's key; e also has d, the row's document. Expected rows of documents left out (verify_x) are not read;
// neither are actual rows under their root keys.
func (q *queries) with() string {
	e := make([]string, len(q.def.Columns))
	a := make([]string, len(q.def.Columns))
	var ek, ak []string
	for j, c := range q.def.Columns {
		t := compareType(c.Type)
		e[j] = fmt.Sprintf("CAST(s.%s AS %s)", col(j), t)
		a[j] = fmt.Sprintf("CAST(t.%s AS %s)", ident(c.Name), t)
		if q.isKey[j] {
			ek, ak = append(ek, e[j]), append(ak, a[j])
		}
		e[j] += " AS " + col(j)
		a[j] += " AS " + col(j)
	}
	bucket := func(keys []string) string {
		return fmt.Sprintf("hashtext(ROW(%s)::text) & %d AS b", strings.Join(keys, ", "), buckets-1)
	}
	return fmt.Sprintf(`WITH e AS (SELECT true AS p, %s, %s, s.d FROM %s s WHERE NOT EXISTS (SELECT 1 FROM %s x WHERE x.d = s.d)),
 a AS (SELECT true AS p, %s, %s FROM %s t WHERE NOT %s%s) `,
		strings.Join(e, ", "), bucket(ek), expectedTable(q.i), excludedTable,
		strings.Join(a, ", "), bucket(ak), tableIdent(q.def.Name), q.excludedCond(q.def, "t", 0), q.sampledCond())
}

// sampledCond restricts the actual rows of a sample to the sampled
// documents' root keys.
func (q *queries) sampledCond() string {
	if !q.sample {
		return ""
	}
	return " AND " + q.keyCond(sampleTable, q.def, "t", 0)
}

// excludedCond is true for the rows of def (under alias) that belong to a
// root key in verify_x: the rows of documents left out.
func (q *queries) excludedCond(def transform.TableDef, alias string, depth int) string {
	return q.keyCond(excludedTable, def, alias, depth)
}

// keyCond is true for the rows of def (under alias) that belong to a root
// key in keys (k0, k1, … in key order, as transform writes them).
func (q *queries) keyCond(keys string, def transform.TableDef, alias string, depth int) string {
	rootMatch := func(r string) string {
		conds := make([]string, len(q.root.Key))
		for j, k := range q.root.Key {
			conds[j] = fmt.Sprintf("%s.%s = CAST(x.%s AS %s)", r, ident(k), key(j), columnType(q.root, k))
		}
		return strings.Join(conds, " AND ")
	}
	switch {
	case def.Root == "":
		return fmt.Sprintf("EXISTS (SELECT 1 FROM %s x WHERE %s)", keys, rootMatch(alias))
	case len(def.ParentLink) > 0:
		parent := q.byName[def.Parent]
		p := fmt.Sprintf("p%d", depth)
		conds := make([]string, len(def.ParentLink))
		for j := range def.ParentLink {
			conds[j] = fmt.Sprintf("%s.%s = %s.%s", p, ident(def.ParentRef[j]), alias, ident(def.ParentLink[j]))
		}
		return fmt.Sprintf("EXISTS (SELECT 1 FROM %s %s WHERE %s AND %s)", tableIdent(parent.Name), p,
			strings.Join(conds, " AND "), q.keyCond(keys, parent, p, depth+1))
	case len(def.RootRef) > 0:
		conds := make([]string, len(def.RootKey))
		for j := range def.RootKey {
			conds[j] = fmt.Sprintf("r.%s = %s.%s", ident(def.RootRef[j]), alias, ident(def.RootKey[j]))
		}
		return fmt.Sprintf("EXISTS (SELECT 1 FROM %s r JOIN %s x ON %s WHERE %s)", tableIdent(q.root.Name), keys,
			rootMatch("r"), strings.Join(conds, " AND "))
	default:
		conds := make([]string, len(def.RootKey))
		for j, k := range def.RootKey {
			conds[j] = fmt.Sprintf("%s.%s = CAST(x.%s AS %s)", alias, ident(k), key(j), columnType(q.root, q.root.Key[j]))
		}
		return fmt.Sprintf("EXISTS (SELECT 1 FROM %s x WHERE %s)", keys, strings.Join(conds, " AND "))
	}
}

// buckets sums each side's rows per bucket: side (0 expected, 1
// actual), bucket, row count, and the sums of two 60-bit parts of every
// row's md5 (as text). A row's text is its columns' texts as cast for
// the comparison, numeric without trailing zeros, so values the
// comparison finds equal (jsonb in any key order, numeric 1.50 and 1.5)
// hash alike.
func (q *queries) buckets() string {
	cols := make([]string, len(q.def.Columns))
	for j, c := range q.def.Columns {
		cols[j] = col(j)
		if t := compareType(c.Type); t == "numeric" || strings.HasPrefix(t, "numeric(") {
			cols[j] = "trim_scale(" + col(j) + ")"
		}
	}
	// The hashes are computed below an OFFSET 0 fence, so the aggregate
	// sees narrow rows (b and two integers) and hashes them into its
	// 1024 groups instead of sorting the wide rows of the table.
	part := func(side int, rel string) string {
		return fmt.Sprintf(`SELECT %d, b, count(*), sum(h1)::text, sum(h2)::text FROM
 (SELECT b, ('x' || substr(h, 1, 15))::bit(60)::bigint AS h1, ('x' || substr(h, 16, 15))::bit(60)::bigint AS h2
  FROM (SELECT b, md5(ROW(%s)::text) AS h FROM %s) s OFFSET 0) s GROUP BY b`, side, strings.Join(cols, ", "), rel)
	}
	return q.with() + part(0, "e") + " UNION ALL " + part(1, "a")
}

func (q *queries) tenants() string {
	t := col(columnIndex(q.def, q.def.Tenant))
	return q.with() + fmt.Sprintf(`SELECT tenant, sum(ne)::int8, sum(na)::int8 FROM
 (SELECT %[1]s::text AS tenant, 1 AS ne, 0 AS na FROM e UNION ALL SELECT %[1]s::text, 0, 1 FROM a) s
 GROUP BY tenant ORDER BY tenant NULLS FIRST`, t)
}

// differences lists the differing rows of the buckets $2 in key order, at
// most $1, each with the total counts (window functions see every
// differing row).
func (q *queries) differences() string {
	on := make([]string, len(q.keyIdx))
	order := make([]string, len(q.keyIdx))
	for n, j := range q.keyIdx {
		on[n] = fmt.Sprintf("e.%[1]s = a.%[1]s", col(j))
		order[n] = fmt.Sprintf("coalesce(e.%[1]s, a.%[1]s)", col(j))
	}
	where := []string{"e.p IS NULL", "a.p IS NULL"}
	ev := make([]string, len(q.def.Columns))
	av := make([]string, len(q.def.Columns))
	dv := make([]string, len(q.def.Columns))
	for j := range q.def.Columns {
		ev[j] = fmt.Sprintf("e.%s::text", col(j))
		av[j] = fmt.Sprintf("a.%s::text", col(j))
		dv[j] = fmt.Sprintf("e.%[1]s IS DISTINCT FROM a.%[1]s", col(j))
		if !q.isKey[j] {
			where = append(where, dv[j])
		}
	}
	return q.with() + fmt.Sprintf(`SELECT CASE WHEN a.p IS NULL THEN '%s' WHEN e.p IS NULL THEN '%s' ELSE '%s' END,
 ARRAY[%s]::text[], ARRAY[%s]::text[], ARRAY[%s]::bool[],
 count(*) OVER (), count(*) FILTER (WHERE a.p IS NULL) OVER (), count(*) FILTER (WHERE e.p IS NULL) OVER ()
 FROM (SELECT * FROM e WHERE b = ANY($2::int4[])) e FULL JOIN (SELECT * FROM a WHERE b = ANY($2::int4[])) a ON %s WHERE %s ORDER BY %s LIMIT $1`, Missing, Extra, Different,
		strings.Join(ev, ", "), strings.Join(av, ", "), strings.Join(dv, ", "), strings.Join(on, " AND "), strings.Join(where, " OR "), strings.Join(order, ", "))
}

// difference builds one Difference from a row of differences: the
// texts of both sides' columns and whether PostgreSQL found each column's
// values distinct.
func (q *queries) difference(kind string, expected, actual []*string, distinct []bool) Difference {
	d := Difference{Kind: kind}
	side := expected
	if kind == Extra {
		side = actual
	}
	for _, j := range q.keyIdx {
		d.Key = append(d.Key, KeyValue{Column: q.def.Columns[j].Name, Value: side[j]})
	}
	if kind != Different {
		return d
	}
	for j, c := range q.def.Columns {
		if q.isKey[j] || !distinct[j] {
			continue
		}
		d.Columns = append(d.Columns, ColumnDifference{Column: c.Name, Expected: expected[j], Actual: actual[j]})
	}
	return d
}
