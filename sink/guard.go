package sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mongopg/replicator/transform"
)

// Guard writes rows that do not come from the buffer (the snapshot and
// resync loader's, replicator/snapshot) into one collection's tables with
// the Applier's own merge statements (merge.go), so that both writers
// follow one implementation of ARCHITECTURE.md guarantee 2: a root row is written
// only if its version is at least the stored row's and no newer tombstone
// exists for its key, a written row's child rows are replaced with it, an
// applied write removes older tombstones, and a delete leaves the newest
// tombstone.
//
// A Guard holds only prepared statement text, so one value serves any
// number of transactions at once. Rows reach it in COPY's text format: one
// line per row, each value written by WriteCopyText, values separated by
// tabs, lines ending in a newline; rows[0] holds rows of the root table and
// rows[i] rows of the i-th table given to NewGuard, each with all of its
// columns in TableDef.Columns order. The version is passed apart: every
// row of one call has the same one (a descendant row its root row's).
//
// Within one transaction a writer either stages rows (Stage, as often as
// it likes) and then merges them (Merge), or, when Fresh finds that no key
// repeats and none has a row or a tombstone, inserts them directly
// (Insert): any version beats no row and no tombstone.
//
// The guard compares versions with what it sees, and a transaction does
// not see another's uncommitted rows: a delete that misses an uncommitted
// insert, while that insert misses the delete's uncommitted tombstone,
// would leave a deleted row behind. The Applier writes each key from one
// goroutine; a Guard user writing the same collection concurrently keeps
// the Applier's transactions out while it writes, until it commits (the
// snapshot locks the root table IN SHARE ROW EXCLUSIVE MODE), and this is
// also what keeps Fresh's answer true until Insert's rows commit.
type Guard struct {
	ts   *tableSet
	up   *relation   // root rows
	keys *relation   // root keys (Fresh)
	del  *relation   // keys of rows to delete, at a version (DeleteOlder)
	kids []*relation // rows of ts.desc[i]

	create   string   // CREATE TEMP TABLE IF NOT EXISTS for every relation
	stage    []string // COPY into the relation of table i
	insert   []string // COPY into table i itself (root: with the version)
	keysCopy string   // COPY of key columns into keys
	fresh    string   // counts keys that repeat or have a row or tombstone
	merge    []string // the upsert merge, then emptying the relations
	truncate string   // empties the relations
	analyze  string   // analyzes them, empty, after the truncate
	// Under row-level security (rls.go): the upsert merge of one tenant's
	// staged rows (the one set_config names), the staged rows' tenants, and
	// the tenants that have version rows.
	tenantMerge   []string
	stagedTenants string
	knownTenants  string
	older         string // stages the keys of rows older than $1, $2, $3
	olderKeys     string // the same, only for the keys staged by DeleteKeys
	// The delete merge of the staged keys: child rows, root rows,
	// tombstones.
	delete      []string
	deleteRoots string
	tombs       string
	versions    string // external versions: deletes the version rows
}

// NewGuard prepares the statements for one collection's tables: the root
// table first, then its descendants, each after its parent
// (transform.Mapping.Tables order). namespace names the collection; it
// keeps the staging tables of different collections apart.
func NewGuard(namespace string, tables []transform.TableDef) (*Guard, error) {
	ts, err := compileTables(tables)
	if err != nil {
		return nil, err
	}
	root := ts.root
	g := &Guard{
		ts:   ts,
		up:   newRelation(namespace, "gup", root, allCols(root)),
		keys: newRelation(namespace, "gkey", root, root.keyIdx),
		del:  newRelation(namespace, "gdel", root, root.idIdx),
	}
	for i, d := range ts.desc {
		g.kids = append(g.kids, newRelation(namespace, fmt.Sprintf("gch%d", i), d, allCols(d)))
	}
	g.prepareCopies()
	g.prepareMerge()
	g.prepareDelete()
	return g, nil
}

