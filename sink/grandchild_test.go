package sink

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/transform"
)

// Grandchild rows that reference their parent row's own id, as an
// application's schema has them: no root key, no parent ordinal.
const grandDDL = `
CREATE SCHEMA pol;
CREATE TABLE pol.packs (id uuid PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL, UNIQUE (tenant_id, name)%s);
CREATE TABLE pol.rules (id uuid PRIMARY KEY, pack_id uuid NOT NULL REFERENCES pol.packs (id),
    tenant_id text NOT NULL, rule text NOT NULL);
CREATE TABLE pol.conditions (id uuid PRIMARY KEY, rule_id uuid NOT NULL REFERENCES pol.rules (id),
    tenant_id text NOT NULL, expr text NOT NULL);`

const grandMapping = `
source: shop.items
table: pol.packs
tenant_id: {column: tenant_id}
key: [%s]
versions: %s
columns:
  id: %s
  tenant_id: {path: tenant, type: text}
  name: {path: name, type: text, required: true}
children:
  - path: rules
    table: pol.rules
    parent_key: pack_id
    references: id
    ordinal: none
    key: [id]
    columns:
      id: {type: uuid, uuid5: {from: [$parent, name]}}
      rule: {path: name, type: text}
    children:
      - path: conditions
        table: pol.conditions
        parent_key: rule_id
        references: id
        ordinal: none
        key: [id]
        columns:
          id: {type: uuid, uuid5: {from: [$parent, .]}}
          expr: {path: ., type: text}
`

