package transform

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// fuzzTypes are the column types every fuzzed value is converted to.
var fuzzTypes = func() []colType {
	var out []colType
	for _, s := range []string{
		"text", "varchar(3)", "boolean", "smallint", "integer", "bigint", "numeric",
		"numeric(5,2)", "real", "double precision", "timestamptz", "timestamp", "date",
		"uuid", "bytea", "jsonb", "json", "inet", "cidr", "macaddr", "macaddr8", "text[]", "bigint[]", "numeric[]", "jsonb[]", "inet[]",
	} {
		t, err := parseType(s)
		if err != nil {
			panic(err)
		}
		out = append(out, t)
	}
	return out
}()

// fuzzSeeds are documents holding every type-table value.
func fuzzSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for _, c := range typeCases {
		if _, ok := c.val.(missingMarker); ok {
			continue
		}
		doc, err := bson.Marshal(bson.D{{Key: "v", Value: c.val}})
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, doc)
	}
	doc, _ := bson.Marshal(orderDoc())
	return append(seeds, doc)
}

// FuzzConvert converts every field of an arbitrary document to every
// column type and encodes it as JSON. It must never panic; the output must
// be deterministic; and for valid BSON the JSON must equal the driver's
// relaxed Extended JSON whenever both succeed.
func FuzzConvert(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		it := newDocIter(doc)
		for _, v, ok := it.next(); ok; _, v, ok = it.next() {
			for _, typ := range fuzzTypes {
				for order := range uuidOrders {
					a, an, aerr := convert(typ, v, uuidOrders[order])
					b, bn, berr := convert(typ, v, uuidOrders[order])
					if a != b || an != bn || (aerr == nil) != (berr == nil) {
						t.Fatalf("convert %s is not deterministic", typ)
					}
				}
			}
		}
		var e jsonEncoder
		err := e.document(doc, 0)
		if err != nil || bson.Raw(doc).Validate() != nil {
			return
		}
		want, derr := bson.MarshalExtJSON(bson.Raw(doc), false, false)
		if derr != nil {
			return
		}
		if !bytes.Equal(e.buf, want) && !hasDBPointer(doc) {
			t.Fatalf("JSON differs from the driver's relaxed Extended JSON:\n got %s\nwant %s", e.buf, want)
		}
	})
}

// hasDBPointer reports a dbPointer anywhere in doc: the driver writes its
// namespace without escaping it, which this encoder does not copy.
func hasDBPointer(doc []byte) bool {
	return bytes.Contains(doc, []byte{bsonDBPointer})
}

// FuzzPath resolves an arbitrary path in an arbitrary document.
func FuzzPath(f *testing.F) {
	doc, _ := bson.Marshal(orderDoc())
	for _, p := range []string{"_id", "customer.name", "lines.0.sku", "lines.1.discounts.0.code", ".", "a..b", "tags.-1", "tags.01", "$x", "notes.5"} {
		f.Add(p, []byte(doc))
	}
	f.Fuzz(func(t *testing.T, path string, doc []byte) {
		p, err := parsePath(path, true)
		if err != nil {
			return
		}
		v, err := p.resolve(rawValue{typ: bsonDocument, data: doc})
		if err != nil || v.missing() || p.self {
			return
		}
		if _, err := valueSize(v.typ, v.data); err != nil {
			t.Fatalf("resolved a value that is not well framed: %v", err)
		}
		var c consumed
		c.add(p)
		var e jsonEncoder
		_ = e.rest(doc, &c, 0)
	})
}

// FuzzTransform runs an arbitrary fullDocument through the full test
// mapping (columns, tenant, filter, rest, children, grandchildren).
func FuzzTransform(f *testing.F) {
	m := loadMapping(f, "testdata/mapping.yaml")
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	key, _ := bson.Marshal(orderKey)
	f.Fuzz(func(t *testing.T, doc []byte) {
		a, aerr := m.upsertRow(doc, key)
		b, berr := m.upsertRow(doc, key)
		if fmt.Sprint(a, aerr) != fmt.Sprint(b, berr) {
			t.Fatal("transform is not deterministic")
		}
		_, _ = m.SnapshotRow(doc, ClusterTime{T: 1})
		if raw, err := bson.Marshal(bson.D{{Key: "operationType", Value: "insert"}, {Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}}, {Key: "documentKey", Value: bson.Raw(key)}}); err == nil {
			_, _ = ParseEvent(append(raw[:len(raw)-1:len(raw)-1], doc...))
		}
		_, _ = ParseEvent(doc)
	})
}

// TestWriteFuzzSeeds writes the seed corpus under testdata/fuzz with
// -update, so CI's short fuzz runs start from every type-table value.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/fuzz seeds")
	}
	write := func(target string, i int, args ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "go test fuzz v1\n"
		for _, a := range args {
			body += a + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range fuzzSeeds(t) {
		write("FuzzConvert", i, "[]byte("+strconv.Quote(string(s))+")")
		write("FuzzTransform", i, "[]byte("+strconv.Quote(string(s))+")")
	}
	doc, _ := bson.Marshal(orderDoc())
	for i, p := range []string{"customer.name", "lines.1.discounts.0.code", "tags.0"} {
		write("FuzzPath", i, "string("+strconv.Quote(p)+")", "[]byte("+strconv.Quote(string(doc))+")")
	}
}