// prepareCopies prepares the staging tables and the COPY statements.
func (g *Guard) prepareCopies() {
	rels := append([]*relation{g.up, g.keys, g.del}, g.kids...)
	ddl := make([]string, len(rels))
	temps := make([]string, len(rels))
	for i, r := range rels {
		ddl[i] = r.createTemp()
		temps[i] = "pg_temp." + r.temp
	}
	if a := g.ts.applied; a != nil {
		ddl = append(ddl, a.create(g.ts.root))
		temps = append(temps, "pg_temp."+a.temp)
	}
	g.create = strings.Join(ddl, "; ")
	// TRUNCATE gives a table a new file and resets its statistics to
	// "never analyzed"; the ANALYZE right after, of the empty tables, sets
	// them back (analyzeTemp, stage.go). The applier shares the table of
	// applied rows on a connection of the same pool and counts on it.
	g.truncate = "TRUNCATE " + strings.Join(temps, ", ")
	g.analyze = "ANALYZE " + strings.Join(temps, ", ")
	for i, t := range append([]*table{g.ts.root}, g.ts.desc...) {
		rel := g.up
		if i > 0 {
			rel = g.kids[i-1]
		}
		g.stage = append(g.stage, "COPY pg_temp."+rel.temp+" ("+strings.Join(rel.copyColumns(), ", ")+") FROM STDIN")
		cols := strings.Join(t.cols, ", ")
		if i == 0 {
			cols += ", " + transform.VersionTSColumn + ", " + transform.VersionIncColumn + ", " + transform.VersionSeqColumn
		}
		g.insert = append(g.insert, "COPY "+t.ident+" ("+cols+") FROM STDIN")
	}
	keyCols := make([]string, len(g.ts.root.keyIdx))
	for j, ki := range g.ts.root.keyIdx {
		keyCols[j] = colName(ki)
	}
	g.keysCopy = "COPY pg_temp." + g.keys.temp + " (" + strings.Join(keyCols, ", ") + ") FROM STDIN"
}

// typedKeys are the root key columns of a staged relation, each cast to
// its type, as the primary key compares them.
func (g *Guard) typedKeys() string {
	root := g.ts.root
	if root.identity {
		return colName(root.idIdx[0])
	}
	out := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		out[j] = fmt.Sprintf("CAST(%s AS %s)", colName(ki), root.types[ki])
	}
	return strings.Join(out, ", ")
}

// prepareMerge prepares Fresh's check and the merge of staged upserts: the
// statements queueWrites sends for upserts, over the staged relations,
// except that the root upsert reads one row per key, the newest (the
// applier's plan keeps one per key before staging; a snapshot chunk may
// repeat one), since INSERT ... ON CONFLICT cannot write a row twice.
func (g *Guard) prepareMerge() {
	root, desc := g.ts.root, g.ts.desc
	keysFrom, _ := copySource{}.from(g.keys, nil, nil)
	g.fresh = fmt.Sprintf("SELECT (SELECT count(*) - count(DISTINCT (%s)) FROM pg_temp.%s) + (SELECT count(*) FROM %s WHERE %s OR %s)",
		g.typedKeys(), g.keys.temp, keysFrom, rowExists(root), tombstoneExists(root))

	upFrom, _ := copySource{}.from(g.up, nil, nil)
	newest := fmt.Sprintf("(SELECT DISTINCT ON (%[1]s) * FROM pg_temp.%[2]s ORDER BY %[1]s, v_ts DESC, v_inc DESC, v_seq DESC) AS s",
		g.typedKeys(), g.up.temp)
	g.merge = append(g.merge, movedRows(g.ts, upFrom)...)
	g.merge = append(g.merge, movedRefs(g.ts, newest)...)
	g.merge = append(g.merge, upsertRoot(g.ts, newest))
	for i := len(desc) - 1; i >= 0; i-- {
		g.merge = append(g.merge, deleteChildrenOfUpserts(g.ts, desc[i]))
	}
	for i, d := range desc {
		from, _ := copySource{}.from(g.kids[i], nil, nil)
		g.merge = append(g.merge, insertChildren(g.ts, d, from))
	}
	g.merge = append(g.merge, clearTombstones(root, upFrom), g.truncate, g.analyze)
	if g.ts.setting == "" {
		return
	}
	// The same statements over one tenant's staged rows.
	mine := func(rel *relation, t *table) string {
		return fmt.Sprintf("(SELECT * FROM pg_temp.%s WHERE %s = current_setting(%s)) AS s",
			rel.temp, colName(t.tenantIdx), quoteLiteral(g.ts.setting))
	}
	upMine := mine(g.up, root)
	newestMine := fmt.Sprintf("(SELECT DISTINCT ON (%[1]s) * FROM pg_temp.%[2]s WHERE %[3]s = current_setting(%[4]s) ORDER BY %[1]s, v_ts DESC, v_inc DESC, v_seq DESC) AS s",
		g.typedKeys(), g.up.temp, colName(g.ts.tenantIdx), quoteLiteral(g.ts.setting))
	if g.ts.applied != nil {
		// Each tenant's children follow its own root rows only.
		g.tenantMerge = append(g.tenantMerge, "DELETE FROM pg_temp."+g.ts.applied.temp)
	}
	g.tenantMerge = append(g.tenantMerge, movedRows(g.ts, upMine)...)
	g.tenantMerge = append(g.tenantMerge, movedRefs(g.ts, newestMine)...)
	g.tenantMerge = append(g.tenantMerge, upsertRoot(g.ts, newestMine))
	for i := len(desc) - 1; i >= 0; i-- {
		g.tenantMerge = append(g.tenantMerge, deleteChildrenOfUpserts(g.ts, desc[i]))
	}
	for i, d := range desc {
		g.tenantMerge = append(g.tenantMerge, insertChildren(g.ts, d, mine(g.kids[i], d)))
	}
	g.tenantMerge = append(g.tenantMerge, clearTombstones(root, upMine))
	g.stagedTenants = fmt.Sprintf("SELECT DISTINCT %s FROM pg_temp.%s", colName(g.ts.tenantIdx), g.up.temp)
	g.knownTenants = fmt.Sprintf("SELECT DISTINCT tenant FROM %s WHERE table_name = %s AND tenant IS NOT NULL", rowVersions, quoteLiteral(root.def.Name))
}

