package sink

import (
	"fmt"
	"strings"

	"github.com/mongopg/replicator/transform"
)

// The statements below merge staged relations (alias s) into the target
// tables. Together they implement ARCHITECTURE.md guarantee 2 for one batch:
//
//   - a root upsert writes only if its version is newer than the stored
//     row's and at least the key's tombstone (upsertRoot); an event applied
//     again writes nothing;
//   - a parent's children are replaced only if the parent's write applied:
//     upsertRoot records the rows it wrote in a temporary table, which
//     the child statements join (deleteChildrenOfUpserts, insertChildren);
//   - a delete removes the row and its children only if it is at least as
//     new as the row, and always leaves the newest tombstone (deleteRoots,
//     upsertTombstones); an insert event's write removes older tombstones
//     (clearTombstones; queueWrites says why only an insert's).
//
// Versions compare as the row (cluster_ts, cluster_inc, seq). The Applier
// (apply.go, queueWrites) and Guard (guard.go: the snapshot and resync
// loader) run these same statements.

const tombstones = "replicator.tombstones"

var (
	verRV = "(rv.cluster_ts, rv.cluster_inc, rv.seq)"
	verT  = fmt.Sprintf("(t.%s, t.%s, t.%s)", transform.VersionTSColumn, transform.VersionIncColumn, transform.VersionSeqColumn)
	verS  = "(s.v_ts, s.v_inc, s.v_seq)"
	verTB = "(tb.cluster_ts, tb.cluster_inc, tb.seq)"
)

func cast(alias string, t *table, i int) string {
	return fmt.Sprintf("CAST(%s.%s AS %s)", alias, colName(i), t.types[i])
}

// rootKeyMatch matches root row t to the root key held in s at positions
// keyPos of table src (src is the root for root relations, a child for
// child relations).
func rootKeyMatch(root *table, src *table, keyPos []int) string {
	parts := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		parts[j] = fmt.Sprintf("t.%s = CAST(s.%s AS %s)", root.cols[ki], colName(keyPos[j]), root.types[ki])
	}
	return strings.Join(parts, " AND ")
}

// tombstoneKey is the text[] key of a root relation's row: its key
// columns' text, or the identity of a root keyed by it.
func tombstoneKey(root *table) string {
	if root.identity {
		return "ARRAY[s." + colName(root.idIdx[0]) + "]::text[]"
	}
	return stagedKey(root)
}

// tombstoneOf matches tombstone tb to the root key held in s.
func tombstoneOf(root *table) string {
	return fmt.Sprintf("tb.table_name = %s AND tb.key = %s", quoteLiteral(root.def.Name), tombstoneKey(root))
}

// rowExists holds when the root key in s has a row.
func rowExists(root *table) string {
	return fmt.Sprintf("EXISTS (SELECT 1 FROM %s AS t WHERE %s)", root.ident, rootKeyMatch(root, root, root.keyIdx))
}

// tombstoneExists holds when the root key in s has a tombstone, of any
// version.
func tombstoneExists(root *table) string {
	return fmt.Sprintf("EXISTS (SELECT 1 FROM %s tb WHERE %s)", tombstones, tombstoneOf(root))
}

