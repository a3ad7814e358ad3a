package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/transform"
)

// tombstoneTable is the metadata table of deleted rows' versions
// (schemas/migrations/0001_metadata.sql).
const tombstoneTable = "replicator.tombstones"

// guardMerge writes snapshot upserts, all of one version, under the same
// rules as the streaming apply (sink): a row is written only if its stored
// version is not newer and no newer tombstone exists for its key, and a
// written row's child rows are replaced with it.
//
// A chunk is merged in two steps inside its transaction: stage copies each
// batch into temporary tables as it is read (no lock on any shared table),
// and apply merges everything staged in a few statements, after locking the
// root table IN SHARE ROW EXCLUSIVE MODE. That mode lets readers through
// but conflicts with every writer (and with itself), so a chunk's merge and
// a streaming batch writing the same collection never interleave: a batch
// that already wrote commits before the merge starts, and a batch that
// writes later waits for the chunk's commit, then sees its rows. Without
// it a streaming delete could miss a chunk's uncommitted insert while the
// chunk's tombstone check misses the delete's uncommitted tombstone, and a
// deleted row would stay; and the two would deadlock on each other's rows.
// The lock is held only for the merge of one chunk, well under a second
// for 10,000 rows; chunks of one collection merge one at a time.
type guardMerge struct {
	tables map[string]*mergePlan // by root table name
}

// newGuardMerge prepares the statements for every mapping's tables.
func newGuardMerge(mappings []*transform.Mapping) (*guardMerge, error) {
	g := &guardMerge{tables: map[string]*mergePlan{}}
	for _, m := range mappings {
		p, err := newMergePlan(m.Tables())
		if err != nil {
			return nil, fmt.Errorf("snapshot: %s: %w", m.Namespace(), err)
		}
		g.tables[p.root.def.Name] = p
	}
	return g, nil
}

// plan returns the statements for a mapping's root table.
func (g *guardMerge) plan(table string) (*mergePlan, error) {
	p, ok := g.tables[table]
	if !ok {
		return nil, fmt.Errorf("merge: no mapping writes table %s", table)
	}
	return p, nil
}

// stagedTable is one target table with its staging table.
type stagedTable struct {
	def   transform.TableDef
	ident string // quoted target name
	stage string // quoted temporary staging table name
	cols  string // quoted column list
	copy  string // COPY statement into stage
	ddl   string // CREATE TEMP TABLE IF NOT EXISTS stage
	// direct COPYs straight into the target (root: with the version
	// columns last).
	direct string
}

// mergePlan holds the statements for one root table and its descendants.
type mergePlan struct {
	root     stagedTable
	children []*stagedTable
	childIdx map[string]int
	accDDL   string
	acc      string
	lock     string // LOCK TABLE root
	keysDDL  string // temporary table of a chunk's keys
	keysCopy string
	conflict string // counts keys that repeat or have a row or tombstone
	upsert   string // root upsert (feeding acc when there are children)
	replace  []string
	truncate string
}

func quoteTable(name string) (string, error) {
	schema, table, ok := strings.Cut(name, ".")
	if !ok {
		schema, table = "public", name
	}
	if schema == "" || table == "" {
		return "", fmt.Errorf("bad table name %q", name)
	}
	return pgx.Identifier{schema, table}.Sanitize(), nil
}

func quoteCols(cols []string, prefix string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = prefix + pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(out, ", ")
}

func stageName(def transform.TableDef, kind string) string {
	h := sha256.New()
	h.Write([]byte(def.Name))
	for _, c := range def.Columns {
		h.Write([]byte{0})
		h.Write([]byte(c.Name + " " + c.Type))
	}
	return pgx.Identifier{"snap_" + kind + "_" + hex.EncodeToString(h.Sum(nil)[:6])}.Sanitize()
}

