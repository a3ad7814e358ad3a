package transform

import (
	"regexp"
	"strings"
	"testing"
)

// hostileMapping builds a Mapping without Compile, so nothing validated
// its namespace, names or types: DDL alone must keep them inert.
func hostileMapping(ns, table, col, typ string) *Mapping {
	root := TableDef{
		Name:    table,
		Columns: []ColumnDef{{Name: col, Type: typ, NotNull: true}},
		Key:     []string{col},
	}
	child := TableDef{
		Name: table + "_x", Root: table, Parent: table, RootKey: []string{col},
		Columns: []ColumnDef{{Name: col, Type: typ, NotNull: true}, {Name: "ordinal", Type: "integer", NotNull: true}},
		Key:     []string{col, "ordinal"},
	}
	return &Mapping{ns: ns, tables: []TableDef{root, child}}
}

var hostileInputs = []struct{ ns, table, col, typ string }{
	{"app.users\nCREATE TABLE public.pwned (x int);", "app.users", "id", "text"},
	{"app.users\rDROP TABLE app.users;", "app.users", "id", "text"},
	{"app.users\u2028\x00\x1b[2J\xff", "app.users", "id", "text"},
	{"app.users", "app.users\"; DROP TABLE x; --", "id\"); DROP TABLE x; --", "text"},
	{"app.users", "app.users", "id", "text);\nDROP TABLE app.users; --"},
	{"app.users", "app.users", "id", "text NOT NULL); CREATE TABLE public.pwned (x int"},
}

var quotedIdentRE = regexp.MustCompile(`"(?:[^"]|"")*"`)

// ddlLineRE lists every line shape DDL may write.
var ddlLineRE = regexp.MustCompile(`^(|--( [[:print:]]*)?|CREATE (SCHEMA|TABLE) IF NOT EXISTS .*|    .*|\);)$`)

// TestDDLHostileMapping: whatever a Mapping holds, DDL writes only comment
// lines and CREATE statements whose identifiers are quoted and whose types
// are canonical or quoted (so PostgreSQL refuses an unknown type instead
// of running what follows it).
func TestDDLHostileMapping(t *testing.T) {
	for _, in := range hostileInputs {
		ddl := DDL([]*Mapping{hostileMapping(in.ns, in.table, in.col, in.typ)})
		// A quoted identifier may span lines; it stays inside its
		// statement. PostgreSQL ends a -- comment at \n or \r.
		flat := quotedIdentRE.ReplaceAllString(ddl, `"q"`)
		for _, line := range strings.FieldsFunc(flat, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if !ddlLineRE.MatchString(line) {
				t.Errorf("input %+v: line %q is not a comment or part of a CREATE statement:\n%s", in, line, ddl)
			}
		}
		if err := CheckDDL(ddl); err != nil {
			t.Errorf("input %+v: %v\n%s", in, err, ddl)
		}
	}
}

// TestCheckDDLRefuses: CheckDDL refuses DDL with anything but CREATE
// SCHEMA / TABLE statements and quoted identifiers.
func TestCheckDDLRefuses(t *testing.T) {
	for _, bad := range []string{
		"DROP TABLE \"a\";\n",
		"CREATE SCHEMA IF NOT EXISTS a;\n",
		"CREATE TABLE IF NOT EXISTS \"a\".\"b\" (\n    id text\n);\n",
		"CREATE TABLE IF NOT EXISTS \"a\".\"b\" (\n    \"id\" text\n); DROP TABLE \"a\".\"b\";\n",
		"CREATE TABLE IF NOT EXISTS \"a\".\"b\" (\n    \"id\" text DEFAULT 'x'\n);\n",
		"-- x\rDROP TABLE \"a\";\n",
		"CREATE SCHEMA IF NOT EXISTS \"a\"",
		"CREATE TABLE IF NOT EXISTS \"a\".\"b\" (\n    \"id\" text, PRIMARY KEY (id)\n);\n",
	} {
		if err := CheckDDL(bad); err == nil {
			t.Errorf("CheckDDL accepted %q", bad)
		}
	}
	m := loadMapping(t, "testdata/mapping.yaml")
	design := loadMapping(t, "testdata/design_collection.yaml")
	if err := CheckDDL(DDL([]*Mapping{design, m})); err != nil {
		t.Errorf("CheckDDL refuses DDL's own output: %v", err)
	}
}

// FuzzDDL: for any names and type, DDL of a compiled mapping (when Compile
// accepts it) and of an unvalidated one passes CheckDDL, and no line
// outside a quoted identifier is anything but a comment or part of a
// CREATE statement.
func FuzzDDL(f *testing.F) {
	for _, in := range hostileInputs {
		f.Add(in.ns, in.table, in.col, in.typ)
	}
	f.Add("vuln.advisories", "vuln.advisories", "cvss", "numeric(5,2)[]")
	f.Add("a.my coll", "t", "x", "double precision")
	f.Fuzz(func(t *testing.T, ns, table, col, typ string) {
		check := func(ddl string) {
			if err := CheckDDL(ddl); err != nil {
				t.Fatalf("%v\n%s", err, ddl)
			}
			flat := quotedIdentRE.ReplaceAllString(ddl, `"q"`)
			for _, line := range strings.FieldsFunc(flat, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if !ddlLineRE.MatchString(line) {
					t.Fatalf("line %q:\n%s", line, ddl)
				}
			}
		}
		check(DDL([]*Mapping{hostileMapping(ns, table, col, typ)}))
		cfg := CollectionConfig{Source: ns, Table: table,
			Columns:  Columns{{Name: col, ColumnConfig: ColumnConfig{Path: "_id", Type: typ}}},
			Children: []ChildConfig{{Path: "xs", Table: table + "_xs", Columns: Columns{{Name: col, ColumnConfig: ColumnConfig{Path: ".", Type: typ}}}}},
		}
		if m, err := Compile(cfg); err == nil {
			check(DDL([]*Mapping{m}))
		}
	})
}
