package verify

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/transform"
)

// buckets is how many parts of a table's key space are checksummed
// apart: only the parts whose checksums differ are joined row by row.
const buckets = 1024

// sums is one side's part of a table: its row count and the sums of two
// 64-bit hashes of every row (buckets).
type sums struct {
	n      int64
	s1, s2 big.Int // sums of the rows' two 64-bit hashes
}

func (s *sums) add(o *sums) {
	s.n += o.n
	s.s1.Add(&s.s1, &o.s1)
	s.s2.Add(&s.s2, &o.s2)
}

func (s *sums) equal(o *sums) bool {
	return s.n == o.n && s.s1.Cmp(&o.s1) == 0 && s.s2.Cmp(&o.s2) == 0
}

// bucketSums reads one side's bucket sums.
func bucketSums(ctx context.Context, tx pgx.Tx, q string) (map[int32]*sums, error) {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int32]*sums{}
	for rows.Next() {
		var (
			side   int
			b      int32
			s1, s2 string
			sm     sums
		)
		if err := rows.Scan(&side, &b, &sm.n, &s1, &s2); err != nil {
			return nil, err
		}
		sm.s1.SetString(s1, 10)
		sm.s2.SetString(s2, 10)
		out[b] = &sm
	}
	return out, rows.Err()
}

