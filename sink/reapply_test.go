package sink

import (
	"context"
	"fmt"
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
// natural key under a UNIQUE constraint that holds the tenant, and a child
// table with its own uuid id referencing the parent's id.
const refDDL = `
CREATE SCHEMA vuln;
CREATE TABLE vuln.advisories (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id text NOT NULL,
    advisory_key text NOT NULL,
    severity smallint,
    _cdc_ts bigint NOT NULL, _cdc_inc bigint NOT NULL, _cdc_seq bigint NOT NULL,
    UNIQUE (tenant_id, advisory_key)
);
CREATE TABLE vuln.advisory_aliases (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    advisory_id uuid NOT NULL REFERENCES vuln.advisories (id) ON DELETE CASCADE,
    tenant_id text NOT NULL,
    alias text NOT NULL
);`

const refMapping = `
source: shop.items
table: vuln.advisories
tenant_id: {column: tenant_id}
key: [id]
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

// TestApplicationSchemaChildren streams inserts, updates, a replay and a
// delete into refDDL through the real transform and applier.
func TestApplicationSchemaChildren(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	url := testenv.PostgresURL(t)
	pool := testDB(t, url)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, refDDL); err != nil {
		t.Fatal(err)
	}
	var cfg transform.CollectionConfig
	if err := yaml.Unmarshal([]byte(refMapping), &cfg); err != nil {
		t.Fatal(err)
	}
	m, err := transform.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCollection(t, pool, 0, func(col *Collection) { col.Tables = m.Tables() })
	seq := uint64(0)
	msg := func(ts uint32, op string, id string, doc bson.D) message {
		t.Helper()
		seq++
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
			DocumentKey: fmt.Sprintf(`{"_id": %q}`, id), Mutations: r.Mutations})
	}
	doc := func(id, key, sev string, aliases ...any) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: "default"}, {Key: "key", Value: key},
			{Key: "severity", Value: sev}, {Key: "aliases", Value: bson.A(aliases)}}
	}
	state := func() string {
		t.Helper()
		var out []string
		rows, err := pool.Query(ctx, `SELECT a.id::text, a.advisory_key, a.severity::text, coalesce(string_agg(x.id::text || '=' || x.alias, ',' ORDER BY x.alias), '')
FROM vuln.advisories a LEFT JOIN vuln.advisory_aliases x ON x.advisory_id = a.id GROUP BY 1, 2, 3 ORDER BY 2`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, key, sev, aliases string
			if err := rows.Scan(&id, &key, &sev, &aliases); err != nil {
				t.Fatal(err)
			}
			out = append(out, key+" "+id+" "+sev+" ["+aliases+"]")
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
	a1, a2 := uid("vuln.advisories", "a1"), uid("vuln.advisories", "a2")
	batch := []message{
		msg(10, "insert", "a1", doc("a1", "CVE-1", "low", "GHSA-1", "OSV-1")),
		msg(10, "insert", "a2", doc("a2", "CVE-2", "high")),
		msg(11, "update", "a1", doc("a1", "CVE-1", "high", "GHSA-1")),
	}
	if err := c.apply(ctx, batch); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("CVE-1 %s 3 [%s=GHSA-1]\nCVE-2 %s 3 []", a1, uid("vuln.advisory_aliases", a1, "GHSA-1"), a2)
	if got := state(); got != want {
		t.Fatalf("after the first batch:\n%s\nwant\n%s", got, want)
	}
	stamps := rowStamps(t, pool, "vuln.advisories", "vuln.advisory_aliases")
	rewind(t, pool, c)
	if err := c.apply(ctx, redecode(batch)); err != nil {
		t.Fatal(err)
	}
	if got := rowStamps(t, pool, "vuln.advisories", "vuln.advisory_aliases"); got != stamps {
		t.Fatalf("the replay wrote rows:\n%s\nwant\n%s", got, stamps)
	}
	seq = 3
	if err := c.apply(ctx, []message{msg(12, "delete", "a1", nil), msg(12, "update", "a2", doc("a2", "CVE-2", "low", "X"))}); err != nil {
		t.Fatal(err)
	}
	want = fmt.Sprintf("CVE-2 %s 1 [%s=X]", a2, uid("vuln.advisory_aliases", a2, "X"))
	if got := state(); got != want {
		t.Fatalf("after the delete:\n%s\nwant\n%s", got, want)
	}
	var orphans int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM vuln.advisory_aliases WHERE advisory_id = $1`, a1).Scan(&orphans); err != nil || orphans != 0 {
		t.Fatalf("aliases of the deleted advisory: %d (%v)", orphans, err)
	}
}
