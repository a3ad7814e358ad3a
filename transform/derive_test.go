package transform

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/internal/testenv"
)

func compileYAML(t *testing.T, src string) (*Mapping, error) {
	t.Helper()
	var cfg CollectionConfig
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	return Compile(cfg)
}

func mustCompileYAML(t *testing.T, src string) *Mapping {
	t.Helper()
	m, err := compileYAML(t, src)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func transformOne(t *testing.T, m *Mapping, raw bson.Raw) (Result, error) {
	t.Helper()
	ev, err := ParseEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m.Transform(ev)
}

func TestUUID5Vector(t *testing.T) {
	// RFC 9562's DNS namespace and the classic "python.org" example.
	dns, _ := parseUUID([]byte("6ba7b810-9dad-11d1-80b4-00c04fd430c8"))
	got := string(appendUUIDText(nil, uuid5(dns, []byte("python.org"))))
	if want := "886313e1-3b8a-5372-9b90-0c9aee199e5d"; got != want {
		t.Fatalf("uuid5 = %s, want %s", got, want)
	}
	url, _ := parseUUID([]byte("6ba7b811-9dad-11d1-80b4-00c04fd430c8"))
	if got := string(appendUUIDText(nil, uuid5(url, []byte("https://github.com/mongopg/replicator/uuid5")))); got != DefaultUUID5Namespace {
		t.Fatalf("DefaultUUID5Namespace is %s, the documented derivation gives %s", DefaultUUID5Namespace, got)
	}
}

const usersMapping = `
source: authority.users
table: authority.users
uuid5_namespace: 0b9f1c52-2f4e-4c1b-9a43-5d1f5a0d7e11
tenant_id: {column: tenant_id, path: tenantId}
columns:
  id: {type: uuid, uuid5: {from: [_id]}}
  username: {path: username, type: text, required: true}
  status: {path: status, type: smallint, map: {active: 1, disabled: 2, locked: 3}}
children:
  - path: roles
    table: authority.user_roles
    parent_key: user_id
    ordinal: none
    key: [id]
    columns:
      id: {type: uuid, uuid5: {from: [$parent, name]}}
      name: {path: name, type: text, required: true}
      role_id: {type: uuid, uuid5: {from: [roleId], scope: authority.roles}}
`

func TestDerivedIDs(t *testing.T) {
	m := mustCompileYAML(t, usersMapping)
	if got := strings.Join(m.Tables()[0].Key, ","); got != "id" {
		t.Fatalf("root key = %s, want id (the uuid5 column of _id)", got)
	}
	for _, c := range m.Tables()[0].Columns {
		if c.Name == "_id" {
			t.Fatal("an implicit _id column was added beside the uuid5 id of _id")
		}
	}
	roles := m.Tables()[1]
	if got := strings.Join(roles.Key, ","); got != "id" {
		t.Fatalf("child key = %s, want id", got)
	}
	var names []string
	for _, c := range roles.Columns {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "user_id,tenant_id,id,name,role_id" {
		t.Fatalf("child columns = %s", got)
	}
	const ns = "0b9f1c52-2f4e-4c1b-9a43-5d1f5a0d7e11"
	for _, id := range []any{bson.ObjectID{0x65, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b}, "alice", int32(7)} {
		key := bson.D{{Key: "_id", Value: id}}
		roleID := bson.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
		doc := bson.D{{Key: "_id", Value: id}, {Key: "tenantId", Value: "default"}, {Key: "username", Value: "alice"},
			{Key: "status", Value: "locked"},
			{Key: "roles", Value: bson.A{bson.D{{Key: "name", Value: "admin"}, {Key: "roleId", Value: roleID}}, bson.D{{Key: "name", Value: "viewer"}}}}}
		r, err := transformOne(t, m, eventIn("authority", "users", "insert", key, doc))
		if err != nil {
			t.Fatal(err)
		}
		mu := r.Mutations[0]
		idText := map[any]string{int32(7): "~num:7", "alice": "alice"}[id]
		if idText == "" {
			idText = "65a1b2c3d4e5f60718293a4b"
		}
		_, want, _ := UUID5Name(ns, "authority.users", idText)
		if mu.Key[0].Text != want {
			t.Errorf("_id %v: id %s, want %s", id, mu.Key[0].Text, want)
		}
		if mu.Values[2].Text != "3" {
			t.Errorf("status locked → %q, want 3", mu.Values[2].Text)
		}
		rows := mu.Children[0].Rows
		_, child0, _ := UUID5Name(ns, "authority.user_roles", want, "admin")
		_, role0, _ := UUID5Name(ns, "authority.roles", "0102030405060708090a0b0c")
		if rows[0][0].Text != want || rows[0][1].Text != "default" || rows[0][2].Text != child0 || rows[0][4].Text != role0 {
			t.Errorf("child row 0 = %v, want user_id %s, tenant default, id %s, role_id %s", rows[0], want, child0, role0)
		}
		if rows[1][4].Valid {
			t.Errorf("child row 1 role_id = %v, want NULL (no roleId)", rows[1][4])
		}
		// The delete finds the same key from the documentKey alone.
		r, err = transformOne(t, m, eventIn("authority", "users", "delete", key, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Mutations[0].Key[0].Text; got != want {
			t.Errorf("delete key %s, upsert key %s", got, want)
		}
	}
}

func TestDerivedErrors(t *testing.T) {
	m := mustCompileYAML(t, usersMapping)
	key := bson.D{{Key: "_id", Value: "u1"}}
	tests := []struct {
		name string
		doc  bson.D
		path string
		msg  string
	}{
		{"unmapped status", bson.D{{Key: "_id", Value: "u1"}, {Key: "tenantId", Value: "t"}, {Key: "username", Value: "a"}, {Key: "status", Value: "gone"}},
			"status", `value "gone" is not in the column's map`},
		{"status wrong type", bson.D{{Key: "_id", Value: "u1"}, {Key: "tenantId", Value: "t"}, {Key: "username", Value: "a"}, {Key: "status", Value: 1.5}},
			"status", "not an integral number"},
		{"child id part missing", bson.D{{Key: "_id", Value: "u1"}, {Key: "tenantId", Value: "t"}, {Key: "username", Value: "a"},
			{Key: "roles", Value: bson.A{bson.D{{Key: "roleId", Value: "x"}}}}},
			"roles.0.name", "uuid5 column id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transformOne(t, m, eventIn("authority", "users", "insert", key, tt.doc))
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if te.Path != tt.path || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v (path %q), want path %q and %q", err, te.Path, tt.path, tt.msg)
			}
		})
	}
	// A numeric status maps by its decimal text.
	mm := mustCompileYAML(t, strings.Replace(usersMapping, "{active: 1, disabled: 2, locked: 3}", "{1: 10, 2: 20}", 1))
	doc := bson.D{{Key: "_id", Value: "u1"}, {Key: "tenantId", Value: "t"}, {Key: "username", Value: "a"}, {Key: "status", Value: int64(2)}}
	r, err := transformOne(t, mm, eventIn("authority", "users", "insert", key, doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Mutations[0].Values[2].Text; got != "20" {
		t.Fatalf("status 2 → %q, want 20", got)
	}
}

func TestDerivedConfigErrors(t *testing.T) {
	tests := []struct{ name, src, field string }{
		{"uuid5 with path", `{source: a.b, table: t, columns: {id: {path: x, type: uuid, uuid5: {from: [_id]}}}}`, "columns.id.path"},
		{"uuid5 not uuid", `{source: a.b, table: t, columns: {id: {type: text, uuid5: {from: [_id]}}}}`, "columns.id.uuid5"},
		{"uuid5 no parts", `{source: a.b, table: t, columns: {id: {type: uuid, uuid5: {from: []}}}}`, "columns.id.uuid5.from"},
		{"$parent in root", `{source: a.b, table: t, columns: {id: {type: uuid, uuid5: {from: [$parent]}}}}`, "columns.id.uuid5.from[0]"},
		{"bad namespace", `{source: a.b, table: t, columns: {id: {type: uuid, uuid5: {from: [_id], namespace: nope}}}}`, "columns.id.uuid5.namespace"},
		{"bad collection namespace", `{source: a.b, table: t, uuid5_namespace: x, columns: {id: {type: uuid, uuid5: {from: [_id]}}}}`, "uuid5_namespace"},
		{"map target type", `{source: a.b, table: t, columns: {s: {path: s, type: smallint, map: {a: "1"}}}}`, "columns.s.map.a"},
		{"map target range", `{source: a.b, table: t, columns: {s: {path: s, type: smallint, map: {a: 70000}}}}`, "columns.s.map.a"},
		{"map on array", `{source: a.b, table: t, columns: {s: {path: s, type: "smallint[]", map: {a: 1}}}}`, "columns.s.map"},
		{"references without parent_key", `{source: a.b, table: t, columns: {id: {type: uuid, uuid5: {from: [_id]}}, n: {path: n, type: text}}, key: [n],
		   children: [{path: c, table: c, references: id}]}`, "children[0].parent_key"},
		{"references unknown", `{source: a.b, table: t, children: [{path: c, table: c, parent_key: p, references: nope}]}`, "children[0].references"},
		{"ordinal none without key", `{source: a.b, table: t, children: [{path: c, table: c, ordinal: none}]}`, "children[0].ordinal"},
		{"child key unknown", `{source: a.b, table: t, children: [{path: c, table: c, key: [nope]}]}`, "children[0].key[0]"},
		{"grandchild references unknown", `{source: a.b, table: t, children: [{path: c, table: c, children: [{path: g, table: g, parent_key: p, references: nope}]}]}`,
			"children[0].children[0].references"},
		{"grandchild references without parent_key", `{source: a.b, table: t, children: [{path: c, table: c, children: [{path: g, table: g, references: ordinal}]}]}`,
			"children[0].children[0].parent_key"},
		{"no ordinal, grandchild by position", `{source: a.b, table: t, children: [{path: c, table: c, ordinal: none, key: [x], columns: {x: {path: x, type: text}},
		   children: [{path: g, table: g}]}]}`, "children[0].children[0].references"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileYAML(t, tt.src)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError at %s", err, tt.field)
			}
			found := false
			for _, e := range flattenJoin(err) {
				if errors.As(e, &ce) && ce.Field == tt.field {
					found = true
				}
			}
			if !found {
				t.Fatalf("err = %v, want one at %s", err, tt.field)
			}
		})
	}
}

func flattenJoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestReferencesAndTenantKey: a child referencing the root's surrogate id
// while the root key is a natural key that holds the tenant column, which
// the child then does not get twice.
func TestReferencesAndTenantKey(t *testing.T) {
	m := mustCompileYAML(t, `
source: vuln.advisories
table: vuln.advisories
tenant_id: {column: tenant_id}
key: [tenant_id, advisory_key]
columns:
  id: {type: uuid, uuid5: {from: [_id]}}
  tenant_id: {path: tenant, type: text}
  advisory_key: {path: key, type: text, required: true}
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
  - path: refs
    table: vuln.advisory_refs
`)
	tbls := m.Tables()
	cols := func(d TableDef) string {
		var s []string
		for _, c := range d.Columns {
			s = append(s, c.Name)
		}
		return strings.Join(s, ",")
	}
	if got := cols(tbls[1]); got != "advisory_id,tenant_id,id,alias" {
		t.Errorf("aliases columns = %s", got)
	}
	if got := strings.Join(tbls[1].RootRef, ","); got != "id" {
		t.Errorf("aliases RootRef = %s, want id", got)
	}
	if got := cols(tbls[2]); got != "tenant_id,advisory_key,ordinal" {
		t.Errorf("refs columns = %s (the tenant column must not be added twice)", got)
	}
	doc := bson.D{{Key: "_id", Value: "a1"}, {Key: "tenant", Value: "default"}, {Key: "key", Value: "CVE-1"},
		{Key: "aliases", Value: bson.A{"GHSA-1"}}, {Key: "refs", Value: bson.A{"x"}}}
	r, err := transformOne(t, m, eventIn("vuln", "advisories", "insert", bson.D{{Key: "_id", Value: "a1"}}, doc))
	if err != nil {
		t.Fatal(err)
	}
	mu := r.Mutations[0]
	_, id, _ := UUID5Name(DefaultUUID5Namespace, "vuln.advisories", "a1")
	_, aliasID, _ := UUID5Name(DefaultUUID5Namespace, "vuln.advisory_aliases", id, "GHSA-1")
	row := mu.Children[0].Rows[0]
	if row[0].Text != id || row[1].Text != "default" || row[2].Text != aliasID || row[3].Text != "GHSA-1" {
		t.Errorf("alias row = %v, want [%s default %s GHSA-1]", row, id, aliasID)
	}
	if row := mu.Children[1].Rows[0]; row[0].Text != "default" || row[1].Text != "CVE-1" || row[2].Text != "0" {
		t.Errorf("refs row = %v", row)
	}
}

// TestUUID5Postgres: PostgreSQL's uuid_generate_v5 of the documented name,
// jsonb_build_array(scope, parts...)::text, gives the ids transform
// writes, so a team can compute them in SQL too.
func TestUUID5Postgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pool := testenv.Postgres(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS "uuid-ossp"`); err != nil {
		t.Fatal(err)
	}
	for _, parts := range [][]string{{"a1"}, {"x\"y\\z", "tab\there", "nl\nctl\x01\x1f"}, {"ünï", "~num:7", ""}} {
		name, id, err := UUID5Name(DefaultUUID5Namespace, "s.t", parts...)
		if err != nil {
			t.Fatal(err)
		}
		args := []any{DefaultUUID5Namespace, "s.t"}
		ph := []string{"$2::text"}
		for i, p := range parts {
			args = append(args, p)
			ph = append(ph, "$"+string(rune('3'+i))+"::text")
		}
		var pgName, pgID string
		q := "SELECT jsonb_build_array(" + strings.Join(ph, ", ") + ")::text, uuid_generate_v5($1::uuid, jsonb_build_array(" + strings.Join(ph, ", ") + ")::text)::text"
		if err := pool.QueryRow(ctx, q, args...).Scan(&pgName, &pgID); err != nil {
			t.Fatal(err)
		}
		if pgName != name || pgID != id {
			t.Errorf("parts %q: PostgreSQL name %q id %s, transform %q %s", parts, pgName, pgID, name, id)
		}
	}
}

func TestJSONKeyRefused(t *testing.T) {
	_, err := compileYAML(t, `{source: a.b, table: t, key: [k], columns: {k: {path: _id, type: json}}}`)
	if err == nil || !strings.Contains(err.Error(), "key[0]") || !strings.Contains(err.Error(), "json") {
		t.Fatalf("err = %v, want a json key refused at key[0]", err)
	}
}

// TestMapToNull: a value mapped to null is a null value: the default
// replaces it, and a required column refuses it.
func TestMapToNull(t *testing.T) {
	m := mustCompileYAML(t, `{source: a.b, table: t, columns: {
  d: {path: s, type: smallint, map: {gone: null, ok: 1}, default: "0"},
  r: {path: s, type: smallint, map: {gone: null, ok: 1}, required: true}}}`)
	doc := func(s string) bson.D { return bson.D{{Key: "_id", Value: "x"}, {Key: "s", Value: s}} }
	key := bson.D{{Key: "_id", Value: "x"}}
	r, err := transformOne(t, m, eventIn("a", "b", "insert", key, doc("ok")))
	if err != nil || r.Mutations[0].Values[1].Text != "1" || r.Mutations[0].Values[2].Text != "1" {
		t.Fatalf("ok → %v, %v", r.Mutations, err)
	}
	_, err = transformOne(t, m, eventIn("a", "b", "insert", key, doc("gone")))
	var te *Error
	if !errors.As(err, &te) || te.Path != "s" || !errors.Is(err, ErrRequired) {
		t.Fatalf("gone into a required column: %v, want a required error at s", err)
	}
	m = mustCompileYAML(t, `{source: a.b, table: t, columns: {d: {path: s, type: smallint, map: {gone: null}, default: "0"}}}`)
	r, err = transformOne(t, m, eventIn("a", "b", "insert", key, doc("gone")))
	if err != nil || r.Mutations[0].Values[1].Text != "0" {
		t.Fatalf("gone with a default → %v, %v; want 0", r.Mutations, err)
	}
}