// needsHash names the server version a missing hash_record_extended
// (PostgreSQL 14) needs.
func needsHash(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42883" && strings.Contains(pgErr.Message, "hash_record_extended") { // undefined_function
		return fmt.Errorf("verify needs PostgreSQL 14 or later (hash_record_extended): %w", err)
	}
	return err
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
// of the target every table is compared in, on the staging session;
// actual is a second session in the same snapshot, with a copy of the
// left-out keys, where the actual side's sums are taken meanwhile. The key space is cut
// into buckets by a hash of the key: each side's buckets are checksummed,
// and only the rows of buckets that differ are joined.
func compareTable(ctx context.Context, tx, actual pgx.Tx, st *stage, i int, def transform.TableDef, maxDiffs int) (TableReport, error) {
	tr := TableReport{Table: def.Name, Key: def.Key, TenantColumn: def.Tenant,
		Differences: Differences{Rows: []Difference{}}}
	q := newQueries(st, i)
	// The two sides are summed at once, the actual one on the second
	// session in the same snapshot (compareAll).
	var side [2]map[int32]*sums
	var g errgroup.Group
	for i, x := range []pgx.Tx{tx, actual} {
		g.Go(func() (err error) {
			side[i], err = bucketSums(ctx, x, q.buckets(i))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return tr, fmt.Errorf("compare %s: checksums: %w", def.Name, needsHash(err))
	}
	parts := map[int32]*[2]sums{}
	var total [2]sums
	for i := range side {
		for b, sm := range side[i] {
			p := parts[b]
			if p == nil {
				p = &[2]sums{}
				parts[b] = p
			}
			p[i] = *sm
			total[i].add(sm)
		}
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
	rows, err := tx.Query(ctx, q.differences(), max(maxDiffs, 1), differ)
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
func (q *queries) with() string { return "WITH " + q.expected() + ", " + q.actual() + " " }

// expected is the CTE e; actual the CTE a (see with).
func (q *queries) expected() string {
	e, ek := q.casts("s", func(j int) string { return col(j) })
	return fmt.Sprintf(`e AS (SELECT true AS p, %s, %s, s.d FROM %s s WHERE NOT EXISTS (SELECT 1 FROM %s x WHERE x.d = s.d))`,
		strings.Join(e, ", "), bucketOf(ek), expectedTable(q.i), excludedTable)
}

func (q *queries) actual() string {
	a, ak := q.casts("t", func(j int) string { return ident(q.def.Columns[j].Name) })
	return fmt.Sprintf(`a AS (SELECT true AS p, %s, %s FROM %s t WHERE NOT %s%s)`,
		strings.Join(a, ", "), bucketOf(ak), tableIdent(q.def.Name), q.excludedCond(q.def, "t", 0), q.sampledCond())
}

// casts are every mapped column of relation alias (named by name) cast to
// its compared type as c0, c1, …, and the key columns' casts.
func (q *queries) casts(alias string, name func(int) string) (all, keys []string) {
	all = make([]string, len(q.def.Columns))
	for j, c := range q.def.Columns {
		cast := fmt.Sprintf("CAST(%s.%s AS %s)", alias, name(j), compareType(c.Type))
		if q.isKey[j] {
			keys = append(keys, cast)
		}
		all[j] = cast + " AS " + col(j)
	}
	return all, keys
}

// bucketOf is the bucket b of a row's key.
func bucketOf(keys []string) string {
	return fmt.Sprintf("hashtext(ROW(%s)::text) & %d AS b", strings.Join(keys, ", "), buckets-1)
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

// buckets sums one side's rows per bucket: side (0 expected, 1
// actual), bucket, row count, and the sums (as text) of two 64-bit hashes
// of every row, hash_record_extended with seeds 0 and 1. A row's hash
// combines its columns' hashes as cast for the comparison, and each
// type's hash agrees with its equality, so values the comparison finds
// equal (jsonb in any key order, numeric 1.50 and 1.5, one instant in two
// zones, 0 and -0) hash alike, without printing them. The hashes are
// computed below an OFFSET 0 fence, so the aggregate sees narrow rows and
// hashes them into its 1024 groups instead of sorting wide ones.
func (q *queries) buckets(side int) string {
	cols := make([]string, len(q.def.Columns))
	for j := range q.def.Columns {
		cols[j] = col(j)
	}
	row := "ROW(" + strings.Join(cols, ", ") + ")"
	cte, rel := q.expected(), "e"
	if side == 1 {
		cte, rel = q.actual(), "a"
	}
	return fmt.Sprintf(`WITH %s SELECT %d, b, count(*), sum(h1)::text, sum(h2)::text FROM
 (SELECT b, hash_record_extended(%s, 0) AS h1, hash_record_extended(%s, 1) AS h2 FROM %s OFFSET 0) s GROUP BY b`, cte, side, row, row, rel)
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
	order := make([]string, len(q.keyIdx))
	for n, j := range q.keyIdx {
		order[n] = fmt.Sprintf("coalesce(e.%[1]s, a.%[1]s)", col(j))
	}
	ev := make([]string, len(q.def.Columns))
	av := make([]string, len(q.def.Columns))
	dv := make([]string, len(q.def.Columns))
	for j := range q.def.Columns {
		ev[j] = fmt.Sprintf("e.%s::text", col(j))
		av[j] = fmt.Sprintf("a.%s::text", col(j))
		dv[j] = distinct(j)
	}
	return q.with() + fmt.Sprintf(`SELECT CASE WHEN a.p IS NULL THEN '%s' WHEN e.p IS NULL THEN '%s' ELSE '%s' END,
 ARRAY[%s]::text[], ARRAY[%s]::text[], ARRAY[%s]::bool[],
 count(*) OVER (), count(*) FILTER (WHERE a.p IS NULL) OVER (), count(*) FILTER (WHERE e.p IS NULL) OVER ()
 FROM (SELECT * FROM e WHERE b = ANY($2::int4[])) e FULL JOIN (SELECT * FROM a WHERE b = ANY($2::int4[])) a ON %s WHERE %s ORDER BY %s LIMIT $1`, Missing, Extra, Different,
		strings.Join(ev, ", "), strings.Join(av, ", "), strings.Join(dv, ", "), q.joinOn(), q.differ(), strings.Join(order, ", "))
}

// joinOn matches e and a rows by the table's key.
func (q *queries) joinOn() string {
	on := make([]string, len(q.keyIdx))
	for n, j := range q.keyIdx {
		on[n] = fmt.Sprintf("e.%[1]s = a.%[1]s", col(j))
	}
	return strings.Join(on, " AND ")
}

// differ is true for a joined row that differs: one side missing, or a
// column other than the key distinct.
func (q *queries) differ() string {
	where := []string{"e.p IS NULL", "a.p IS NULL"}
	for j := range q.def.Columns {
		if !q.isKey[j] {
			where = append(where, distinct(j))
		}
	}
	return strings.Join(where, " OR ")
}

func distinct(j int) string { return fmt.Sprintf("e.%[1]s IS DISTINCT FROM a.%[1]s", col(j)) }

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