// upsertRoot writes the staged root rows whose version is newer than the
// stored row's and not older than the key's tombstone. An equal version
// writes nothing: the event was applied already, and applying it again
// must not touch the row (no trigger fires, xmin stays). With descendant
// tables the written rows are recorded in ts.applied, which the child
// statements then read.
func upsertRoot(ts *tableSet, from string) string {
	if ts.external {
		return upsertRootExternal(ts, from)
	}
	root := ts.root
	var b strings.Builder
	if ts.applied != nil {
		b.WriteString("WITH w AS (")
	}
	fmt.Fprintf(&b, "INSERT INTO %s AS t (%s, %s, %s, %s) SELECT ", root.ident, strings.Join(root.cols, ", "),
		transform.VersionTSColumn, transform.VersionIncColumn, transform.VersionSeqColumn)
	for i := range root.cols {
		b.WriteString(cast("s", root, i))
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "s.v_ts, s.v_inc, s.v_seq FROM %s WHERE NOT EXISTS (SELECT 1 FROM %s tb WHERE %s AND %s > %s)",
		from, tombstones, tombstoneOf(root), verTB, verS)
	if !ts.noInsertTriggers {
		// Rows not newer than the stored one are left out before the
		// insert is even tried: a BEFORE INSERT trigger fires for every
		// proposed row, conflict or not. (One more index probe per row,
		// spared when the table has no such trigger.)
		fmt.Fprintf(&b, " AND NOT EXISTS (SELECT 1 FROM %s AS t WHERE %s AND %s >= %s)",
			root.ident, rootKeyMatch(root, root, root.keyIdx), verT, verS)
	}
	keys := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		keys[j] = root.cols[ki]
	}
	fmt.Fprintf(&b, " ON CONFLICT (%s) DO UPDATE SET ", strings.Join(keys, ", "))
	isKey := map[int]bool{}
	for _, ki := range root.keyIdx {
		isKey[ki] = true
	}
	for i, c := range root.cols {
		if !isKey[i] {
			fmt.Fprintf(&b, "%s = EXCLUDED.%s, ", c, c)
		}
	}
	fmt.Fprintf(&b, "%[1]s = EXCLUDED.%[1]s, %[2]s = EXCLUDED.%[2]s, %[3]s = EXCLUDED.%[3]s WHERE %[4]s < (EXCLUDED.%[1]s, EXCLUDED.%[2]s, EXCLUDED.%[3]s)",
		transform.VersionTSColumn, transform.VersionIncColumn, transform.VersionSeqColumn, verT)
	if a := ts.applied; a != nil {
		ret := make([]string, 0, len(a.cols)+3)
		names := make([]string, 0, len(a.cols)+3)
		for _, i := range a.cols {
			ret = append(ret, "t."+root.cols[i])
			names = append(names, colName(i))
		}
		ret = append(ret, "t."+transform.VersionTSColumn, "t."+transform.VersionIncColumn, "t."+transform.VersionSeqColumn)
		names = append(names, "v_ts", "v_inc", "v_seq")
		fmt.Fprintf(&b, " RETURNING %s) INSERT INTO pg_temp.%s (%s) SELECT * FROM w",
			strings.Join(ret, ", "), a.temp, strings.Join(names, ", "))
	}
	return b.String()
}

// appliedMatch matches descendant row c (a target row, or the staged row
// s with cast) to the applied root row a it belongs to.
func appliedMatch(ts *tableSet, child *table, alias string, staged bool) string {
	parts := make([]string, len(child.rootKeyIdx))
	for j, pos := range child.rootKeyIdx {
		ri := child.refIdx[j]
		v := alias + "." + child.cols[pos]
		if staged {
			v = fmt.Sprintf("CAST(%s.%s AS %s)", alias, colName(pos), ts.root.types[ri])
		}
		parts[j] = fmt.Sprintf("a.%s = %s", colName(ri), v)
	}
	return strings.Join(parts, " AND ")
}

// deleteChildrenOfMovedRefs removes, before the upsert, the rows of child
// (a table referencing root columns other than the key, TableDef.RootRef)
// under the old values of the root rows whose referenced value the upsert
// is about to change, on upsertRoot's conditions (the stored row older
// than the staged one, no newer tombstone; for external versions no
// version row as new). deleteChildrenOfUpserts finds only the children
// under the new value, and a foreign key without ON UPDATE CASCADE would
// refuse the root row's update while the old ones exist.
func deleteChildrenOfMovedRefs(ts *tableSet, child *table, from string) string {
	root := ts.root
	// A grandchild linked to its parent row's own column goes with the
	// parent rows under the old value (the parent p references the root).
	holder, using := child, ""
	if p := child.parent; p != nil {
		holder, using = p, ", "+p.ident+" AS p"
	}
	link := make([]string, len(holder.rootKeyIdx))
	moved := make([]string, len(holder.rootKeyIdx))
	for j, pos := range holder.rootKeyIdx {
		ri := holder.refIdx[j]
		alias := "c"
		if holder != child {
			alias = "p"
		}
		link[j] = fmt.Sprintf("%s.%s = t.%s", alias, holder.cols[pos], root.cols[ri])
		moved[j] = fmt.Sprintf("t.%s IS DISTINCT FROM %s", root.cols[ri], cast("s", root, ri))
	}
	if holder != child {
		link = append(link, parentLink(child, "c"))
	}
	applies := fmt.Sprintf("%s < %s", verT, verS)
	if ts.external {
		applies = fmt.Sprintf("NOT EXISTS (SELECT 1 FROM %s rv WHERE %s AND %s >= %s)", rowVersions, versionOf(root), verRV, verS)
	}
	return fmt.Sprintf("DELETE FROM %s AS c USING %s, %s AS t%s WHERE %s AND %s AND (%s) AND %s AND NOT EXISTS (SELECT 1 FROM %s tb WHERE %s AND %s > %s)",
		child.ident, from, root.ident, using, rootKeyMatch(root, root, root.keyIdx), strings.Join(link, " AND "),
		strings.Join(moved, " OR "), applies, tombstones, tombstoneOf(root), verTB, verS)
}