// prepareDelete prepares DeleteOlder: staging the keys of the rows older
// than a version, then the statements queueWrites sends for deletes.
func (g *Guard) prepareDelete() {
	root, desc := g.ts.root, g.ts.desc
	keyCols := make([]string, len(root.keyIdx))
	text := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		keyCols[j] = colName(ki)
		text[j] = keyText(root, ki, "t")
	}
	g.older = fmt.Sprintf("INSERT INTO pg_temp.%s (%s, v_ts, v_inc, v_seq) SELECT %s, $1::int8, $2::int8, $3::int8 FROM %s AS t WHERE %s < ($1::int8, $2::int8, $3::int8)",
		g.del.temp, strings.Join(keyCols, ", "), strings.Join(text, ", "), root.ident, verT)
	if root.identity {
		// The identities whose version rows are older (a row without
		// one is not the replicator's: it stays).
		g.older = fmt.Sprintf("INSERT INTO pg_temp.%s (%s, v_ts, v_inc, v_seq) SELECT rv.key[1], $1::int8, $2::int8, $3::int8 FROM %s rv WHERE rv.table_name = %s AND %s < ($1::int8, $2::int8, $3::int8)",
			g.del.temp, colName(root.idIdx[0]), rowVersions, quoteLiteral(root.def.Name), verRV)
		if g.ts.setting != "" {
			// Tenant by tenant (DeleteOlder): the version rows know theirs.
			g.older += " AND rv.tenant = current_setting(" + quoteLiteral(g.ts.setting) + ")"
		}
	} else if g.ts.external {
		g.older = g.olderExternal(keyCols, text)
	}
	if !root.identity {
		tuple := make([]string, len(root.keyIdx))
		for j, ki := range root.keyIdx {
			tuple[j] = "t." + root.cols[ki]
		}
		g.olderKeys = fmt.Sprintf("%s AND (%s) IN (SELECT %s FROM pg_temp.%s)", g.older, strings.Join(tuple, ", "), g.typedKeys(), g.keys.temp)
	}
	from, _ := copySource{}.from(g.del, nil, nil)
	for i := len(desc) - 1; i >= 0; i-- {
		g.delete = append(g.delete, deleteChildrenOfDeletes(g.ts, desc[i], from))
	}
	g.deleteRoots, g.tombs = deleteRoots(g.ts, from), upsertTombstones(root, from)
	if g.ts.external {
		g.versions = deleteVersions(g.ts, from)
	}
}

