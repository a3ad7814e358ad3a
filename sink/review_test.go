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
	"github.com/mongopg/replicator/transform"
)

// reviewMapping compiles a collection mapping of source shop.items.
func reviewMapping(t *testing.T, y string) *transform.Mapping {
	t.Helper()
	var cfg transform.CollectionConfig
	if err := yaml.Unmarshal([]byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	m, err := transform.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// reviewEvents builds buffer messages through the real transform: each
// call gives the next sequence, at cluster time (ts, 1) with the sequence
// as its ordinal. doc nil makes a delete.
type reviewEvents struct {
	t   *testing.T
	m   *transform.Mapping
	seq uint64
}

func (e *reviewEvents) msg(ts uint32, id any, doc bson.D) message {
	t := e.t
	t.Helper()
	e.seq++
	op := "delete"
	if doc != nil {
		op = "update"
	}
	var full bson.D
	if doc != nil {
		full = append(bson.D{{Key: "_id", Value: id}}, doc...)
	}
	return changeOf(t, e.m, e.seq, ts, op, id, full)
}

// queryText runs q and joins its rows (their columns joined by a space)
// with commas.
func queryText(t *testing.T, pool *pgxpool.Pool, q string) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, ",")
}

func deadLetterText(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	return queryText(t, pool, `SELECT sqlstate, error FROM replicator.dead_letters ORDER BY id`)
}

const refChangeMapping = `
source: shop.items
table: rv.docs
key: [k]
versions: %s
columns:
  k: {path: _id, type: text}
  id: {path: ref, type: text, required: true}
children:
  - path: tags
    table: rv.doc_tags
    parent_key: doc_id
    references: id
    columns:
      tag: {path: name, type: text}
    children:
      - path: notes
        table: rv.doc_tag_notes
        columns:
          note: {path: ., type: text}
`

// TestReferencedColumnChanges: a child table (with a grandchild)
// references a root column other than the key; when a document's
// referenced value changes, streamed or loaded by a snapshot, its
// descendants follow it and those under the old value go.
func TestReferencedColumnChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	for _, versions := range []string{"columns", "table"} {
		for _, fk := range []bool{true, false} {
			for _, threshold := range []int{0, 1} {
				t.Run(fmt.Sprintf("%s/fk=%t/copy=%d", versions, fk, threshold), func(t *testing.T) {
					testReferencedColumnChanges(t, versions, fk, threshold)
				})
			}
		}
	}
}