func newStagedTable(def transform.TableDef, withKey bool) (stagedTable, error) {
	ident, err := quoteTable(def.Name)
	if err != nil {
		return stagedTable{}, err
	}
	names := make([]string, len(def.Columns))
	var ddl []string
	if withKey {
		ddl = append(ddl, "_key text[]")
	}
	for i, c := range def.Columns {
		names[i] = c.Name
		ddl = append(ddl, pgx.Identifier{c.Name}.Sanitize()+" "+c.Type)
	}
	st := stagedTable{def: def, ident: ident, stage: "pg_temp." + stageName(def, "s"), cols: quoteCols(names, "")}
	st.ddl = "CREATE TEMP TABLE IF NOT EXISTS " + stageName(def, "s") + " (" + strings.Join(ddl, ", ") + ") ON COMMIT DELETE ROWS"
	copyCols := st.cols
	if withKey {
		copyCols = "_key, " + copyCols
	}
	st.copy = "COPY " + st.stage + " (" + copyCols + ") FROM STDIN"
	directCols := st.cols
	if withKey {
		directCols += ", " + quoteCols([]string{transform.VersionTSColumn, transform.VersionIncColumn, transform.VersionSeqColumn}, "")
	}
	st.direct = "COPY " + ident + " (" + directCols + ") FROM STDIN"
	return st, nil
}

func newMergePlan(tables []transform.TableDef) (*mergePlan, error) {
	if len(tables) == 0 || tables[0].Root != "" {
		return nil, fmt.Errorf("mapping has no root table first")
	}
	root, err := newStagedTable(tables[0], true)
	if err != nil {
		return nil, err
	}
	p := &mergePlan{root: root, childIdx: map[string]int{}, lock: "LOCK TABLE " + root.ident + " IN SHARE ROW EXCLUSIVE MODE"}
	rootDef := tables[0]
	colType := map[string]string{}
	for _, c := range rootDef.Columns {
		colType[c.Name] = c.Type
	}
	var keyDDL []string
	for _, k := range rootDef.Key {
		keyDDL = append(keyDDL, pgx.Identifier{k}.Sanitize()+" "+colType[k])
	}
	keysName := stageName(rootDef, "n")
	p.keysDDL = "CREATE TEMP TABLE IF NOT EXISTS " + keysName + " (_key text[], " + strings.Join(keyDDL, ", ") + ") ON COMMIT DELETE ROWS"
	p.keysCopy = "COPY pg_temp." + keysName + " (_key, " + quoteCols(rootDef.Key, "") + ") FROM STDIN"
	var match []string
	for _, k := range rootDef.Key {
		q := pgx.Identifier{k}.Sanitize()
		match = append(match, "t."+q+" = k."+q)
	}
	p.conflict = fmt.Sprintf(`SELECT (SELECT count(*) - count(DISTINCT _key) FROM pg_temp.%[1]s)
     + (SELECT count(*) FROM pg_temp.%[1]s k
         WHERE EXISTS (SELECT 1 FROM %[2]s t WHERE %[3]s)
            OR EXISTS (SELECT 1 FROM %[4]s x WHERE x.table_name = $1 AND x.key = k._key))`,
		keysName, root.ident, strings.Join(match, " AND "), tombstoneTable)
	p.acc = "pg_temp." + stageName(rootDef, "k")
	p.accDDL = "CREATE TEMP TABLE IF NOT EXISTS " + stageName(rootDef, "k") + " (" + strings.Join(keyDDL, ", ") + ") ON COMMIT DELETE ROWS"
	stages := []string{root.stage}
	for _, def := range tables[1:] {
		st, err := newStagedTable(def, false)
		if err != nil {
			return nil, err
		}
		p.childIdx[def.Name] = len(p.children)
		p.children = append(p.children, &st)
		stages = append(stages, st.stage)
		if len(def.RootKey) != len(rootDef.Key) {
			return nil, fmt.Errorf("table %s: root key has %d columns, %s has %d", def.Name, len(def.RootKey), rootDef.Name, len(rootDef.Key))
		}
		var on []string
		for i, rk := range def.RootKey {
			on = append(on, "c."+pgx.Identifier{rk}.Sanitize()+" = a."+pgx.Identifier{rootDef.Key[i]}.Sanitize())
		}
		join := strings.Join(on, " AND ")
		p.replace = append(p.replace,
			"DELETE FROM "+st.ident+" c USING "+p.acc+" a WHERE "+join,
			"INSERT INTO "+st.ident+" ("+st.cols+") SELECT "+quoteCols(colNames(def), "c.")+" FROM "+st.stage+" c JOIN "+p.acc+" a ON "+join)
	}
	if len(p.children) > 0 {
		stages = append(stages, p.acc)
	}
	p.truncate = "TRUNCATE " + strings.Join(stages, ", ")
	p.upsert = upsertSQL(rootDef, root, p.acc, len(p.children) > 0)
	return p, nil
}