// olderExternal stages the keys of the rows whose version row is older
// than $1, $2, $3; a row without a version row is older than any version.
// A version row belongs to the row whose key its text, read as the key
// columns' types, equals: keyText is not transform's text for every value
// (a double precision or a numeric(p,s) key column holds the same value
// whatever text wrote it). Each row is staged with its version row's key,
// so the delete, the version row's removal and the tombstone use
// transform's text, as a delete event would.
func (g *Guard) olderExternal(keyCols, text []string) string {
	root := g.ts.root
	typed := make([]string, len(root.keyIdx))
	match := make([]string, len(root.keyIdx))
	staged := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		typed[j] = fmt.Sprintf("CAST(key[%d] AS %s) AS k%d", j+1, root.types[ki], j)
		match[j] = fmt.Sprintf("t.%s = rv.k%d", root.cols[ki], j)
		staged[j] = fmt.Sprintf("coalesce(rv.key[%d], %s)", j+1, text[j])
	}
	order := make([]string, len(typed))
	for j := range order {
		order[j] = strconv.Itoa(j + 1)
	}
	versions := fmt.Sprintf("(SELECT DISTINCT ON (%[1]s) %[2]s, key, cluster_ts, cluster_inc, seq FROM %[3]s WHERE table_name = %[4]s ORDER BY %[1]s, cluster_ts DESC, cluster_inc DESC, seq DESC) rv",
		strings.Join(order, ", "), strings.Join(typed, ", "), rowVersions, quoteLiteral(root.def.Name))
	return fmt.Sprintf("INSERT INTO pg_temp.%s (%s, v_ts, v_inc, v_seq) SELECT %s, $1::int8, $2::int8, $3::int8 FROM %s AS t LEFT JOIN %s ON %s WHERE (rv.key IS NULL OR %s < ($1::int8, $2::int8, $3::int8))",
		g.del.temp, strings.Join(keyCols, ", "), strings.Join(staged, ", "), root.ident, versions, strings.Join(match, " AND "), verRV)
}

// keyText renders column i of t (under alias) as transform writes its
// value: KeyTextSQL of the column.
func keyText(t *table, i int, alias string) string {
	return KeyTextSQL(alias+"."+t.cols[i], t.types[i])
}

// KeyTextSQL is the SQL that renders col, of PostgreSQL type typ, as
// transform writes its value: the text tombstone and row version keys
// hold (tombstoneKey), so a tombstone the sweep writes matches the one a
// delete event of the same key would. For timestamps and dates transform
// writes ISO 8601 with a T, exactly three fractional digits and, for
// timestamptz, Z in UTC, and a BC suffix; a plain cast to text would
// follow the session's DateStyle and TimeZone instead. PostgreSQL's text
// output agrees with transform for the other key types (text, uuid,
// integers, numeric, boolean, double, bytea).
func KeyTextSQL(col, typ string) string {
	bc := func(v string) string { return fmt.Sprintf("CASE WHEN %s < '0001-01-01' THEN ' BC' ELSE '' END", v) }
	switch strings.ToLower(typ) {
	case "timestamptz", "timestamp with time zone":
		utc := "(" + col + " AT TIME ZONE 'UTC')"
		return fmt.Sprintf(`(to_char(%s, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || %s)`, utc, bc(utc))
	case "timestamp", "timestamp without time zone":
		return fmt.Sprintf(`(to_char(%s, 'YYYY-MM-DD"T"HH24:MI:SS.MS') || %s)`, col, bc(col))
	case "date":
		return fmt.Sprintf(`(to_char(%s, 'YYYY-MM-DD') || %s)`, col, bc(col))
	}
	return "CAST(" + col + " AS text)"
}

// Table is the root table's name.
func (g *Guard) Table() string { return g.ts.root.def.Name }

// createTables creates the staging tables once per connection; their rows
// vanish at commit.
func (g *Guard) createTables(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, g.create, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("create staging tables for %s: %w", g.Table(), err)
	}
	return nil
}

// Stage copies rows, all at version v, into tx's staging tables for Merge.
func (g *Guard) Stage(ctx context.Context, tx pgx.Tx, rows [][]byte, v transform.Version) error {
	if err := g.checkTables(rows); err != nil {
		return err
	}
	if err := g.createTables(ctx, tx); err != nil {
		return err
	}
	suffix := versionSuffix(v)
	for i, r := range rows {
		if len(r) == 0 {
			continue
		}
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, &versioned{rows: r, suffix: suffix}, g.stage[i]); err != nil {
			return fmt.Errorf("stage rows of %s: %w", g.tableName(i), err)
		}
	}
	return nil
}

