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
// and apply merges everything staged in a few statements, after taking the
// collection's apply-checkpoint row FOR SHARE. The sink updates that row
// first in every batch, so a chunk's merge and a streaming batch of the
// same collection never interleave: either the batch commits first and the
// merge sees its rows and tombstones, or the merge commits first and the
// batch's statements see the chunk's rows. Without it a streaming delete
// could miss a chunk's uncommitted insert while the chunk's tombstone check
// misses the delete's uncommitted tombstone, and a deleted row would stay.
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
}

// mergePlan holds the statements for one root table and its descendants.
type mergePlan struct {
	root     stagedTable
	children []*stagedTable
	childIdx map[string]int
	accDDL   string
	acc      string
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
	p := &mergePlan{root: root, childIdx: map[string]int{}}
	rootDef := tables[0]
	colType := map[string]string{}
	for _, c := range rootDef.Columns {
		colType[c.Name] = c.Type
	}
	var keyDDL []string
	for _, k := range rootDef.Key {
		keyDDL = append(keyDDL, pgx.Identifier{k}.Sanitize()+" "+colType[k])
	}
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

// stage copies one batch into tx's staging tables. It is safe for
// concurrent use (each transaction has its own connection and so its own
// temporary tables).
func (p *mergePlan) stage(ctx context.Context, tx pgx.Tx, muts []transform.Mutation) error {
	root := &copyText{}
	kids := make([]copyText, len(p.children))
	for i := range muts {
		m := &muts[i]
		if m.Op != transform.OpUpsert || m.Table != p.root.def.Name {
			return fmt.Errorf("merge: snapshot mutation %d is %s on %s, want upsert on %s", i, m.Op, m.Table, p.root.def.Name)
		}
		if len(m.Values) != len(p.root.def.Columns) {
			return fmt.Errorf("merge: %s row has %d values for %d columns", m.Table, len(m.Values), len(p.root.def.Columns))
		}
		root.keyArray(m.Key)
		for _, val := range m.Values {
			root.field(false, val)
		}
		root.endRow()
		for _, cr := range m.Children {
			j, ok := p.childIdx[cr.Table]
			if !ok {
				return fmt.Errorf("merge: %s is not a child table of %s", cr.Table, p.root.def.Name)
			}
			for _, row := range cr.Rows {
				for k, val := range row {
					kids[j].field(k == 0, val)
				}
				kids[j].endRow()
			}
		}
	}
	if err := copyRows(ctx, tx, &p.root, root); err != nil {
		return err
	}
	for i, c := range p.children {
		if err := copyRows(ctx, tx, c, &kids[i]); err != nil {
			return err
		}
	}
	return nil
}

// apply merges everything staged in tx at version v and empties the
// staging tables. It first takes the collection's apply-checkpoint row FOR
// SHARE (see guardMerge), creating the row as the sink does if it is not
// there yet.
func (p *mergePlan) apply(ctx context.Context, tx pgx.Tx, collection string, v transform.Version) error {
	if _, err := tx.Exec(ctx, "INSERT INTO replicator.apply_checkpoints (collection) VALUES ($1) ON CONFLICT DO NOTHING", collection); err != nil {
		return fmt.Errorf("merge: lock apply checkpoint of %s: %w", collection, err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM replicator.apply_checkpoints WHERE collection = $1 FOR SHARE", collection); err != nil {
		return fmt.Errorf("merge: lock apply checkpoint of %s: %w", collection, err)
	}
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