func testReferencedColumnChanges(t *testing.T, versions string, fk bool, threshold int) {
	ctx := context.Background()
	pool := testDB(t, testenv.PostgresURL(t))
	m := reviewMapping(t, fmt.Sprintf(refChangeMapping, versions))
	ddl := transform.DDL([]*transform.Mapping{m})
	if !fk {
		// The application's schema without foreign keys (or
		// target.disable_triggers, which skips their checks).
		var out []string
		for _, l := range strings.Split(ddl, "\n") {
			if strings.Contains(l, "FOREIGN KEY") {
				out[len(out)-1] = strings.TrimSuffix(out[len(out)-1], ",")
				continue
			}
			out = append(out, l)
		}
		ddl = strings.Join(out, "\n")
	}
	if _, err := pool.Exec(ctx, ddl); err != nil {
		t.Fatalf("%v\n%s", err, ddl)
	}
	c := newTestCollection(t, pool, threshold, func(col *Collection) { col.Tables = m.Tables() })
	ev := &reviewEvents{t: t, m: m}
	state := func() string {
		return queryText(t, pool, `SELECT 'root', k, id FROM rv.docs UNION ALL SELECT 'tag', doc_id, tag FROM rv.doc_tags
UNION ALL SELECT 'note', doc_id, note FROM rv.doc_tag_notes ORDER BY 1, 2, 3`) + " | " + deadLetterText(t, pool)
	}
	doc := func(ref, tag, note string) bson.D {
		return bson.D{{Key: "ref", Value: ref}, {Key: "tags", Value: bson.A{bson.D{{Key: "name", Value: tag}, {Key: "notes", Value: bson.A{note}}}}}}
	}
	if err := c.apply(ctx, []message{ev.msg(10, "d1", doc("r1", "a", "n1")), ev.msg(10, "d2", doc("q1", "x", "m1"))}); err != nil {
		t.Fatal(err)
	}
	if err := c.apply(ctx, []message{ev.msg(11, "d1", doc("r2", "b", "n2")), ev.msg(11, "d2", doc("q1", "y", "m2"))}); err != nil {
		t.Fatal(err)
	}
	if got, want := state(), "note q1 m2,note r2 n2,root d1 r2,root d2 q1,tag q1 y,tag r2 b | "; got != want {
		t.Fatalf("after the reference changed:\n%s\nwant\n%s", got, want)
	}
	// Applied again: nothing changes.
	rewind(t, pool, c)
	ev.seq = 0
	if err := c.apply(ctx, []message{ev.msg(10, "d1", doc("r1", "a", "n1")), ev.msg(10, "d2", doc("q1", "x", "m1")),
		ev.msg(11, "d1", doc("r2", "b", "n2")), ev.msg(11, "d2", doc("q1", "y", "m2"))}); err != nil {
		t.Fatal(err)
	}
	if got, want := state(), "note q1 m2,note r2 n2,root d1 r2,root d2 q1,tag q1 y,tag r2 b | "; got != want {
		t.Fatalf("after a replay:\n%s\nwant\n%s", got, want)
	}
	// A snapshot chunk at a newer version moves d1 again; an older one
	// (d2) changes nothing.
	g, err := NewGuard(testNS, m.Tables())
	if err != nil {
		t.Fatal(err)
	}
	snap := func(ct uint32, id string, d bson.D) [][]byte {
		raw, err := bson.Marshal(append(bson.D{{Key: "_id", Value: id}}, d...))
		if err != nil {
			t.Fatal(err)
		}
		mu, err := m.SnapshotRow(raw, transform.ClusterTime{T: ct, I: 1})
		if err != nil {
			t.Fatal(err)
		}
		return copyRows(t, m.Tables(), mu)
	}
	for _, load := range []struct {
		ct  uint32
		id  string
		doc bson.D
	}{{20, "d1", doc("r3", "c", "n3")}, {5, "d2", doc("q0", "z", "m0")}} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Stage(ctx, tx, snap(load.ct, load.id, load.doc), transform.Version{ClusterTime: transform.ClusterTime{T: load.ct, I: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := g.Merge(ctx, tx); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := state(), "note q1 m2,note r3 n3,root d1 r3,root d2 q1,tag q1 y,tag r3 c | "; got != want {
		t.Fatalf("after the snapshot chunks:\n%s\nwant\n%s", got, want)
	}
	ev.seq = 4
	if err := c.apply(ctx, []message{ev.msg(21, "d1", nil)}); err != nil {
		t.Fatal(err)
	}
	if got, want := state(), "note q1 m2,root d2 q1,tag q1 y | "; got != want {
		t.Fatalf("after the delete:\n%s\nwant\n%s", got, want)
	}
}

// TestSweepKeepsNewerRowsOfEveryKeyType: with versions: table a resync's
// sweep (Guard.DeleteOlder) deletes only the rows without a version as new
// as T0, for key types whose PostgreSQL text differs from transform's
// (double precision in exponent form, numeric with a scale).
func TestSweepKeepsNewerRowsOfEveryKeyType(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool := testDB(t, testenv.PostgresURL(t))
	composite := "key: [k, k2]\ncolumns:\n  k: {path: _id.a, type: double precision}\n  k2: {path: _id.b, type: text}"
	for i, key := range []struct {
		typ string
		id  any
	}{{"double precision", 1e6}, {"double precision", int64(1 << 53)}, {"numeric(10,2)", 1.5}, {"numeric(10,2)", int32(7)},
		{"text", "a"}, {"timestamptz", bson.DateTime(1700000000123)}, {composite, bson.D{{Key: "a", Value: 1e7}, {Key: "b", Value: "x"}}}} {
		cols := fmt.Sprintf("columns:\n  k: {path: _id, type: %q}", key.typ)
		name := key.typ
		if key.typ == composite {
			cols, name = composite, "composite"
		}
		t.Run(fmt.Sprintf("%s/%v", name, key.id), func(t *testing.T) {
			m := reviewMapping(t, fmt.Sprintf(`
source: shop.items
table: kt.docs%d
versions: table
%s
  n: {path: n, type: integer}
`, i, cols))
			if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS kt; "+transform.DDL([]*transform.Mapping{m})); err != nil {
				t.Fatal(err)
			}
			c := newTestCollection(t, pool, 0, func(col *Collection) { col.Tables = m.Tables() })
			rewind(t, pool, c)
			ev := &reviewEvents{t: t, m: m}
			if err := c.apply(ctx, []message{ev.msg(30, key.id, bson.D{{Key: "n", Value: 1}})}); err != nil {
				t.Fatal(err)
			}
			g, err := NewGuard(testNS, m.Tables())
			if err != nil {
				t.Fatal(err)
			}
			sweep := func(ct uint32) int64 {
				tx, err := pool.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(ctx)
				n, err := g.DeleteOlder(ctx, tx, transform.Version{ClusterTime: transform.ClusterTime{T: ct, I: 1}})
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				return n
			}
			keyText := queryText(t, pool, "SELECT key::text FROM replicator.row_versions WHERE table_name = "+quoteLiteral(m.Tables()[0].Name))
			if n := sweep(20); n != 0 || queryText(t, pool, fmt.Sprintf("SELECT n FROM kt.docs%d", i)) != "1" {
				t.Fatalf("the sweep at T0 = 20 deleted %d rows, want none: the row was written at 30", n)
			}
			// A later sweep deletes it as a delete event would.
			if n := sweep(40); n != 1 {
				t.Fatalf("the sweep at T0 = 40 deleted %d rows, want 1", n)
			}
			name := quoteLiteral(m.Tables()[0].Name)
			got := queryText(t, pool, fmt.Sprintf("SELECT count(*) FROM kt.docs%d", i)) + " " +
				queryText(t, pool, "SELECT count(*) FROM replicator.row_versions WHERE table_name = "+name) + " " +
				queryText(t, pool, "SELECT key::text FROM replicator.tombstones WHERE table_name = "+name)
			if want := "0 0 " + keyText; got != want {
				t.Fatalf("after the sweep at 40: rows, version rows, tombstone %q, want %q", got, want)
			}
		})
	}
}

// rlsTarget creates refDDL with row-level security (rlsDDL) and returns
// the administrator's pool, a pool of the writer role the policies apply
// to, and the mapping of refMapping with the tenant setting.
func rlsTarget(t *testing.T) (admin, writer *pgxpool.Pool, m *transform.Mapping) {
	t.Helper()
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	admin = testDB(t, url)
	if _, err := admin.Exec(ctx, fmt.Sprintf(refDDL, "")); err != nil {
		t.Fatal(err)
	}
	_, writer = writerPool(t, admin, url)
	return admin, writer, reviewMapping(t, rlsMapping)
}

// rlsMapping maps onto refDDL with the tenant setting its policies read.
var rlsMapping = fmt.Sprintf(refMapping, ", setting: app.tenant_id", "id", "table")

func advisory(tenant, key string, aliases ...any) bson.D {
	return bson.D{{Key: "tenant", Value: tenant}, {Key: "key", Value: key}, {Key: "severity", Value: "low"}, {Key: "aliases", Value: bson.A(aliases)}}
}

// TestTenantDeletesOnNewConnection: under a tenant setting, a batch of
// only deletes of two tenants' documents, on a connection that has not
// applied an upsert yet, applies.
func TestTenantDeletesOnNewConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	admin, pool, m := rlsTarget(t)
	c := newTestCollection(t, pool, 0, func(col *Collection) { col.Tables = m.Tables() })
	ev := &reviewEvents{t: t, m: m}
	if err := c.apply(ctx, []message{ev.msg(10, "a1", advisory("t1", "CVE-1", "X")), ev.msg(10, "a2", advisory("t2", "CVE-2", "Y"))}); err != nil {
		t.Fatal(err)
	}
	pool.Reset() // new connections, as after a restart or a broken connection
	if err := c.apply(ctx, []message{ev.msg(11, "a1", nil), ev.msg(11, "a2", nil)}); err != nil {
		t.Fatal(err)
	}
	if got := queryText(t, admin, "SELECT count(*) FROM vuln.advisories") + " " + queryText(t, admin, "SELECT count(*) FROM vuln.advisory_aliases"); got != "0 0" {
		t.Fatalf("advisories and aliases left: %s, want 0 0", got)
	}
}

// TestGuardTenantMoveIsTheDocumentsFault: under a tenant setting, a
// snapshot or resync row whose document moved to another tenant fails its
// tenant's policy; like the applier (apply.go), the guard reports it as
// that document's fault (EventError), so the snapshot dead-letters it
// instead of failing the whole run.
func TestGuardTenantMoveIsTheDocumentsFault(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	_, pool, m := rlsTarget(t)
	c := newTestCollection(t, pool, 0, func(col *Collection) { col.Tables = m.Tables() })
	ev := &reviewEvents{t: t, m: m}
	if err := c.apply(ctx, []message{ev.msg(10, "a1", advisory("t1", "CVE-1", "X"))}); err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(testNS, m.Tables())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := bson.Marshal(append(bson.D{{Key: "_id", Value: "a1"}}, advisory("t2", "CVE-1", "Y")...))
	if err != nil {
		t.Fatal(err)
	}
	mu, err := m.SnapshotRow(raw, transform.ClusterTime{T: 20, I: 1})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := g.Stage(ctx, tx, copyRows(t, m.Tables(), mu), transform.Version{ClusterTime: transform.ClusterTime{T: 20, I: 1}}); err != nil {
		t.Fatal(err)
	}
	err = g.Merge(ctx, tx)
	if err == nil || !rlsViolation(err) || !EventError(err) {
		t.Fatalf("Merge = %v (EventError %t), want the policy's violation, the document's fault", err, EventError(err))
	}
}
