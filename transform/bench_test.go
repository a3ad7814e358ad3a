package transform

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"gopkg.in/yaml.v3"
)

// benchConfig maps 10 columns, one child array and a rest JSONB column.
const benchConfig = `
source: app.items
table: app.items
columns:
  id:         { path: _id, type: text }
  tenant_id:  { path: tenantId, type: uuid }
  name:       { path: name, type: text }
  kind:       { path: kind, type: text }
  price:      { path: price, type: numeric }
  qty:        { path: qty, type: bigint }
  active:     { path: active, type: boolean }
  created_at: { path: createdAt, type: timestamptz }
  score:      { path: stats.score, type: double precision }
  labels:     { path: labels, type: "text[]" }
document: { column: doc, include: rest }
children:
  - path: parts
    table: app.item_parts
    parent_key: item_id
    columns:
      sku: { path: sku, type: text }
      qty: { path: qty, type: integer }
`

// benchEvent is an update event whose fullDocument is about 1 KB.
func benchEvent(tb testing.TB) bson.Raw {
	parts := bson.A{}
	for i := 0; i < 5; i++ {
		parts = append(parts, bson.D{{Key: "sku", Value: fmt.Sprintf("SKU-%04d", i)}, {Key: "qty", Value: int32(i + 1)}})
	}
	doc := bson.D{
		{Key: "_id", Value: oid()},
		{Key: "tenantId", Value: bson.Binary{Subtype: 4, Data: uuidBytes}},
		{Key: "name", Value: "A reasonably descriptive product name"},
		{Key: "kind", Value: "widget"},
		{Key: "price", Value: dec("1234.56")},
		{Key: "qty", Value: int64(42)},
		{Key: "active", Value: true},
		{Key: "createdAt", Value: date(2024, 5, 1, 10, 0, 0, 123)},
		{Key: "stats", Value: bson.D{{Key: "score", Value: 0.875}, {Key: "views", Value: int64(1234567)}}},
		{Key: "labels", Value: bson.A{"red", "large", "sale"}},
		{Key: "parts", Value: parts},
		{Key: "description", Value: "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris."},
		{Key: "attributes", Value: bson.D{
			{Key: "color", Value: "red"}, {Key: "size", Value: "L"}, {Key: "weight", Value: 1.25},
			{Key: "dimensions", Value: bson.D{{Key: "w", Value: int32(10)}, {Key: "h", Value: int32(20)}, {Key: "d", Value: int32(5)}}},
		}},
		{Key: "history", Value: bson.A{
			bson.D{{Key: "at", Value: date(2024, 1, 1, 0, 0, 0, 0)}, {Key: "by", Value: "alice"}, {Key: "change", Value: "created"}},
			bson.D{{Key: "at", Value: date(2024, 2, 1, 0, 0, 0, 0)}, {Key: "by", Value: "bob"}, {Key: "change", Value: "price"}},
		}},
		{Key: "vendor", Value: bson.D{{Key: "id", Value: oid()}, {Key: "name", Value: "Acme Corporation"}, {Key: "country", Value: "NL"}}},
	}
	key := bson.D{{Key: "_id", Value: oid()}}
	raw, err := bson.Marshal(bson.D{
		{Key: "_id", Value: bson.D{{Key: "_data", Value: "8266A1B2C3000000012B022C0100296E5A1004"}}},
		{Key: "operationType", Value: "update"},
		{Key: "clusterTime", Value: bson.Timestamp{T: 1714557600, I: 3}},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "app"}, {Key: "coll", Value: "items"}}},
		{Key: "documentKey", Value: key},
		{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D{{Key: "qty", Value: int64(42)}}}, {Key: "removedFields", Value: bson.A{}}}},
		{Key: "fullDocument", Value: doc},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func benchMapping(tb testing.TB) *Mapping {
	var cfg CollectionConfig
	if err := yaml.Unmarshal([]byte(benchConfig), &cfg); err != nil {
		tb.Fatal(err)
	}
	m, err := Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkTransform measures ParseEvent + Transform of an update event
// with a ~1 KB document. events/s is per core (run with -cpu 1).
func BenchmarkTransform(b *testing.B) {
	m := benchMapping(b)
	raw := benchEvent(b)
	ev, _ := ParseEvent(raw)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		ev, err := ParseEvent(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Transform(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ev.FullDocument)), "doc_bytes")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// Per core: events per second of CPU time the process used (GC
	// included), which stays meaningful on a busy machine.
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

// cpuTime is the user+system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestBenchEventShape(t *testing.T) {
	ev, err := ParseEvent(benchEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ev.FullDocument); n < 900 || n > 1300 {
		t.Fatalf("benchmark document is %d bytes, want about 1 KB", n)
	}
	r, err := benchMapping(t).Transform(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Mutations) != 1 || len(r.Mutations[0].Values) != 11 || len(r.Mutations[0].Children[0].Rows) != 5 {
		t.Fatalf("unexpected result %+v", r)
	}
}