func TestGrandchildByParentID(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	derived := "{type: uuid, uuid5: {from: [_id]}}"
	for _, mode := range []struct{ name, id, key, versions, cdc string }{
		{"columns", derived, "id", "columns", ", _cdc_ts bigint NOT NULL, _cdc_inc bigint NOT NULL, _cdc_seq bigint NOT NULL"},
		{"table", derived, "id", "table", ""},
		{"natural", derived, "tenant_id, name", "table", ""},
		// The id is a field of the document and changes: the rules and
		// conditions under the old id must go before the pack moves.
		{"moving id", "{path: rid, type: uuid, required: true}", "tenant_id, name", "table", ""},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			pool := testDB(t, testenv.PostgresURL(t))
			if _, err := pool.Exec(ctx, fmt.Sprintf(grandDDL, mode.cdc)); err != nil {
				t.Fatal(err)
			}
			var cfg transform.CollectionConfig
			if err := yaml.Unmarshal([]byte(fmt.Sprintf(grandMapping, mode.key, mode.versions, mode.id)), &cfg); err != nil {
				t.Fatal(err)
			}
			m, err := transform.Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if ddl := transform.DDL([]*transform.Mapping{m}); !strings.Contains(ddl, `FOREIGN KEY ("rule_id") REFERENCES "pol"."rules" ("id")`) || transform.CheckDDL(ddl) != nil {
				t.Fatalf("DDL without the grandchild's foreign key to its parent's id, or refused (%v):\n%s", transform.CheckDDL(ddl), ddl)
			}
			c := newTestCollection(t, pool, 2, func(col *Collection) { col.Tables = m.Tables() })
			seq := uint64(0)
			msg := func(ts uint32, op, id string, doc bson.D) message {
				t.Helper()
				seq++
				return changeOf(t, m, seq, ts, op, id, doc)
			}
			rids := 0
			pack := func(id, name string, rules ...bson.D) bson.D {
				a := bson.A{}
				for _, r := range rules {
					a = append(a, r)
				}
				rids++ // every version of a document has a new rid
				return bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: "t1"}, {Key: "name", Value: name},
					{Key: "rid", Value: fmt.Sprintf("00000000-0000-4000-8000-%012d", rids)}, {Key: "rules", Value: a}}
			}
			rule := func(name string, conds ...any) bson.D {
				return bson.D{{Key: "name", Value: name}, {Key: "conditions", Value: bson.A(conds)}}
			}
			state := func() string {
				t.Helper()
				var s string
				if err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(x, ' | ' ORDER BY x), '') FROM (
  SELECT p.name || ':' || coalesce(r.rule, '-') || ':' || coalesce(string_agg(c.expr, ',' ORDER BY c.expr), '') AS x
  FROM pol.packs p LEFT JOIN pol.rules r ON r.pack_id = p.id LEFT JOIN pol.conditions c ON c.rule_id = r.id
  GROUP BY p.name, r.rule) q`).Scan(&s); err != nil {
					t.Fatal(err)
				}
				var orphans int
				if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pol.rules r WHERE NOT EXISTS (SELECT 1 FROM pol.packs p WHERE p.id = r.pack_id))
 + (SELECT count(*) FROM pol.conditions c WHERE NOT EXISTS (SELECT 1 FROM pol.rules r WHERE r.id = c.rule_id))`).Scan(&orphans); err != nil || orphans != 0 {
					t.Fatalf("%d orphan rows (%v)", orphans, err)
				}
				return s
			}
			batch := []message{
				msg(10, "insert", "p1", pack("p1", "base", rule("a", "x", "y"), rule("b", "z"))),
				msg(10, "insert", "p2", pack("p2", "extra", rule("c"))),
				msg(11, "update", "p1", pack("p1", "base", rule("a", "y", "w"), rule("d", "q"))),
			}
			if err := c.apply(ctx, batch); err != nil {
				t.Fatal(err)
			}
			want := "base:a:w,y | base:d:q | extra:c:"
			if got := state(); got != want {
				t.Fatalf("state %q, want %q", got, want)
			}
			stamps := rowStamps(t, pool, "pol.packs", "pol.rules", "pol.conditions")
			rewind(t, pool, c)
			if err := c.apply(ctx, redecode(batch)); err != nil {
				t.Fatal(err)
			}
			if got := rowStamps(t, pool, "pol.packs", "pol.rules", "pol.conditions"); got != stamps {
				t.Fatalf("the replay wrote rows:\n%s\nwant\n%s", got, stamps)
			}
			// A later version of p1 on its own (with the moving id: a new
			// id) replaces its rules and conditions.
			seq = uint64(len(batch))
			if err := c.apply(ctx, []message{msg(11, "update", "p1", pack("p1", "base", rule("a", "y", "w"), rule("d", "q", "r")))}); err != nil {
				t.Fatal(err)
			}
			if got, want := state(), "base:a:w,y | base:d:q,r | extra:c:"; got != want {
				t.Fatalf("after the second update: %q, want %q", got, want)
			}
			if mode.key != "id" {
				// The natural key changes: the row moves with its rules
				// and conditions.
				if err := c.apply(ctx, []message{msg(11, "update", "p1", pack("p1", "base2", rule("a", "y"), rule("d", "q", "r")))}); err != nil {
					t.Fatal(err)
				}
				if got, want := state(), "base2:a:y | base2:d:q,r | extra:c:"; got != want {
					t.Fatalf("after the rename: %q, want %q", got, want)
				}
			}
			if err := c.apply(ctx, []message{msg(12, "delete", "p1", nil), msg(12, "update", "p2", pack("p2", "extra2", rule("c", "k")))}); err != nil {
				t.Fatal(err)
			}
			if got, want := state(), "extra2:c:k"; got != want {
				t.Fatalf("after the delete: %q, want %q", got, want)
			}

			// A resync at T0 = 20 that sees p3 only: p2 and its rows go.
			g, err := NewGuard(testNS, m.Tables())
			if err != nil {
				t.Fatal(err)
			}
			v := transform.Version{ClusterTime: transform.ClusterTime{T: 20, I: 1}}
			raw, err := bson.Marshal(pack("p3", "new", rule("e", "m", "n")))
			if err != nil {
				t.Fatal(err)
			}
			mu, err := m.SnapshotRow(raw, v.ClusterTime)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if err := g.Stage(ctx, tx, copyRows(t, m.Tables(), mu), v); err != nil {
				t.Fatal(err)
			}
			if err := g.Merge(ctx, tx); err != nil {
				t.Fatal(err)
			}
			if _, err := g.DeleteOlder(ctx, tx, v); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if got, want := state(), "new:e:m,n"; got != want {
				t.Fatalf("after the resync: %q, want %q", got, want)
			}
		})
	}
}
