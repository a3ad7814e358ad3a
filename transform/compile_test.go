package transform

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func parseCollection(t *testing.T, src string) CollectionConfig {
	t.Helper()
	var cfg CollectionConfig
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "field: message fragment", all must be reported
	}{
		{
			name: "bad source and table",
			src:  "source: nodot\ntable: Bad.Name\ncolumns: {id: {path: _id, type: text}}",
			want: []string{"source: source \"nodot\"", "table: table \"Bad.Name\""},
		},
		{
			name: "unknown type and bad path",
			src:  "source: a.b\ntable: a.b\ncolumns: {id: {path: _id, type: text}, x: {path: \"a..b\", type: txt}}",
			want: []string{"columns.x.path: path \"a..b\" has an empty segment", "columns.x.type: unknown type \"txt\""},
		},
		{
			name: "key column not mapped",
			src:  "source: a.b\ntable: a.b\nkey: [id, nope]\ncolumns: {id: {path: _id, type: text}}",
			want: []string{"key[1]: key column \"nope\" is not mapped"},
		},
		{
			name: "duplicate columns and reserved names",
			src:  "source: a.b\ntable: a.b\ncolumns: {id: {path: _id, type: text}, _cdc_ts: {path: x, type: text}}\ndocument: {column: id}",
			want: []string{"columns._cdc_ts: column name \"_cdc_ts\": the _cdc_ prefix is reserved", "document.column: column \"id\" is defined twice"},
		},
		{
			name: "self path outside a child",
			src:  "source: a.b\ntable: a.b\ncolumns: {id: {path: _id, type: text}, x: {path: ., type: text}}",
			want: []string{"columns.x.path: path \".\" (the element itself) only works in a child table"},
		},
		{
			name: "enums",
			src:  "source: a.b\ntable: a.b\non_error: ignore\nfull_document: always\nuuid_representation: weird\ndead_letter_threshold: -1\ncolumns: {id: {path: _id, type: text}}",
			want: []string{"on_error: on_error \"ignore\"", "full_document: full_document \"always\"", "uuid_representation: uuid_representation \"weird\"", "dead_letter_threshold: dead_letter_threshold must be"},
		},
		{
			name: "children",
			src: `source: a.b
table: a.b
columns: {id: {path: _id, type: text}}
children:
  - path: xs
    table: a.b
    columns: {id: {path: v, type: text}}
    children:
      - path: ys
        table: a.ys
        children:
          - {path: zs, table: a.zs}
  - path: ""
    table: a.other
    parent_ordinal: po`,
			want: []string{
				"children[0].table: table \"a.b\" is used twice",
				"children[0].columns.id: column \"id\" is defined twice",
				"children[0].children[0].children[0]: children nest one level only",
				"children[1].path: path is empty",
				"children[1].parent_ordinal: parent_ordinal only applies to a nested child table",
			},
		},
		{
			name: "filter and tenant",
			src:  "source: a.b\ntable: a.b\ncolumns: {id: {path: _id, type: text}}\nfilter: [{path: x}, {path: y, equals: 1, exists: true}]\ntenant_id: {path: t, value: c}",
			want: []string{"filter[0]: a filter condition needs exactly one", "filter[1]: a filter condition needs exactly one", "tenant_id: tenant_id needs exactly one of path or value"},
		},
		{
			name: "required with default",
			src:  "source: a.b\ntable: a.b\ncolumns: {id: {path: _id, type: text}, x: {path: x, type: text, required: true, default: a}}",
			want: []string{"columns.x.default: a column cannot be both required and have a default"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(parseCollection(t, tt.src))
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			got := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error is not a *ConfigError: %T", err)
			}
		})
	}
}

func TestCompileDefaults(t *testing.T) {
	t.Run("implicit _id column", func(t *testing.T) {
		m, err := Compile(parseCollection(t, "source: a.b\ntable: b\ncolumns: {name: {path: name, type: text}}"))
		if err != nil {
			t.Fatal(err)
		}
		root := m.Tables()[0]
		if root.Name != "public.b" || root.Columns[0].Name != "_id" || root.Key[0] != "_id" {
			t.Fatalf("root table %+v", root)
		}
		cfg := m.Config()
		if cfg.OnError != OnErrorDeadLetter || cfg.FullDocument != FullDocumentLookup {
			t.Fatalf("defaults not filled: %+v", cfg)
		}
	})
	t.Run("renamed _id column", func(t *testing.T) {
		m, err := Compile(parseCollection(t, "source: a.b\ntable: a.b\nid_column: doc_id\ncolumns: {name: {path: name, type: text}}"))
		if err != nil {
			t.Fatal(err)
		}
		if k := m.Tables()[0].Key; len(k) != 1 || k[0] != "doc_id" {
			t.Fatalf("key %v", k)
		}
	})
	t.Run("composite key children", func(t *testing.T) {
		m, err := Compile(parseCollection(t, `source: a.b
table: a.b
key: [region, id]
columns: {id: {path: _id.id, type: bigint}, region: {path: _id.region, type: text}}
children:
  - {path: xs, table: a.xs, columns: {v: {path: ., type: text}}}`))
		if err != nil {
			t.Fatal(err)
		}
		child := m.Tables()[1]
		if strings.Join(child.Key, ",") != "region,id,ordinal" || strings.Join(child.RootKey, ",") != "region,id" {
			t.Fatalf("child %+v", child)
		}
	})
}

func TestTenantFromMappedColumn(t *testing.T) {
	m, err := Compile(parseCollection(t, `source: a.b
table: a.b
columns:
  id: { path: _id, type: text }
  tenant_id: { path: tenantId, type: uuid }
tenant_id: { column: tenant_id }
children:
  - { path: xs, table: a.xs, columns: { v: { path: ., type: text } } }`))
	if err != nil {
		t.Fatal(err)
	}
	root, child := m.Tables()[0], m.Tables()[1]
	if len(root.Columns) != 2 || !root.Columns[1].NotNull {
		t.Fatalf("root %+v", root)
	}
	if child.Columns[2].Name != "tenant_id" || child.Columns[2].Type != "uuid" || !child.Columns[2].NotNull {
		t.Fatalf("child %+v", child)
	}
}
