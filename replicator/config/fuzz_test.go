package config

import (
	"os"
	"strings"
	"testing"

	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// FuzzConfigParse: Parse never panics, and a config it accepts compiles to
// DDL that CheckDDL accepts (only CREATE SCHEMA / CREATE TABLE statements
// and comments, every identifier quoted) and to subjects that are valid,
// wildcard-free and distinct per collection.
func FuzzConfigParse(f *testing.F) {
	for _, file := range []string{"testdata/design.yaml", "testdata/bad.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"collections:\n  - source: \"app.users\\nCREATE TABLE public.pwned (x int);\"\n    table: a.b\n",
		"collections:\n  - {source: \"app.my coll\", table: a.b}\n  - {source: \"app.*\", table: a.c}\n  - {source: app.a, table: a.d}\n",
		"buffer: {subject_prefix: \"x.y\", stream: S}\ncollections:\n  - {source: \"d.a..b.\", table: s.t, columns: {\"c\": {path: \"x.y\", type: \"numeric(5,2)[]\"}}}\n",
		"collections:\n  - source: a.b\n    table: a.b\n    columns: {id: {path: _id, type: text}}\n    children: [{path: xs, table: a.xs, columns: {v: {path: ., type: jsonb}}}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		ms, err := c.Mappings()
		if err != nil {
			t.Fatalf("Parse accepted a config whose mappings do not compile: %v", err)
		}
		ddl := transform.DDL(ms)
		if err := transform.CheckDDL(ddl); err != nil {
			t.Fatalf("%v\n%s", err, ddl)
		}
		subjects := map[string]string{}
		for _, m := range ms {
			s := envelope.Subject(c.Buffer.SubjectPrefix, m.Namespace())
			for _, tok := range strings.Split(s, ".") {
				if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
					t.Fatalf("subject %q of %q is not a valid literal subject", s, m.Namespace())
				}
			}
			if prev, dup := subjects[s]; dup {
				t.Fatalf("%q and %q share subject %q", prev, m.Namespace(), s)
			}
			subjects[s] = m.Namespace()
		}
	})
}