// movedRefs are the deleteChildrenOfMovedRefs statements of the tables
// that reference root columns other than the key, deepest first.
func movedRefs(ts *tableSet, from string) []string {
	var out []string
	for i := len(ts.desc) - 1; i >= 0; i-- {
		d := ts.desc[i]
		holder := d
		if d.parent != nil {
			holder = d.parent
		}
		if !holder.byKey(ts.root) {
			out = append(out, deleteChildrenOfMovedRefs(ts, d, from))
		}
	}
	return out
}

// deleteChildrenOfUpserts removes the rows of child whose root row the
// upsert just wrote.
func deleteChildrenOfUpserts(ts *tableSet, child *table) string {
	if p := child.parent; p != nil {
		return fmt.Sprintf("DELETE FROM %s AS c USING %s AS p, pg_temp.%s AS a WHERE %s AND %s",
			child.ident, p.ident, ts.applied.temp, parentLink(child, "c"), appliedMatch(ts, p, "p", false))
	}
	return fmt.Sprintf("DELETE FROM %s AS c USING pg_temp.%s AS a WHERE %s",
		child.ident, ts.applied.temp, appliedMatch(ts, child, "c", false))
}

// parentLink matches grandchild row alias (a target row c, or the staged
// row s) to its parent row p, for a grandchild linked to p's own columns.
func parentLink(child *table, alias string) string {
	parts := make([]string, len(child.parentLinkIdx))
	for j, li := range child.parentLinkIdx {
		ri := child.parentRefIdx[j]
		v := alias + "." + child.cols[li]
		if alias == "s" {
			v = fmt.Sprintf("CAST(s.%s AS %s)", colName(li), child.parent.types[ri])
		}
		parts[j] = fmt.Sprintf("p.%s = %s", child.parent.cols[ri], v)
	}
	return strings.Join(parts, " AND ")
}

// insertChildren inserts the staged rows of child whose root row the upsert
// just wrote at their version.
func insertChildren(ts *tableSet, child *table, from string) string {
	sel := make([]string, len(child.cols))
	for i := range child.cols {
		sel[i] = cast("s", child, i)
	}
	if p := child.parent; p != nil {
		// Through the parent rows, inserted earlier in the same write.
		return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s JOIN %s AS p ON %s JOIN pg_temp.%s AS a ON %s AND (a.v_ts, a.v_inc, a.v_seq) = %s",
			child.ident, strings.Join(child.cols, ", "), strings.Join(sel, ", "), from, p.ident, parentLink(child, "s"), ts.applied.temp,
			appliedMatch(ts, p, "p", false), verS)
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s JOIN pg_temp.%s AS a ON %s AND (a.v_ts, a.v_inc, a.v_seq) = %s",
		child.ident, strings.Join(child.cols, ", "), strings.Join(sel, ", "), from, ts.applied.temp,
		appliedMatch(ts, child, "s", true), verS)
}

// clearTombstones removes the tombstones of the keys in s that are not
// newer than s. A tombstone older than the row is harmless either way: any
// write it refuses, the row's version refuses too.
func clearTombstones(root *table, from string) string {
	return fmt.Sprintf("DELETE FROM %s tb USING %s WHERE %s AND %s <= %s",
		tombstones, from, tombstoneOf(root), verTB, verS)
}

