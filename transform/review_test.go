package transform

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestValueMapOnKeys: a map on a text column of _id (which writes the _id
// key text) would be ignored, and a key column's map that gives two source
// values one target would write two documents into one row: both are
// configuration errors.
func TestValueMapOnKeys(t *testing.T) {
	for _, tt := range []struct{ name, src, field string }{
		{"map on the _id text key", `{source: a.b, table: t, columns: {k: {path: _id, type: text, map: {a: x}}}}`, "columns.k.map"},
		{"map on an _id text column", `{source: a.b, table: t, key: [n], columns: {n: {path: _id, type: integer}, k: {path: _id, type: text, map: {a: x}}}}`, "columns.k.map"},
		{"key map not one to one", `{source: a.b, table: t, columns: {k: {path: _id, type: integer, map: {a: 1, b: 1}}}}`, "columns.k.map"},
		{"key map to null", `{source: a.b, table: t, columns: {k: {path: _id, type: integer, map: {a: 1, b: null}}}}`, "columns.k.map"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileYAML(t, tt.src)
			found := false
			for _, e := range flattenJoin(err) {
				var ce *ConfigError
				if errors.As(e, &ce) && ce.Field == tt.field {
					found = true
				}
			}
			if !found {
				t.Fatalf("err = %v, want one at %s", err, tt.field)
			}
		})
	}
	// A one-to-one map on a key column applies, to rows and delete keys.
	m := mustCompileYAML(t, `{source: a.b, table: t, columns: {k: {path: _id, type: integer, map: {a: 1, b: 2}}}}`)
	raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: "b"}})
	mu, err := m.SnapshotRow(raw, ClusterTime{T: 1})
	if err != nil || mu.Key[0].Text != "2" || mu.Values[0].Text != "2" {
		t.Fatalf("row %v %v, %v; want key and value 2", mu.Key, mu.Values, err)
	}
}
