package sink

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"
	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// rowStamps returns every target row's xmin with its table and a trigger
// tally, so a test can tell whether anything was written.
func rowStamps(t *testing.T, pool *pgxpool.Pool, tables ...string) string {
	t.Helper()
	var parts []string
	for _, tbl := range tables {
		rows, err := pool.Query(context.Background(), fmt.Sprintf("SELECT xmin::text, row_to_json(x)::text FROM %s x ORDER BY 2", tbl))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var xmin, row string
			if err := rows.Scan(&xmin, &row); err != nil {
				t.Fatal(err)
			}
			parts = append(parts, tbl+" "+xmin+" "+row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(parts, "\n")
}

// countWrites installs a row trigger on each table that counts every
// insert, update and delete in writes.fired.
func countWrites(t *testing.T, pool *pgxpool.Pool, tables ...string) func() int {
	t.Helper()
	ctx := context.Background()
	ddl := `CREATE TABLE IF NOT EXISTS public.writes (tbl text, op text);
CREATE OR REPLACE FUNCTION public.count_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.writes VALUES (TG_TABLE_NAME, TG_OP); IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$;`
	for i, tbl := range tables {
		ddl += fmt.Sprintf("CREATE TRIGGER count_%d BEFORE INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION public.count_write();", i, tbl)
	}
	if _, err := pool.Exec(ctx, ddl); err != nil {
		t.Fatal(err)
	}
	return func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM public.writes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// TestReapplyWritesNothing: events applied again, from a rewound
// checkpoint, through both staging paths, and a snapshot chunk loaded
// again at its version write no row at all: no trigger fires and every
// xmin stays.
func TestReapplyWritesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	url := testenv.PostgresURL(t)
	pool := testDB(t, url)
	tables := []string{"app.items", "app.item_tags", "app.item_tag_notes"}
	fired := countWrites(t, pool, tables...)
	ctx := context.Background()
	for _, threshold := range []int{0, 1} {
		t.Run(fmt.Sprintf("copy_threshold=%d", threshold), func(t *testing.T) {
			c := newTestCollection(t, pool, threshold, nil)
			if err := c.detectInsertTriggers(ctx); err != nil || c.ts.noInsertTriggers {
				t.Fatalf("noInsertTriggers = %t (%v) on a table with a BEFORE INSERT trigger", c.ts.noInsertTriggers, err)
			}
			reset(t, pool, c)
			batch := []message{
				change(1, 10, item{id: "a", qty: 1, tags: []string{"x", "y"}}.mutation()),
				change(2, 10, item{id: "b", qty: 2, tags: []string{"z"}}.mutation()),
				change(3, 11, item{id: "a", qty: 3, tags: []string{"w"}}.mutation()),
				change(4, 12, deletion("b")),
			}
			if err := c.apply(ctx, batch); err != nil {
				t.Fatal(err)
			}
			before, n := rowStamps(t, pool, tables...), fired()
			if !strings.Contains(before, `"tag":"w"`) || strings.Contains(before, `"id":"b"`) {
				t.Fatalf("first apply gave\n%s", before)
			}
			for round := 0; round < 2; round++ {
				rewind(t, pool, c)
				if err := c.apply(ctx, redecode(batch)); err != nil {
					t.Fatal(err)
				}
				if got := rowStamps(t, pool, tables...); got != before {
					t.Fatalf("applying again changed rows:\nbefore\n%s\nafter\n%s", before, got)
				}
				if got := fired(); got != n {
					t.Fatalf("applying again fired %d row triggers", got-n)
				}
			}
		})
	}
	t.Run("snapshot chunk", func(t *testing.T) {
		c := newTestCollection(t, pool, 0, nil)
		reset(t, pool, c)
		g, err := NewGuard(testNS, testTables())
		if err != nil {
			t.Fatal(err)
		}
		v := transform.Version{ClusterTime: transform.ClusterTime{T: 50, I: 1}}
		items := []item{{id: "a", qty: 1, tags: []string{"x"}}, {id: "c", qty: 4, tags: []string{"p", "q"}}}
		load(t, pool, g, v, false, items...)
		before, n := rowStamps(t, pool, tables...), fired()
		load(t, pool, g, v, true, items...)
		if got := rowStamps(t, pool, tables...); got != before {
			t.Fatalf("loading again changed rows:\nbefore\n%s\nafter\n%s", before, got)
		}
		if got := fired(); got != n {
			t.Fatalf("loading again fired %d row triggers", got-n)
		}
		// A newer version still replaces the children.
		load(t, pool, g, transform.Version{ClusterTime: transform.ClusterTime{T: 51, I: 1}}, true,
			item{id: "a", qty: 9, tags: []string{"n"}})
		if got := rowStamps(t, pool, "app.item_tags"); !strings.Contains(got, `"tag":"n"`) || strings.Contains(got, `"tag":"x"`) {
			t.Fatalf("a newer chunk did not replace the children:\n%s", got)
		}
	})
}

// The application's own shape: a surrogate uuid id (derived from _id), a
// natural key under a UNIQUE constraint that holds the tenant, a child
// table with its own uuid id referencing the parent's id, a BEFORE UPDATE
// trigger on updated_at, and (rls) row-level security forced on both
// tables with the policy of the tenant session variable.
const refDDL = `
CREATE SCHEMA vuln;
CREATE TABLE vuln.advisories (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id text NOT NULL,
    advisory_key text NOT NULL,
    severity smallint,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    %s
    UNIQUE (tenant_id, advisory_key)
);
CREATE TABLE vuln.advisory_aliases (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    advisory_id uuid NOT NULL REFERENCES vuln.advisories (id) ON DELETE CASCADE,
    tenant_id text NOT NULL,
    alias text NOT NULL
);
CREATE FUNCTION vuln.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at = clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER advisories_touch BEFORE UPDATE ON vuln.advisories FOR EACH ROW EXECUTE FUNCTION vuln.touch();`

const rlsDDL = `
ALTER TABLE vuln.advisories ENABLE ROW LEVEL SECURITY;
ALTER TABLE vuln.advisories FORCE ROW LEVEL SECURITY;
CREATE POLICY advisories_tenant_isolation ON vuln.advisories USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE vuln.advisory_aliases ENABLE ROW LEVEL SECURITY;
ALTER TABLE vuln.advisory_aliases FORCE ROW LEVEL SECURITY;
CREATE POLICY advisory_aliases_tenant_isolation ON vuln.advisory_aliases USING (tenant_id = current_setting('app.tenant_id'));
CREATE ROLE %[1]s LOGIN PASSWORD 'writer' NOSUPERUSER NOBYPASSRLS;
GRANT USAGE ON SCHEMA vuln, replicator TO %[1]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA vuln, replicator TO %[1]s;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA replicator TO %[1]s;`

const refMapping = `
source: shop.items
table: vuln.advisories
tenant_id: {column: tenant_id%s}
key: [%s]
versions: %s
columns:
  id: {type: uuid, uuid5: {from: [_id]}}
  tenant_id: {path: tenant, type: text}
  advisory_key: {path: key, type: text, required: true}
  severity: {path: severity, type: smallint, map: {low: 1, high: 3}}
children:
  - path: aliases
    table: vuln.advisory_aliases
    parent_key: advisory_id
    references: id
    ordinal: none
    key: [id]
    columns:
      id: {type: uuid, uuid5: {from: [$parent, .]}}
      alias: {path: ., type: text}
`

// TestApplicationSchema streams inserts, updates, a replay and deletes for
// two tenants into refDDL through the real transform and applier, then
// loads and sweeps as a resync does: with the version columns in the
// table, with the versions kept apart, and with the versions kept apart as
// a role that row-level security applies to.
func TestApplicationSchema(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	for _, mode := range []string{"columns", "table", "table+rls", "natural", "natural+rls"} {
		t.Run(mode, func(t *testing.T) { testApplicationSchema(t, mode) })
	}
}

func testApplicationSchema(t *testing.T, mode string) {
	url := testenv.PostgresURL(t)
	admin := testDB(t, url)
	ctx := context.Background()
	versionCols, setting, versions := "", "", "table"
	if mode == "columns" {
		versionCols, versions = "_cdc_ts bigint NOT NULL, _cdc_inc bigint NOT NULL, _cdc_seq bigint NOT NULL,", "columns"
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf(refDDL, versionCols)); err != nil {
		t.Fatal(err)
	}
	pool := admin
	key := "id"
	if strings.HasPrefix(mode, "natural") {
		// The key is the UNIQUE natural key, which a delete's documentKey
		// does not hold: rows are found through their identity.
		key = "tenant_id, advisory_key"
	}
	rls := strings.HasSuffix(mode, "+rls")
	if rls {
		setting = ", setting: app.tenant_id"
		var role string
		role, pool = writerPool(t, admin, url)
		// Row-level security applies to this role: without the tenant
		// variable it reads nothing at all.
		if _, err := pool.Exec(ctx, "SELECT count(*) FROM vuln.advisories"); err == nil || !strings.Contains(err.Error(), "app.tenant_id") {
			t.Fatalf("reading without app.tenant_id as %s: %v, want the policy's error", role, err)
		}
	}
	var cfg transform.CollectionConfig
	if err := yaml.Unmarshal([]byte(fmt.Sprintf(refMapping, setting, key, versions)), &cfg); err != nil {
		t.Fatal(err)
	}
	m, err := transform.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCollection(t, pool, 2, func(col *Collection) { col.Tables = m.Tables() })
	if err := c.detectInsertTriggers(ctx); err != nil || !c.ts.noInsertTriggers {
		t.Fatalf("noInsertTriggers = %t (%v): the only trigger is BEFORE UPDATE", c.ts.noInsertTriggers, err)
	}
	seq := uint64(0)
	msg := func(ts uint32, op string, id string, doc bson.D) message {
		t.Helper()
		seq++
		return changeOf(t, m, seq, ts, op, id, doc)
	}
	doc := func(id, tenant, key, sev string, aliases ...any) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "key", Value: key},
			{Key: "severity", Value: sev}, {Key: "aliases", Value: bson.A(aliases)}}
	}
	// state reads both tables as the administrator, past row-level
	// security.
	state := func() string {
		t.Helper()
		var out []string
		rows, err := admin.Query(ctx, `SELECT a.id::text, a.tenant_id, a.advisory_key, a.severity::text,
  coalesce(string_agg(x.id::text || '=' || x.alias || '@' || x.tenant_id, ',' ORDER BY x.alias), '')
FROM vuln.advisories a LEFT JOIN vuln.advisory_aliases x ON x.advisory_id = a.id GROUP BY 1, 2, 3, 4 ORDER BY 3`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, tenant, key, sev, aliases string
			if err := rows.Scan(&id, &tenant, &key, &sev, &aliases); err != nil {
				t.Fatal(err)
			}
			out = append(out, key+" "+tenant+" "+id+" "+sev+" ["+aliases+"]")
		}
		return strings.Join(out, "\n")
	}
	uid := func(parts ...string) string {
		_, id, err := transform.UUID5Name(transform.DefaultUUID5Namespace, parts[0], parts[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a1, a2, a3 := uid("vuln.advisories", "a1"), uid("vuln.advisories", "a2"), uid("vuln.advisories", "a3")
	alias := func(parent, name, tenant string) string {
		return uid("vuln.advisory_aliases", parent, name) + "=" + name + "@" + tenant
	}
	batch := []message{
		msg(10, "insert", "a1", doc("a1", "t1", "CVE-1", "low", "GHSA-1", "OSV-1")),
		msg(10, "insert", "a2", doc("a2", "t2", "CVE-2", "high")),
		msg(10, "insert", "a3", doc("a3", "t2", "CVE-3", "low", "Z")),
		msg(11, "update", "a1", doc("a1", "t1", "CVE-1", "high", "GHSA-1")),
	}
	if err := c.apply(ctx, batch); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("CVE-1 t1 %s 3 [%s]\nCVE-2 t2 %s 3 []\nCVE-3 t2 %s 1 [%s]",
		a1, alias(a1, "GHSA-1", "t1"), a2, a3, alias(a3, "Z", "t2"))
	if got := state(); got != want {
		t.Fatalf("after the first batch:\n%s\nwant\n%s", got, want)
	}
	// A replay writes nothing: no trigger, no xmin, no updated_at moves.
	stamps := rowStamps(t, admin, "vuln.advisories", "vuln.advisory_aliases")
	rewind(t, admin, c)
	if err := c.apply(ctx, redecode(batch)); err != nil {
		t.Fatal(err)
	}
	if got := rowStamps(t, admin, "vuln.advisories", "vuln.advisory_aliases"); got != stamps {
		t.Fatalf("the replay wrote rows:\n%s\nwant\n%s", got, stamps)
	}
	seq = uint64(len(batch))
	if err := c.apply(ctx, []message{msg(12, "delete", "a1", nil), msg(12, "update", "a2", doc("a2", "t2", "CVE-2", "low", "X")),
		msg(12, "delete", "never", nil)}); err != nil {
		t.Fatal(err)
	}
	want = fmt.Sprintf("CVE-2 t2 %s 1 [%s]\nCVE-3 t2 %s 1 [%s]", a2, alias(a2, "X", "t2"), a3, alias(a3, "Z", "t2"))
	if got := state(); got != want {
		t.Fatalf("after the deletes:\n%s\nwant\n%s", got, want)
	}
	if rls {
		// A document that moves to another tenant fails under the policy:
		// a dead letter, and the rest of the batch applies.
		seq = uint64(len(batch)) + 3
		if err := c.apply(ctx, []message{msg(13, "update", "a3", doc("a3", "t1", "CVE-3", "low", "Z")),
			msg(13, "update", "a2", doc("a2", "t2", "CVE-2", "low", "X"))}); err != nil {
			t.Fatal(err)
		}
		// (With the natural key, which holds the tenant, the move is a new
		// key whose row collides with the old one's id under the old
		// tenant's policy: 23505.)
		code := map[bool]string{false: "42501", true: "23505"}[key != "id"]
		var dl string
		if err := admin.QueryRow(ctx, `SELECT string_agg(sqlstate || ' ' || document_key, ',') FROM replicator.dead_letters`).Scan(&dl); err != nil || !strings.Contains(dl, code) || !strings.Contains(dl, "a3") {
			t.Fatalf("dead letters %q (%v), want the tenant move of a3 (%s)", dl, err, code)
		}
		if got := state(); got != want {
			t.Fatalf("after the tenant move:\n%s\nwant\n%s", got, want)
		}
		if _, err := admin.Exec(ctx, "TRUNCATE replicator.dead_letters"); err != nil {
			t.Fatal(err)
		}
	}
	if key != "id" {
		// A document whose natural key changes leaves its old row (and its
		// children); a document taking another's natural key is a dead
		// letter; a replay of both writes nothing.
		seq = 20
		rename := []message{msg(14, "update", "a2", doc("a2", "t2", "CVE-2b", "low", "X", "W")),
			msg(14, "update", "a3", doc("a3", "t2", "CVE-2b", "low"))}
		if err := c.apply(ctx, rename); err != nil {
			t.Fatal(err)
		}
		renamed := fmt.Sprintf("CVE-2b t2 %s 1 [%s,%s]\nCVE-3 t2 %s 1 [%s]", a2, alias(a2, "W", "t2"), alias(a2, "X", "t2"), a3, alias(a3, "Z", "t2"))
		if got := state(); got != renamed {
			t.Fatalf("after the rename:\n%s\nwant\n%s", got, renamed)
		}
		var dl string
		if err := admin.QueryRow(ctx, `SELECT string_agg(sqlstate || ' ' || document_key, ',') FROM replicator.dead_letters`).Scan(&dl); err != nil || !strings.Contains(dl, "23505") || !strings.Contains(dl, "a3") {
			t.Fatalf("dead letters %q (%v), want a3's collision on the natural key (23505)", dl, err)
		}
		stamps := rowStamps(t, admin, "vuln.advisories", "vuln.advisory_aliases")
		rewind(t, admin, c)
		seq = 20
		if err := c.apply(ctx, redecode(rename)); err != nil {
			t.Fatal(err)
		}
		if got := rowStamps(t, admin, "vuln.advisories", "vuln.advisory_aliases"); got != stamps {
			t.Fatalf("the replay of the rename wrote rows:\n%s\nwant\n%s", got, stamps)
		}
		// Back to the key the rest of the test expects.
		seq = 30
		if err := c.apply(ctx, []message{msg(15, "update", "a2", doc("a2", "t2", "CVE-2", "low", "X"))}); err != nil {
			t.Fatal(err)
		}
		if got := state(); got != want {
			t.Fatalf("after renaming back:\n%s\nwant\n%s", got, want)
		}
		if _, err := admin.Exec(ctx, "TRUNCATE replicator.dead_letters"); err != nil {
			t.Fatal(err)
		}
	}
	var tombs int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM replicator.tombstones`).Scan(&tombs); err != nil || tombs != 2 {
		t.Fatalf("%d tombstones (%v), want 2 (a1 and the never-written key)", tombs, err)
	}
	if versions == "table" {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM replicator.row_versions WHERE table_name = 'vuln.advisories'`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("%d version rows (%v), want 2", n, err)
		}
	}

	// A resync at T0 = 20: load a2 (changed) and a new a4 through the
	// guard, then sweep what T0 did not see (a3).
	g, err := NewGuard(testNS, m.Tables())
	if err != nil {
		t.Fatal(err)
	}
	v := transform.Version{ClusterTime: transform.ClusterTime{T: 20, I: 1}}
	snap := func(id string, d bson.D) transform.Mutation {
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		mu, err := m.SnapshotRow(raw, v.ClusterTime)
		if err != nil {
			t.Fatal(err)
		}
		return mu
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	rows := copyRows(t, m.Tables(), snap("a2", doc("a2", "t2", "CVE-2", "high", "Y")), snap("a4", doc("a4", "t1", "CVE-4", "low", "Q")))
	if direct, err := g.Fresh(ctx, tx, nil); err != nil || (direct && versions == "table") {
		t.Fatalf("Fresh = %t, %v: external versions always merge", direct, err)
	}
	if err := g.Stage(ctx, tx, rows, v); err != nil {
		t.Fatal(err)
	}
	if err := g.Merge(ctx, tx); err != nil {
		t.Fatal(err)
	}
	n, err := g.DeleteOlder(ctx, tx, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	a4 := uid("vuln.advisories", "a4")
	want = fmt.Sprintf("CVE-2 t2 %s 3 [%s]\nCVE-4 t1 %s 1 [%s]", a2, alias(a2, "Y", "t2"), a4, alias(a4, "Q", "t1"))
	if got := state(); got != want || n != 1 {
		t.Fatalf("after the resync (%d swept):\n%s\nwant (1 swept)\n%s", n, got, want)
	}
	if mode == "natural" {
		// In one batch a2 is deleted and a4 takes the natural key a2 held:
		// a4 ends under that key, in one transaction, and a2's delete does
		// not take a4's row with it.
		seq = 40
		batchesBefore := committedBatches(t, c)
		if err := c.apply(ctx, []message{msg(30, "delete", "a2", nil), msg(30, "update", "a4", doc("a4", "t2", "CVE-2", "low", "V"))}); err != nil {
			t.Fatal(err)
		}
		want = fmt.Sprintf("CVE-2 t2 %s 1 [%s]", a4, alias(a4, "V", "t2"))
		if got := state(); got != want {
			t.Fatalf("after a2's delete and a4 taking its key:\n%s\nwant\n%s", got, want)
		}
		if n := committedBatches(t, c); n != batchesBefore+1 {
			t.Errorf("%d transactions committed the batch, want 1", n-batchesBefore)
		}
	}
}

// committedBatches is how many transactions c has committed
// (replicator_apply_batch_size observations).
func committedBatches(t *testing.T, c *collection) uint64 {
	t.Helper()
	reg := prometheusRegistry()
	reg.MustRegister(c.m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "replicator_apply_batch_size" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// copyRows renders mutations as the guard's COPY text, table by table.
func copyRows(t *testing.T, defs []transform.TableDef, muts ...transform.Mutation) [][]byte {
	t.Helper()
	out := make([][]byte, len(defs))
	line := func(i int, vals []transform.Value) {
		var b bytes.Buffer
		for j, v := range vals {
			if j > 0 {
				b.WriteByte('\t')
			}
			WriteCopyText(&b, v)
		}
		b.WriteByte('\n')
		out[i] = append(out[i], b.Bytes()...)
	}
	for _, mu := range muts {
		vals := mu.Values
		if mu.Identity != "" {
			// The guard stages a root keyed by identity with it last.
			vals = append(vals[:len(vals):len(vals)], transform.Text(mu.Identity))
		}
		line(0, vals)
		for _, cr := range mu.Children {
			i := slices.IndexFunc(defs, func(d transform.TableDef) bool { return d.Name == cr.Table })
			for _, r := range cr.Rows {
				line(i, r)
			}
		}
	}
	return out
}

// TestExternalVersionsRootOnly: a collection without child tables keeps
// its versions apart too: the guard holds, a replay writes nothing, a
// delete removes the version row and leaves a tombstone.
func TestExternalVersionsRootOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool := testDB(t, testenv.PostgresURL(t))
	if _, err := pool.Exec(ctx, `CREATE SCHEMA bench; CREATE TABLE bench.items (
    id text PRIMARY KEY, tenant uuid NOT NULL, n integer, created timestamptz, payload text)`); err != nil {
		t.Fatal(err)
	}
	tables := benchTables()
	tables[0].ExternalVersions = true
	for _, threshold := range []int{0, 1} {
		c := newTestCollection(t, pool, threshold, func(col *Collection) { col.Tables = tables })
		// No trigger here: the upsert goes without its pre-filter, and a
		// replay still writes nothing.
		if err := c.detectInsertTriggers(ctx); err != nil || !c.ts.noInsertTriggers {
			t.Fatalf("noInsertTriggers = %t (%v) on a table without triggers", c.ts.noInsertTriggers, err)
		}
		if _, err := pool.Exec(ctx, `TRUNCATE bench.items, replicator.row_versions, replicator.tombstones; UPDATE replicator.apply_checkpoints SET stream_seq = 0`); err != nil {
			t.Fatal(err)
		}
		rewind(t, pool, c)
		row := func(id string, n int) transform.Mutation {
			return transform.Mutation{Table: "bench.items", Op: transform.OpUpsert, Key: []transform.Value{transform.Text(id)},
				Values: []transform.Value{transform.Text(id), transform.Text(tenant), transform.Text(strconv.Itoa(n)), transform.Null, transform.Null}}
		}
		del := transform.Mutation{Table: "bench.items", Op: transform.OpDelete, Key: []transform.Value{transform.Text("b")}}
		batch := []message{change(1, 10, row("a", 1)), change(2, 10, row("b", 1)), change(3, 12, row("a", 3)),
			change(4, 11, row("a", 2)), change(5, 13, del), change(6, 12, row("b", 9))}
		if err := c.apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
		state := func() string {
			var s string
			if err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(id || '=' || n, ','), '') || ' | ' ||
  (SELECT string_agg(key[1] || '@' || cluster_ts || '.' || cluster_inc || '.' || seq, ',' ORDER BY key) FROM replicator.row_versions) || ' | ' ||
  (SELECT string_agg(key[1] || '@' || cluster_ts, ',') FROM replicator.tombstones) FROM bench.items`).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		if got, want := state(), "a=3 | a@12.1.3 | b@13"; got != want {
			t.Fatalf("threshold %d: state %q, want %q", threshold, got, want)
		}
		stamps := rowStamps(t, pool, "bench.items", "replicator.row_versions")
		rewind(t, pool, c)
		if err := c.apply(ctx, redecode(batch)); err != nil {
			t.Fatal(err)
		}
		if got := rowStamps(t, pool, "bench.items", "replicator.row_versions"); got != stamps {
			t.Fatalf("threshold %d: the replay wrote:\n%s\nwant\n%s", threshold, got, stamps)
		}
	}
}

// changeOf is the buffer message at seq of change event op (doc nil for a
// delete) of document id in shop.items at cluster time ts, transformed by m.
func changeOf(t *testing.T, m *transform.Mapping, seq uint64, ts uint32, op string, id any, doc bson.D) message {
	t.Helper()
	ev := bson.D{{Key: "_id", Value: bson.D{{Key: "_data", Value: "00"}}}, {Key: "operationType", Value: op},
		{Key: "clusterTime", Value: bson.Timestamp{T: ts, I: 1}},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "items"}}},
		{Key: "documentKey", Value: bson.D{{Key: "_id", Value: id}}}}
	if doc != nil {
		ev = append(ev, bson.E{Key: "fullDocument", Value: doc})
	}
	raw, err := bson.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	pe, err := transform.ParseEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Transform(pe)
	if err != nil {
		t.Fatal(err)
	}
	return encodeMsg(seq, &envelope.Envelope{Kind: envelope.KindChange, Collection: testNS,
		ClusterTime: transform.ClusterTime{T: ts, I: 1}, Ordinal: uint32(seq), Operation: op,
		DocumentKey: fmt.Sprintf(`{"_id": %q}`, fmt.Sprint(id)), Mutations: r.Mutations})
}

// writerPool creates a login role without BYPASSRLS for refDDL (rlsDDL:
// FORCE row-level security and the writer's grants) and returns its name
// and a pool connected as it.
func writerPool(t *testing.T, admin *pgxpool.Pool, url string) (string, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	var db string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	role := "writer_" + db
	if _, err := admin.Exec(ctx, fmt.Sprintf(rlsDDL, role)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %[1]s; DROP ROLE %[1]s", role))
	})
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ConnConfig.User, pcfg.ConnConfig.Password = role, "writer"
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return role, pool
}