// deleteChildrenOfDeletes removes the rows of child under the staged
// deletes' keys unless the root row is newer than the delete. A table that
// references another root column than the key finds its rows through the
// root row (without it they went with it already).
func deleteChildrenOfDeletes(ts *tableSet, child *table, from string) string {
	root := ts.root
	if root.identity {
		return deleteChildrenByIdentity(ts, child, from, verRV+" <= "+verS)
	}
	if p := child.parent; p != nil {
		// The grandchild rows under the parent rows of the deleted roots.
		using, match := fmt.Sprintf("%s, %s AS p", from, p.ident), ""
		if p.byKey(root) {
			parts := make([]string, len(root.keyIdx))
			for j, ki := range root.keyIdx {
				parts[j] = fmt.Sprintf("p.%s = CAST(s.%s AS %s)", p.cols[p.rootKeyIdx[j]], colName(ki), root.types[ki])
			}
			match = strings.Join(parts, " AND ")
		} else {
			using += ", " + root.ident + " AS t"
			match = rootKeyMatch(root, root, root.keyIdx) + " AND " + refLink(root, p, "p")
		}
		return fmt.Sprintf("DELETE FROM %s AS c USING %s WHERE %s AND %s AND NOT %s",
			child.ident, using, match, parentLink(child, "c"), newerRow(ts))
	}
	if !child.byKey(root) {
		return fmt.Sprintf("DELETE FROM %s AS c USING %s, %s AS t WHERE %s AND %s AND NOT %s",
			child.ident, from, root.ident, rootKeyMatch(root, root, root.keyIdx), refLink(root, child, "c"), newerRow(ts))
	}
	match := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		match[j] = fmt.Sprintf("c.%s = CAST(s.%s AS %s)", child.cols[child.rootKeyIdx[j]], colName(ki), root.types[ki])
	}
	return fmt.Sprintf("DELETE FROM %s AS c USING %s WHERE %s AND NOT %s",
		child.ident, from, strings.Join(match, " AND "), newerRow(ts))
}

// newerRow holds when the root row of the key in s is newer than s.
func newerRow(ts *tableSet) string {
	root := ts.root
	if ts.external {
		return fmt.Sprintf("EXISTS (SELECT 1 FROM %s rv WHERE %s AND %s > %s)", rowVersions, versionOf(root), verRV, verS)
	}
	return fmt.Sprintf("EXISTS (SELECT 1 FROM %s AS t WHERE %s AND %s > %s)", root.ident, rootKeyMatch(root, root, root.keyIdx), verT, verS)
}

func deleteRoots(ts *tableSet, from string) string {
	root := ts.root
	if root.identity {
		return deleteRootsByIdentity(ts, from, verRV+" <= "+verS)
	}
	if ts.external {
		return fmt.Sprintf("DELETE FROM %s AS t USING %s WHERE %s AND NOT %s",
			root.ident, from, rootKeyMatch(root, root, root.keyIdx), newerRow(ts))
	}
	return fmt.Sprintf("DELETE FROM %s AS t USING %s WHERE %s AND %s <= %s",
		root.ident, from, rootKeyMatch(root, root, root.keyIdx), verT, verS)
}

func upsertTombstones(root *table, from string) string {
	return fmt.Sprintf(`INSERT INTO %[1]s AS tb (table_name, key, cluster_ts, cluster_inc, seq) SELECT %[2]s, %[3]s, s.v_ts, s.v_inc, s.v_seq FROM %[4]s
ON CONFLICT (table_name, key) DO UPDATE SET cluster_ts = EXCLUDED.cluster_ts, cluster_inc = EXCLUDED.cluster_inc, seq = EXCLUDED.seq, deleted_at = now()
WHERE (tb.cluster_ts, tb.cluster_inc, tb.seq) < (EXCLUDED.cluster_ts, EXCLUDED.cluster_inc, EXCLUDED.seq)`,
		tombstones, quoteLiteral(root.def.Name), tombstoneKey(root), from)
}

// refLink matches the rows (alias) of a child that references a root
// column other than the key to root row t.
func refLink(root, child *table, alias string) string {
	parts := make([]string, len(child.rootKeyIdx))
	for j, pos := range child.rootKeyIdx {
		parts[j] = fmt.Sprintf("%s.%s = t.%s", alias, child.cols[pos], root.cols[child.refIdx[j]])
	}
	return strings.Join(parts, " AND ")
}
