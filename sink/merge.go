package sink

import (
	"fmt"
	"strings"

	"github.com/mongopg/replicator/transform"
)

// The statements below merge staged relations (alias s) into the target
// tables. Together they implement ARCHITECTURE.md guarantee 2 for one batch:
//
//   - a root upsert writes only if its version is at least the stored row's
//     and at least the key's tombstone (upsertRoot);
//   - a parent's children are replaced only if the parent's write applied,
//     which after upsertRoot is exactly "the root row now carries this
//     event's version" (deleteChildrenOfUpserts, insertChildren);
//   - a delete removes the row and its children only if it is at least as
//     new as the row, and always leaves the newest tombstone (deleteRoots,
//     upsertTombstones); an applied upsert removes older tombstones.
//
// Versions compare as the row (cluster_ts, cluster_inc, seq). The Applier
// (apply.go, queueWrites) and Guard (guard.go: the snapshot and resync
// loader) run these same statements.

const tombstones = "replicator.tombstones"

var (
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

// tombstoneKey is the text[] key of a root relation's row.
func tombstoneKey(root *table) string {
	parts := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		parts[j] = "s." + colName(ki)
	}
	return "ARRAY[" + strings.Join(parts, ", ") + "]::text[]"
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

func upsertRoot(root *table, from string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s AS t (%s, %s, %s, %s) SELECT ", root.ident, strings.Join(root.cols, ", "),
		transform.VersionTSColumn, transform.VersionIncColumn, transform.VersionSeqColumn)
	for i := range root.cols {
		b.WriteString(cast("s", root, i))
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "s.v_ts, s.v_inc, s.v_seq FROM %s WHERE NOT EXISTS (SELECT 1 FROM %s tb WHERE %s AND %s > %s)",
		from, tombstones, tombstoneOf(root), verTB, verS)
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
	fmt.Fprintf(&b, "%[1]s = EXCLUDED.%[1]s, %[2]s = EXCLUDED.%[2]s, %[3]s = EXCLUDED.%[3]s WHERE %[4]s <= (EXCLUDED.%[1]s, EXCLUDED.%[2]s, EXCLUDED.%[3]s)",
		transform.VersionTSColumn, transform.VersionIncColumn, transform.VersionSeqColumn, verT)
	return b.String()
}

// childRootMatch matches child row c to root row t.
func childRootMatch(root, child *table) string {
	parts := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		parts[j] = fmt.Sprintf("c.%s = t.%s", child.cols[child.rootKeyIdx[j]], root.cols[ki])
	}
	return strings.Join(parts, " AND ")
}

func deleteChildrenOfUpserts(root, child *table, from string) string {
	return fmt.Sprintf("DELETE FROM %s AS c USING %s, %s AS t WHERE %s AND %s = %s AND %s",
		child.ident, from, root.ident, rootKeyMatch(root, root, root.keyIdx), verT, verS, childRootMatch(root, child))
}

func insertChildren(root, child *table, from string) string {
	sel := make([]string, len(child.cols))
	for i := range child.cols {
		sel[i] = cast("s", child, i)
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s JOIN %s AS t ON %s AND %s = %s",
		child.ident, strings.Join(child.cols, ", "), strings.Join(sel, ", "), from, root.ident,
		rootKeyMatch(root, child, child.rootKeyIdx), verT, verS)
}

func clearTombstones(root *table, from string) string {
	return fmt.Sprintf("DELETE FROM %s tb USING %s WHERE %s AND %s <= %s",
		tombstones, from, tombstoneOf(root), verTB, verS)
}

func deleteChildrenOfDeletes(root, child *table, from string) string {
	match := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		match[j] = fmt.Sprintf("c.%s = CAST(s.%s AS %s)", child.cols[child.rootKeyIdx[j]], colName(ki), root.types[ki])
	}
	return fmt.Sprintf("DELETE FROM %s AS c USING %s WHERE %s AND NOT EXISTS (SELECT 1 FROM %s AS t WHERE %s AND %s > %s)",
		child.ident, from, strings.Join(match, " AND "), root.ident, rootKeyMatch(root, root, root.keyIdx), verT, verS)
}

func deleteRoots(root *table, from string) string {
	return fmt.Sprintf("DELETE FROM %s AS t USING %s WHERE %s AND %s <= %s",
		root.ident, from, rootKeyMatch(root, root, root.keyIdx), verT, verS)
}

func upsertTombstones(root *table, from string) string {
	return fmt.Sprintf(`INSERT INTO %[1]s AS tb (table_name, key, cluster_ts, cluster_inc, seq) SELECT %[2]s, %[3]s, s.v_ts, s.v_inc, s.v_seq FROM %[4]s
ON CONFLICT (table_name, key) DO UPDATE SET cluster_ts = EXCLUDED.cluster_ts, cluster_inc = EXCLUDED.cluster_inc, seq = EXCLUDED.seq, deleted_at = now()
WHERE (tb.cluster_ts, tb.cluster_inc, tb.seq) < (EXCLUDED.cluster_ts, EXCLUDED.cluster_inc, EXCLUDED.seq)`,
		tombstones, quoteLiteral(root.def.Name), tombstoneKey(root), from)
}
