package transform

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"gopkg.in/yaml.v3"
)

func loadMapping(t testing.TB, file string) *Mapping {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cfg CollectionConfig
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	m, err := Compile(cfg)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return m
}

var tenantUUID = bson.Binary{Subtype: 4, Data: uuidBytes}

func orderDoc(extra ...bson.E) bson.D {
	d := bson.D{
		{Key: "_id", Value: "o-1"},
		{Key: "tenant", Value: tenantUUID},
		{Key: "customer", Value: bson.D{{Key: "name", Value: "Ada"}, {Key: "email", Value: "ada@example.com"}, {Key: "vip", Value: true}}},
		{Key: "total", Value: dec("19.90")},
		{Key: "placedAt", Value: date(2024, 5, 1, 10, 0, 0, 123)},
		{Key: "tags", Value: bson.A{"gift", "express"}},
		{Key: "lines", Value: bson.A{
			bson.D{{Key: "sku", Value: "A-1"}, {Key: "qty", Value: int32(2)}, {Key: "price", Value: dec("4.95")},
				{Key: "discounts", Value: bson.A{bson.D{{Key: "code", Value: "SPRING"}, {Key: "amount", Value: dec("1.00")}}}}},
			bson.D{{Key: "sku", Value: "B-2"}, {Key: "qty", Value: int64(1)}, {Key: "price", Value: 10.0}, {Key: "gift", Value: true}},
		}},
		{Key: "notes", Value: bson.A{"leave at door", nil}},
		{Key: "meta", Value: bson.D{{Key: "source", Value: "web"}}},
	}
	for _, e := range extra {
		replaced := false
		for i := range d {
			if d[i].Key == e.Key {
				d[i], replaced = e, true
			}
		}
		if !replaced {
			d = append(d, e)
		}
	}
	return d
}

func event(op string, key, doc any, extra ...bson.E) bson.Raw {
	e := bson.D{
		{Key: "_id", Value: bson.D{{Key: "_data", Value: "8266A1B2C3000000012B022C0100296E5A1004"}}},
		{Key: "operationType", Value: op},
		{Key: "clusterTime", Value: bson.Timestamp{T: 1714557600, I: 3}},
		{Key: "wallTime", Value: bson.NewDateTimeFromTime(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}},
	}
	if key != nil {
		e = append(e, bson.E{Key: "documentKey", Value: key})
	}
	for i, x := range extra {
		if x.Key == "ns" {
			e[4] = x
			extra = append(extra[:i:i], extra[i+1:]...)
			break
		}
	}
	if doc != nil {
		e = append(e, bson.E{Key: "fullDocument", Value: doc})
	}
	e = append(e, extra...)
	raw, err := bson.Marshal(e)
	if err != nil {
		panic(err)
	}
	return raw
}

var orderKey = bson.D{{Key: "_id", Value: "o-1"}}

// outcome is what a golden file records for one event.
type outcome struct {
	Result *Result `json:"result,omitempty"`
	Error  *struct {
		Message     string `json:"message"`
		Collection  string `json:"collection"`
		DocumentKey string `json:"document_key"`
		Path        string `json:"path"`
	} `json:"error,omitempty"`
}