// Merge merges every row staged in tx into the target tables under the
// version guard and empties the staging tables.
func (g *Guard) Merge(ctx context.Context, tx pgx.Tx) error {
	if err := g.createTables(ctx, tx); err != nil {
		return err
	}
	b := &pgx.Batch{}
	if g.ts.setting == "" {
		for _, q := range g.merge {
			b.Queue(q)
		}
	} else {
		tenants, err := g.tenants(ctx, tx, g.stagedTenants)
		if err != nil {
			return err
		}
		for _, tenant := range tenants {
			b.Queue(setTenant, g.ts.setting, tenant)
			for _, q := range g.tenantMerge {
				b.Queue(q)
			}
		}
		b.Queue(g.truncate)
		b.Queue(g.analyze)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		if g.ts.setting != "" && rlsViolation(err) {
			err = tenantViolation{err}
		}
		return fmt.Errorf("merge into %s: %w", g.Table(), err)
	}
	return nil
}

// tenants lists the tenants query q returns.
func (g *Guard) tenants(ctx context.Context, tx pgx.Tx, q string) ([]string, error) {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list the tenants of %s: %w", g.Table(), err)
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the tenants of %s: %w", g.Table(), err)
	}
	return tenants, nil
}

// Fresh copies keys (one line per root row: its key columns in
// TableDef.Key order) into tx and reports whether none of them repeats and
// none has a row or a tombstone, so that rows of these keys, at any
// version, may be inserted with Insert.
func (g *Guard) Fresh(ctx context.Context, tx pgx.Tx, keys []byte) (bool, error) {
	if g.ts.external || g.ts.setting != "" {
		// Insert writes no version rows, and COPY into a table under
		// row-level security is refused: always merge.
		return false, nil
	}
	if err := g.createTables(ctx, tx); err != nil {
		return false, err
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(keys), g.keysCopy); err != nil {
		return false, fmt.Errorf("stage keys of %s: %w", g.Table(), err)
	}
	var n int64
	if err := tx.QueryRow(ctx, g.fresh).Scan(&n); err != nil {
		return false, fmt.Errorf("check keys of %s: %w", g.Table(), err)
	}
	return n == 0, nil
}

// Insert copies rows, all at version v, straight into the target tables,
// without the guard: only for keys Fresh found new in the same
// transaction, which no one else has written since.
func (g *Guard) Insert(ctx context.Context, tx pgx.Tx, rows [][]byte, v transform.Version) error {
	if err := g.checkTables(rows); err != nil {
		return err
	}
	conn := tx.Conn().PgConn()
	for i, r := range rows {
		if len(r) == 0 {
			continue
		}
		var src io.Reader = bytes.NewReader(r)
		if i == 0 {
			src = &versioned{rows: r, suffix: versionSuffix(v)}
		}
		if _, err := conn.CopyFrom(ctx, src, g.insert[i]); err != nil {
			return fmt.Errorf("copy into %s: %w", g.tableName(i), err)
		}
	}
	return nil
}

