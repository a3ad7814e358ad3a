package sink

import (
	"strings"
	"testing"

	"github.com/mongopg/replicator/transform"
)

// TestTablesQuoteNamesAndRefuseTypes: names reach SQL only quoted, and a
// type that is not canonical (it would be written into casts) is refused.
func TestTablesQuoteNamesAndRefuseTypes(t *testing.T) {
	def := func(typ string) []transform.TableDef {
		return []transform.TableDef{{Name: `a.b"; DROP TABLE x; --`, Key: []string{`i"d`},
			Columns: []transform.ColumnDef{{Name: `i"d`, Type: typ}}}}
	}
	ts, err := compileTables(def("text"))
	if err != nil {
		t.Fatal(err)
	}
	if ts.root.ident != `"a"."b""; DROP TABLE x; --"` || ts.root.cols[0] != `"i""d"` {
		t.Fatalf("quoted as %s and %s", ts.root.ident, ts.root.cols[0])
	}
	for _, typ := range []string{"text); DROP TABLE x; --", "int8", "TEXT"} {
		if _, err := compileTables(def(typ)); err == nil || !strings.Contains(err.Error(), "canonical") {
			t.Errorf("type %q: %v", typ, err)
		}
	}
}
