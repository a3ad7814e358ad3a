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
	targetKey := "NULL::text[]"
	if root.identity {
		targetKey = stagedKey(root)
	}
	fmt.Fprintf(&b, `v AS (INSERT INTO %[1]s AS rv (table_name, key, target_key, tenant, cluster_ts, cluster_inc, seq)
SELECT %[2]s, %[3]s, %[10]s, %[4]s, s.v_ts, s.v_inc, s.v_seq FROM s WHERE NOT EXISTS (SELECT 1 FROM %[5]s tb WHERE %[6]s AND %[7]s > %[8]s)
ON CONFLICT (table_name, key) DO UPDATE SET target_key = EXCLUDED.target_key, tenant = EXCLUDED.tenant, cluster_ts = EXCLUDED.cluster_ts, cluster_inc = EXCLUDED.cluster_inc, seq = EXCLUDED.seq
WHERE %[9]s < (EXCLUDED.cluster_ts, EXCLUDED.cluster_inc, EXCLUDED.seq) RETURNING rv.key) `,
		rowVersions, quoteLiteral(root.def.Name), tombstoneKey(root), tenant, tombstones, tombstoneOf(root), verTB, verS, verRV, targetKey)
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

// Rows keyed by identity (table.identity): the version row's key is the
// document's identity and its target_key the row's key in the table, the
// map a delete, which carries only the identity, follows. A document whose
// key changed leaves its old row first (movedRows).

// stagedKey is the text[] of the key columns staged in s.
func stagedKey(root *table) string {
	parts := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		parts[j] = "s." + colName(ki)
	}
	return "ARRAY[" + strings.Join(parts, ", ") + "]::text[]"
}

// targetKeyMatch matches root row t to the key version row rv maps to.
func targetKeyMatch(root *table) string {
	parts := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		parts[j] = fmt.Sprintf("t.%s = CAST(rv.target_key[%d] AS %s)", root.cols[ki], j+1, root.types[ki])
	}
	return strings.Join(parts, " AND ")
}

// deleteRootsByIdentity deletes the rows the version rows of the staged
// identities map to, where cond (over rv and s) holds.
func deleteRootsByIdentity(ts *tableSet, from, cond string) string {
	root := ts.root
	return fmt.Sprintf("DELETE FROM %s AS t USING %s, %s rv WHERE %s AND %s AND %s",
		root.ident, from, rowVersions, versionOf(root), targetKeyMatch(root), cond)
}

// deleteChildrenByIdentity deletes the rows of child under the rows
// deleteRootsByIdentity deletes with the same cond.
func deleteChildrenByIdentity(ts *tableSet, child *table, from, cond string) string {
	root := ts.root
	if p := child.parent; p != nil {
		// Under the parent rows of those root rows.
		using, match := fmt.Sprintf("%s, %s rv, %s AS p", from, rowVersions, p.ident), ""
		if p.byKey(root) {
			parts := make([]string, len(root.keyIdx))
			for j, ki := range root.keyIdx {
				parts[j] = fmt.Sprintf("p.%s = CAST(rv.target_key[%d] AS %s)", p.cols[p.rootKeyIdx[j]], j+1, root.types[ki])
			}
			match = strings.Join(parts, " AND ")
		} else {
			using += ", " + root.ident + " AS t"
			match = targetKeyMatch(root) + " AND " + refLink(root, p, "p")
		}
		return fmt.Sprintf("DELETE FROM %s AS c USING %s WHERE %s AND %s AND %s AND %s",
			child.ident, using, versionOf(root), match, parentLink(child, "c"), cond)
	}
	if !child.byKey(root) {
		return fmt.Sprintf("DELETE FROM %s AS c USING %s, %s rv, %s AS t WHERE %s AND %s AND %s AND %s",
			child.ident, from, rowVersions, root.ident, versionOf(root), targetKeyMatch(root), refLink(root, child, "c"), cond)
	}
	link := make([]string, len(child.rootKeyIdx))
	for j, pos := range child.rootKeyIdx {
		link[j] = fmt.Sprintf("c.%s = CAST(rv.target_key[%d] AS %s)", child.cols[pos], j+1, root.types[root.keyIdx[j]])
	}
	return fmt.Sprintf("DELETE FROM %s AS c USING %s, %s rv WHERE %s AND %s AND %s",
		child.ident, from, rowVersions, versionOf(root), strings.Join(link, " AND "), cond)
}

// movedRows are the statements that remove, before an upsert, the old row
// (children first) of each staged document whose key changed, when the
// staged version is newer: the upsert then writes the row under its new
// key. Nothing for other tables.
func movedRows(ts *tableSet, from string) []string {
	root := ts.root
	if !root.identity {
		return nil
	}
	cond := fmt.Sprintf("rv.target_key <> %s AND %s < %s", stagedKey(root), verRV, verS)
	var out []string
	for i := len(ts.desc) - 1; i >= 0; i-- {
		out = append(out, deleteChildrenByIdentity(ts, ts.desc[i], from, cond))
	}
	return append(out, deleteRootsByIdentity(ts, from, cond))
}