// DeleteOlder deletes every root row whose version is older than v, each
// exactly as a delete event of its key at v would: the row goes with its
// child rows and leaves a tombstone at v (unless a newer one exists). It
// returns how many root rows it deleted. A resync calls it with v =
// (T0, 0) once it has written every document that exists at T0, holding
// writers off the root table meanwhile.
// The tombstone keys hold transform's text of each key value (keyText),
// as the Applier's do.
func (g *Guard) DeleteOlder(ctx context.Context, tx pgx.Tx, v transform.Version) (int64, error) {
	if err := g.createTables(ctx, tx); err != nil {
		return 0, err
	}
	if g.ts.setting == "" {
		return g.deleteOlder(ctx, tx, v)
	}
	// Under row-level security, tenant by tenant: each sees its own rows
	// (rows of a tenant the replicator never wrote stay unseen).
	tenants, err := g.tenants(ctx, tx, g.knownTenants)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, tenant := range tenants {
		if _, err := tx.Exec(ctx, setTenant, g.ts.setting, tenant); err != nil {
			return total, fmt.Errorf("set %s for %s: %w", g.ts.setting, g.Table(), err)
		}
		n, err := g.deleteOlder(ctx, tx, v)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (g *Guard) deleteOlder(ctx context.Context, tx pgx.Tx, v transform.Version) (int64, error) {
	ct := v.ClusterTime
	if _, err := tx.Exec(ctx, g.older, int64(ct.T), int64(ct.I), int64(v.Seq)); err != nil {
		return 0, fmt.Errorf("find rows of %s older than %d.%d/%d: %w", g.Table(), ct.T, ct.I, v.Seq, err)
	}
	return g.deleteStaged(ctx, tx)
}

// DeleteKeys deletes the root rows whose key is among keys (one line per
// key, its columns in TableDef.Key order as transform writes them) and
// whose version is older than v, each exactly as a delete event of its
// key at v would (DeleteOlder). It returns how many root rows it deleted.
// verify --repair removes rows no document gives with it. Not for roots
// keyed by identity or written under a tenant setting.
func (g *Guard) DeleteKeys(ctx context.Context, tx pgx.Tx, keys []byte, v transform.Version) (int64, error) {
	if g.olderKeys == "" || g.ts.setting != "" {
		return 0, fmt.Errorf("%s: rows keyed by document identity or written under a tenant setting cannot be deleted by key; run a resync of the collection", g.Table())
	}
	if err := g.createTables(ctx, tx); err != nil {
		return 0, err
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(keys), g.keysCopy); err != nil {
		return 0, fmt.Errorf("stage keys of %s: %w", g.Table(), err)
	}
	ct := v.ClusterTime
	if _, err := tx.Exec(ctx, g.olderKeys, int64(ct.T), int64(ct.I), int64(v.Seq)); err != nil {
		return 0, fmt.Errorf("find rows of %s older than %d.%d/%d: %w", g.Table(), ct.T, ct.I, v.Seq, err)
	}
	return g.deleteStaged(ctx, tx)
}

// deleteStaged deletes the rows whose keys the del relation holds, with
// their child rows, version rows and tombstones, and empties the
// relations.
func (g *Guard) deleteStaged(ctx context.Context, tx pgx.Tx) (int64, error) {
	var n int64
	b := &pgx.Batch{}
	for _, q := range g.delete {
		b.Queue(q)
	}
	b.Queue(g.deleteRoots).Exec(func(tag pgconn.CommandTag) error {
		n = tag.RowsAffected()
		return nil
	})
	if g.versions != "" {
		b.Queue(g.versions)
	}
	b.Queue(g.tombs)
	b.Queue(g.truncate)
	b.Queue(g.analyze)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("delete rows of %s: %w", g.Table(), err)
	}
	return n, nil
}

func (g *Guard) checkTables(rows [][]byte) error {
	if len(rows) > len(g.stage) {
		return fmt.Errorf("%d tables of rows, %s has %d", len(rows), g.Table(), len(g.stage))
	}
	return nil
}

func (g *Guard) tableName(i int) string {
	if i == 0 {
		return g.ts.root.def.Name
	}
	return g.ts.desc[i-1].def.Name
}

// versionSuffix is the version as the three last COPY fields of a row.
func versionSuffix(v transform.Version) []byte {
	s := "\t" + strconv.FormatUint(uint64(v.ClusterTime.T), 10) + "\t" +
		strconv.FormatUint(uint64(v.ClusterTime.I), 10) + "\t" + strconv.FormatUint(v.Seq, 10) + "\n"
	return []byte(s)
}

// versioned reads COPY text rows with suffix (fields and the newline) in
// place of each row's newline, without copying the rows.
type versioned struct {
	rows   []byte // rows not read yet
	suffix []byte
	inRow  bool   // reading a row: end is known
	end    int    // bytes of the row before its newline
	tail   []byte // rest of the suffix still to read
}

func (r *versioned) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.tail) > 0 {
			c := copy(p[n:], r.tail)
			r.tail, n = r.tail[c:], n+c
			continue
		}
		if !r.inRow {
			if len(r.rows) == 0 {
				break
			}
			if r.end = bytes.IndexByte(r.rows, '\n'); r.end < 0 {
				r.end = len(r.rows)
			}
			r.inRow = true
		}
		if r.end > 0 {
			c := copy(p[n:], r.rows[:r.end])
			r.rows, r.end, n = r.rows[c:], r.end-c, n+c
			continue
		}
		r.rows = r.rows[min(1, len(r.rows)):] // the newline
		r.inRow, r.tail = false, r.suffix
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}