func runEvent(t *testing.T, m Transformer, raw bson.Raw) []byte {
	t.Helper()
	ev, err := ParseEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	var o outcome
	r, err := m.Transform(ev)
	if err != nil {
		var te *Error
		if !errors.As(err, &te) {
			t.Fatalf("error is %T, not *Error: %v", err, err)
		}
		o.Error = &struct {
			Message     string `json:"message"`
			Collection  string `json:"collection"`
			DocumentKey string `json:"document_key"`
			Path        string `json:"path"`
		}{err.Error(), te.Collection, te.DocumentKey, te.Path}
	} else {
		o.Result = &r
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestTransformEvents(t *testing.T) {
	m := loadMapping(t, "testdata/mapping.yaml")
	tests := []struct {
		name string
		raw  bson.Raw
	}{
		{"insert", event("insert", orderKey, orderDoc())},
		{"update", event("update", orderKey, orderDoc(), bson.E{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D{{Key: "total", Value: dec("19.90")}}}}})},
		{"replace", event("replace", orderKey, orderDoc())},
		{"delete", event("delete", orderKey, nil)},
		{"update_missing_document", event("update", orderKey, nil, bson.E{Key: "fullDocument", Value: nil})},
		{"insert_filtered", event("insert", orderKey, orderDoc(bson.E{Key: "deleted", Value: true}))},
		{"update_filtered", event("update", orderKey, orderDoc(bson.E{Key: "deleted", Value: true}))},
		{"insert_minimal", event("insert", orderKey, bson.D{{Key: "_id", Value: "o-1"}, {Key: "tenant", Value: tenantUUID}, {Key: "customer", Value: bson.D{{Key: "name", Value: "Bo"}}}})},
		{"insert_in_transaction", event("insert", orderKey, orderDoc(), bson.E{Key: "txnNumber", Value: int64(7)}, bson.E{Key: "lsid", Value: bson.D{{Key: "id", Value: tenantUUID}}})},
		{"drop", event("drop", nil, nil)},
		{"rename", event("rename", nil, nil, bson.E{Key: "to", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders_old"}}})},
		{"dropDatabase", event("dropDatabase", nil, nil)},
		{"invalidate", event("invalidate", nil, nil)},
		{"error_unknown_operation", event("createIndexes", nil, nil)},
		{"error_nul_in_text", event("insert", orderKey, orderDoc(bson.E{Key: "status", Value: "a\x00b"}))},
		{"error_nul_in_rest", event("insert", orderKey, orderDoc(bson.E{Key: "extra", Value: bson.D{{Key: "deep", Value: bson.A{"ok", "bad\x00"}}}}))},
		{"error_required_missing", event("insert", orderKey, bson.D{{Key: "_id", Value: "o-1"}, {Key: "tenant", Value: tenantUUID}})},
		{"error_tenant_missing", event("insert", orderKey, bson.D{{Key: "_id", Value: "o-1"}, {Key: "customer", Value: bson.D{{Key: "name", Value: "Bo"}}}})},
		{"error_child_not_array", event("insert", orderKey, orderDoc(bson.E{Key: "lines", Value: "none"}))},
		{"error_child_column", event("insert", orderKey, orderDoc(bson.E{Key: "lines", Value: bson.A{bson.D{{Key: "sku", Value: "A"}, {Key: "qty", Value: int64(1 << 40)}}}}))},
		{"error_grandchild_column", event("insert", orderKey, orderDoc(bson.E{Key: "lines", Value: bson.A{bson.D{{Key: "sku", Value: "A"}, {Key: "discounts", Value: bson.A{bson.D{{Key: "amount", Value: "x"}}}}}}}))},
		{"error_numeric_scale", event("insert", orderKey, orderDoc(bson.E{Key: "total", Value: dec("1.999")}))},
		{"error_path_crosses_array", event("insert", orderKey, orderDoc(bson.E{Key: "customer", Value: bson.A{"x"}}))},
		{"error_key_missing", event("delete", bson.D{{Key: "other", Value: 1}}, nil)},
		{"delete_objectid_key_as_text", event("delete", bson.D{{Key: "_id", Value: oid()}}, nil)},
		{"error_other_namespace", event("insert", orderKey, orderDoc(), bson.E{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "carts"}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runEvent(t, m, tt.raw)
			golden(t, "events/"+tt.name+".golden", got)
			if again := runEvent(t, m, tt.raw); string(again) != string(got) {
				t.Fatal("a second run gives different output")
			}
		})
	}
}

// TestDesignExample runs an insert and a delete through the collection of
// the ARCHITECTURE.md example config.
func TestDesignExample(t *testing.T) {
	m := loadMapping(t, "testdata/design_collection.yaml")
	key := bson.D{{Key: "_id", Value: "GHSA-1234"}}
	doc := bson.D{
		{Key: "_id", Value: "GHSA-1234"},
		{Key: "tenantId", Value: "6F9619FF-8B86-D011-B42D-00C04FC964FF"},
		{Key: "severity", Value: "critical"},
		{Key: "metrics", Value: bson.D{{Key: "cvss", Value: dec("9.8")}, {Key: "epss", Value: 0.97}}},
		{Key: "published", Value: date(2024, 3, 1, 12, 0, 0, 0)},
		{Key: "aliases", Value: bson.A{"CVE-2024-0001"}},
		{Key: "affected", Value: bson.A{
			bson.D{{Key: "purl", Value: "pkg:npm/left-pad"}, {Key: "ranges", Value: bson.A{bson.D{{Key: "introduced", Value: "0"}, {Key: "fixed", Value: "1.3.0"}}}}},
			bson.D{{Key: "purl", Value: "pkg:pypi/requests"}},
		}},
	}
	for _, tt := range []struct {
		name string
		raw  bson.Raw
	}{
		{"insert", eventIn("vuln", "advisories", "insert", key, doc)},
		{"delete", eventIn("vuln", "advisories", "delete", key, nil)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			golden(t, "events/design_"+tt.name+".golden", runEvent(t, m, tt.raw))
		})
	}
}

func eventIn(db, coll, op string, key, doc any) bson.Raw {
	return event(op, key, doc, bson.E{Key: "ns", Value: bson.D{{Key: "db", Value: db}, {Key: "coll", Value: coll}}})
}