func colNames(def transform.TableDef) []string {
	out := make([]string, len(def.Columns))
	for i, c := range def.Columns {
		out[i] = c.Name
	}
	return out
}

// upsertSQL is the guarded root merge. $1, $2, $3: the version's cluster
// time seconds, increment and sequence; $4: the table name as tombstones
// record it.
func upsertSQL(def transform.TableDef, root stagedTable, acc string, feedAcc bool) string {
	ts, inc, seq := pgx.Identifier{transform.VersionTSColumn}.Sanitize(), pgx.Identifier{transform.VersionIncColumn}.Sanitize(), pgx.Identifier{transform.VersionSeqColumn}.Sanitize()
	keys := quoteCols(def.Key, "s.")
	isKey := map[string]bool{}
	for _, k := range def.Key {
		isKey[k] = true
	}
	var set []string
	for _, c := range def.Columns {
		if !isKey[c.Name] {
			q := pgx.Identifier{c.Name}.Sanitize()
			set = append(set, q+" = EXCLUDED."+q)
		}
	}
	set = append(set, ts+" = EXCLUDED."+ts, inc+" = EXCLUDED."+inc, seq+" = EXCLUDED."+seq)
	var b strings.Builder
	if feedAcc {
		b.WriteString("WITH up AS (\n")
	}
	fmt.Fprintf(&b, `INSERT INTO %s AS t (%s, %s, %s, %s)
SELECT DISTINCT ON (%s) %s, $1::bigint, $2::bigint, $3::bigint
  FROM %s s
 WHERE NOT EXISTS (SELECT 1 FROM %s x
                    WHERE x.table_name = $4 AND x.key = s._key
                      AND (x.cluster_ts, x.cluster_inc, x.seq) > ($1::bigint, $2::bigint, $3::bigint))
 ORDER BY %s
ON CONFLICT (%s) DO UPDATE SET %s
 WHERE (t.%s, t.%s, t.%s) <= (EXCLUDED.%s, EXCLUDED.%s, EXCLUDED.%s)`,
		root.ident, root.cols, ts, inc, seq,
		keys, quoteCols(colNames(def), "s."),
		root.stage, tombstoneTable,
		keys,
		quoteCols(def.Key, ""), strings.Join(set, ", "),
		ts, inc, seq, ts, inc, seq)
	if feedAcc {
		fmt.Fprintf(&b, "\nRETURNING %s\n) INSERT INTO %s SELECT * FROM up", quoteCols(def.Key, "t."), acc)
	}
	return b.String()
}

// merge merges everything staged in tx at version v and empties the
// staging tables. The caller holds the root table lock (see guardMerge).
func (p *mergePlan) merge(ctx context.Context, tx pgx.Tx, v transform.Version) error {
	if len(p.children) > 0 {
		if _, err := tx.Exec(ctx, p.accDDL); err != nil {
			return fmt.Errorf("merge: create key table: %w", err)
		}
	}
	ct := v.ClusterTime
	if _, err := tx.Exec(ctx, p.upsert, int64(ct.T), int64(ct.I), int64(v.Seq), p.root.def.Name); err != nil {
		return fmt.Errorf("merge %s: %w", p.root.def.Name, err)
	}
	for _, q := range p.replace {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("merge child rows of %s: %w", p.root.def.Name, err)
		}
	}
	if _, err := tx.Exec(ctx, p.truncate); err != nil {
		return fmt.Errorf("merge: clear staging: %w", err)
	}
	return nil
}

// copyRows creates st's staging table if needed and copies rows into it.
func copyRows(ctx context.Context, tx pgx.Tx, st *stagedTable, rows *copyText) error {
	if _, err := tx.Exec(ctx, st.ddl); err != nil {
		return fmt.Errorf("merge: create staging table for %s: %w", st.def.Name, err)
	}
	if rows.rows == 0 {
		return nil
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(rows.buf.Bytes()), st.copy); err != nil {
		return fmt.Errorf("merge: copy %d rows of %s: %w", rows.rows, st.def.Name, err)
	}
	return nil
}
