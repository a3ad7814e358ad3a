package transform

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/testenv"
)

// insertMutation writes an upsert's rows with plain INSERTs, passing every
// value as text the way the sink does, so PostgreSQL parses each one with
// the column's own input function.
func insertMutation(ctx context.Context, t *testing.T, pool *pgxpool.Pool, m *Mapping, mut Mutation) {
	t.Helper()
	defs := map[string]TableDef{}
	for _, d := range m.Tables() {
		defs[d.Name] = d
	}
	insert := func(table string, row []Value, extra ...string) {
		d := defs[table]
		var cols, params []string
		var args []any
		for i, c := range d.Columns {
			cols = append(cols, QuoteIdent(c.Name))
			params = append(params, fmt.Sprintf("$%d::text::%s", i+1, c.Type))
			if row[i].Valid {
				args = append(args, row[i].Text)
			} else {
				args = append(args, nil)
			}
		}
		for i, v := range extra {
			cols = append(cols, QuoteIdent(VersionColumns()[i].Name))
			params = append(params, v)
		}
		sql := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", QuoteTable(table), strings.Join(cols, ", "), strings.Join(params, ", "))
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("insert into %s: %v", table, err)
		}
	}
	insert(mut.Table, mut.Values, "1", "3", "0")
	for _, ch := range mut.Children {
		for _, row := range ch.Rows {
			insert(ch.Table, row)
		}
	}
}

// TestDDLPostgres applies the generated DDL to a real PostgreSQL, writes
// the rows of an insert event into it, and deletes the root row to show
// the foreign keys cascade to child and grandchild rows.
func TestDDLPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool := testenv.Postgres(t)
	m := loadMapping(t, "testdata/mapping.yaml")
	design := loadMapping(t, "testdata/design_collection.yaml")
	ddl := DDL([]*Mapping{design, m})
	if _, err := pool.Exec(ctx, ddl); err != nil {
		t.Fatalf("apply DDL: %v", err)
	}
	if _, err := pool.Exec(ctx, ddl); err != nil {
		t.Fatalf("DDL is not idempotent: %v", err)
	}
	ev, _ := ParseEvent(event("insert", orderKey, orderDoc()))
	r, err := m.Transform(ev)
	if err != nil {
		t.Fatal(err)
	}
	insertMutation(ctx, t, pool, m, r.Mutations[0])

	var got string
	err = pool.QueryRow(ctx, `SELECT concat_ws(' | ', id, customer, total, placed_at, status, tags, first_tag, tenant_id, doc)
		FROM shop.orders`).Scan(&got)
	if err != nil {
		t.Fatal(err)
	}
	want := `o-1 | Ada | 19.90 | 2024-05-01 10:00:00.123+00 | new | {gift,express} | gift | 00112233-4455-6677-8899-aabbccddeeff | {"meta": {"source": "web"}, "customer": {"vip": true}}`
	if got != want {
		t.Fatalf("root row\n got %s\nwant %s", got, want)
	}
	counts := func() string {
		var s string
		err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM shop.order_lines) || ',' ||
			(SELECT count(*) FROM shop.order_line_discounts) || ',' || (SELECT count(*) FROM shop.order_notes)`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if c := counts(); c != "2,1,2" {
		t.Fatalf("child rows %s, want 2,1,2", c)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM shop.orders WHERE id = 'o-1'`); err != nil {
		t.Fatal(err)
	}
	if c := counts(); c != "0,0,0" {
		t.Fatalf("after delete child rows %s, want 0,0,0", c)
	}
}

// TestDDLOwnKeysPostgres: the DDL of a root whose children reference its
// surrogate id and have their own keys, with a grandchild, is valid, takes
// the rows of an insert, and cascades a delete.
func TestDDLOwnKeysPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool := testenv.Postgres(t)
	m, err := compileYAML(t, `
source: policy.packs
table: policy.packs
tenant_id: {column: tenant_id}
key: [tenant_id, name]
columns:
  id: {type: uuid, uuid5: {from: [_id]}}
  tenant_id: {path: tenant, type: text}
  name: {path: name, type: text}
children:
  - path: rules
    table: policy.rules
    parent_key: pack_id
    references: id
    key: [id]
    columns:
      id: {type: uuid, uuid5: {from: [$parent, $ordinal]}}
      rule: {path: rule, type: text}
    children:
      - path: conditions
        table: policy.rule_conditions
        key: [id]
        columns:
          id: {type: uuid, uuid5: {from: [$parent, $ordinal]}}
          expr: {path: ., type: text}
`)
	if err != nil {
		t.Fatal(err)
	}
	ddl := DDL([]*Mapping{m})
	if err := CheckDDL(ddl); err != nil {
		t.Fatalf("CheckDDL: %v\n%s", err, ddl)
	}
	if _, err := pool.Exec(ctx, ddl); err != nil {
		t.Fatalf("apply DDL: %v\n%s", err, ddl)
	}
	doc := `{"_id": "p1", "tenant": "default", "name": "baseline", "rules": [{"rule": "a", "conditions": ["x", "y"]}, {"rule": "b"}]}`
	ev, _ := ParseEvent(event("insert", orderKey, extJSON(t, doc), bson.E{Key: "ns", Value: bson.D{{Key: "db", Value: "policy"}, {Key: "coll", Value: "packs"}}}))
	r, err := m.Transform(ev)
	if err != nil {
		t.Fatal(err)
	}
	insertMutation(ctx, t, pool, m, r.Mutations[0])
	count := func() string {
		var s string
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM policy.rules) || ',' || (SELECT count(*) FROM policy.rule_conditions)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if c := count(); c != "2,2" {
		t.Fatalf("rows %s, want 2,2", c)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM policy.packs`); err != nil {
		t.Fatal(err)
	}
	if c := count(); c != "0,0" {
		t.Fatalf("after delete rows %s, want 0,0", c)
	}
}

func extJSON(t *testing.T, s string) bson.Raw {
	t.Helper()
	var d bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
		t.Fatal(err)
	}
	return d
}
