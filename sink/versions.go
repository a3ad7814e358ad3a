package sink

import (
	"fmt"
	"strings"
)

// Row versions out of the application's tables (a collection's versions:
// table, TableDef.ExternalVersions). The root table then has no _cdc_*
// columns; replicator.row_versions holds one row per live root row, keyed
// like its tombstone (table name and the key's text), with the version and
// the row's tenant. The guarantees are the inline columns' (merge.go): the
// version row is written first, under the same conditions, and the target
// row is written only for the version rows that statement wrote; a delete
// removes the row and its version row unless the version is newer.

const rowVersions = "replicator.row_versions"

// versionOf matches version row rv to the root key held in s.
func versionOf(root *table) string {
	return fmt.Sprintf("rv.table_name = %s AND rv.key = %s", quoteLiteral(root.def.Name), tombstoneKey(root))
}

// upsertRootExternal is upsertRoot for external versions: one statement
// that writes the version rows of the staged rows newer than theirs (and
// not older than the key's tombstone), then the target rows of exactly
// those, recording them in ts.applied when there are descendant tables.
func upsertRootExternal(ts *tableSet, from string) string {
	root := ts.root
	tenant := "NULL::text"
	if ts.tenantIdx >= 0 {
		tenant = "s." + colName(ts.tenantIdx)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "WITH s AS MATERIALIZED (SELECT * FROM %s), ", from)
	fmt.Fprintf(&b, `v AS (INSERT INTO %[1]s AS rv (table_name, key, tenant, cluster_ts, cluster_inc, seq)
SELECT %[2]s, %[3]s, %[4]s, s.v_ts, s.v_inc, s.v_seq FROM s WHERE NOT EXISTS (SELECT 1 FROM %[5]s tb WHERE %[6]s AND %[7]s > %[8]s)
ON CONFLICT (table_name, key) DO UPDATE SET tenant = EXCLUDED.tenant, cluster_ts = EXCLUDED.cluster_ts, cluster_inc = EXCLUDED.cluster_inc, seq = EXCLUDED.seq
WHERE %[9]s < (EXCLUDED.cluster_ts, EXCLUDED.cluster_inc, EXCLUDED.seq) RETURNING rv.key) `,
		rowVersions, quoteLiteral(root.def.Name), tombstoneKey(root), tenant, tombstones, tombstoneOf(root), verTB, verS, verRV)
	if ts.applied != nil {
		b.WriteString(", w AS (")
	}
	sel := make([]string, len(root.cols))
	for i := range root.cols {
		sel[i] = cast("s", root, i)
	}
	fmt.Fprintf(&b, "INSERT INTO %s AS t (%s) SELECT %s FROM s JOIN v ON v.key = %s",
		root.ident, strings.Join(root.cols, ", "), strings.Join(sel, ", "), tombstoneKey(root))
	isKey := map[int]bool{}
	keys := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		isKey[ki] = true
		keys[j] = root.cols[ki]
	}
	var set []string
	for i, c := range root.cols {
		if !isKey[i] {
			set = append(set, fmt.Sprintf("%s = EXCLUDED.%s", c, c))
		}
	}
	if len(set) == 0 {
		// Only key columns: the row must still come back from RETURNING.
		set = append(set, fmt.Sprintf("%s = EXCLUDED.%s", keys[0], keys[0]))
	}
	fmt.Fprintf(&b, " ON CONFLICT (%s) DO UPDATE SET %s", strings.Join(keys, ", "), strings.Join(set, ", "))
	if a := ts.applied; a != nil {
		ret := make([]string, len(a.cols))
		names := make([]string, 0, len(a.cols)+3)
		for j, i := range a.cols {
			ret[j] = "t." + root.cols[i]
			names = append(names, colName(i))
		}
		names = append(names, "v_ts", "v_inc", "v_seq")
		match := make([]string, len(root.keyIdx))
		for j, ki := range root.keyIdx {
			match[j] = fmt.Sprintf("w.%s = CAST(s.%s AS %s)", root.cols[ki], colName(ki), root.types[ki])
		}
		wcols := make([]string, len(a.cols))
		for j, i := range a.cols {
			wcols[j] = "w." + root.cols[i]
		}
		fmt.Fprintf(&b, " RETURNING %s) INSERT INTO pg_temp.%s (%s) SELECT %s, s.v_ts, s.v_inc, s.v_seq FROM w JOIN s ON %s",
			strings.Join(ret, ", "), a.temp, strings.Join(names, ", "), strings.Join(wcols, ", "), strings.Join(match, " AND "))
	}
	return b.String()
}

// deleteVersions removes the version rows of the staged deletes unless
// they are newer (external versions only).
func deleteVersions(ts *tableSet, from string) string {
	return fmt.Sprintf("DELETE FROM %s rv USING %s WHERE %s AND %s <= %s", rowVersions, from, versionOf(ts.root), verRV, verS)
}
