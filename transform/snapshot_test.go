package transform

import (
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestSnapshotRowMatchesInsert: a document read by a snapshot gives the
// same mutation as an insert event of it.
func TestSnapshotRowMatchesInsert(t *testing.T) {
	m := loadMapping(t, "testdata/mapping.yaml")
	doc, _ := bson.Marshal(orderDoc())
	snap, err := m.SnapshotRow(doc, ClusterTime{T: 1, I: 1})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ParseEvent(event("insert", orderKey, orderDoc()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Transform(ev)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(snap) != fmt.Sprint(r.Mutations[0]) {
		t.Fatalf("snapshot row differs from insert:\n%v\n%v", snap, r.Mutations[0])
	}
}

func TestSnapshotRowErrors(t *testing.T) {
	m := loadMapping(t, "testdata/mapping.yaml")
	tests := []struct {
		name string
		doc  bson.D
		want error
	}{
		{"filtered", orderDoc(bson.E{Key: "deleted", Value: true}), ErrSkipped},
		{"required missing", bson.D{{Key: "_id", Value: "x"}, {Key: "tenant", Value: tenantUUID}}, ErrRequired},
		{"no _id", bson.D{{Key: "a", Value: 1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := bson.Marshal(tt.doc)
			_, err := m.SnapshotRow(doc, ClusterTime{})
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("got %v, want *Error", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	m := loadMapping(t, "testdata/mapping.yaml")
	r := NewRegistry()
	if err := r.Register(m.Namespace(), m); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(m.Namespace(), m); err == nil {
		t.Fatal("duplicate Register succeeded")
	}
	t.Run("dispatch", func(t *testing.T) {
		ev, _ := ParseEvent(event("delete", orderKey, nil))
		res, err := r.Transform(ev)
		if err != nil || res.Kind != KindRows || res.Mutations[0].Op != OpDelete {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
	t.Run("unknown namespace", func(t *testing.T) {
		ev, _ := ParseEvent(event("insert", orderKey, orderDoc(), bson.E{Key: "ns", Value: bson.D{{Key: "db", Value: "x"}, {Key: "coll", Value: "y"}}}))
		if _, err := r.Transform(ev); !errors.Is(err, ErrUnknownNamespace) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("dropDatabase needs no registration", func(t *testing.T) {
		raw, _ := bson.Marshal(bson.D{{Key: "operationType", Value: "dropDatabase"}, {Key: "ns", Value: bson.D{{Key: "db", Value: "other"}}}})
		ev, _ := ParseEvent(raw)
		res, err := r.Transform(ev)
		if err != nil || res.Control != ControlDropDatabase {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
	t.Run("post-process", func(t *testing.T) {
		r2 := NewRegistry()
		pp := PostProcess(m, func(ev *Event, res Result) (Result, error) {
			for i := range res.Mutations {
				res.Mutations[i].Table = "shop.orders_v2"
			}
			return res, nil
		})
		if err := r2.Register(m.Namespace(), pp); err != nil {
			t.Fatal(err)
		}
		ev, _ := ParseEvent(event("delete", orderKey, nil))
		res, err := r2.Transform(ev)
		if err != nil || res.Mutations[0].Table != "shop.orders_v2" {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
}

func TestRestDocument(t *testing.T) {
	src := `source: a.b
table: a.b
columns:
  id: { path: _id, type: text }
  cvss: { path: metrics.cvss, type: numeric }
  only: { path: whole.x, type: text }
  first: { path: arr.0, type: text }
document: { column: doc, include: %s }
children:
  - { path: kids, table: a.kids, columns: { v: { path: ., type: text } } }
`
	doc := bson.D{
		{Key: "_id", Value: "k"},
		{Key: "metrics", Value: bson.D{{Key: "cvss", Value: 9.8}, {Key: "vector", Value: "AV:N"}}},
		{Key: "whole", Value: bson.D{{Key: "x", Value: "y"}}},
		{Key: "arr", Value: bson.A{"a", "b"}},
		{Key: "kids", Value: bson.A{"k1"}},
		{Key: "other", Value: int32(1)},
	}
	tests := []struct{ include, want string }{
		{"rest", `{"metrics":{"vector":"AV:N"},"arr":["a","b"],"other":1}`},
		{"all", `{"_id":"k","metrics":{"cvss":9.8,"vector":"AV:N"},"whole":{"x":"y"},"arr":["a","b"],"kids":["k1"],"other":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.include, func(t *testing.T) {
			m, err := Compile(parseCollection(t, fmt.Sprintf(src, tt.include)))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := bson.Marshal(doc)
			mut, err := m.SnapshotRow(raw, ClusterTime{})
			if err != nil {
				t.Fatal(err)
			}
			if got := mut.Values[len(mut.Values)-1].Text; got != tt.want {
				t.Fatalf("doc column\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	src := `source: a.b
table: a.b
columns: { id: { path: _id, type: text } }
filter:
  - { path: kind, in: [draft, "archived"] }
  - { path: n, equals: 3 }
  - { path: gone, exists: true }
  - { path: owner, is_null: true }
`
	m, err := Compile(parseCollection(t, src))
	if err != nil {
		t.Fatal(err)
	}
	base := bson.D{{Key: "_id", Value: "x"}, {Key: "owner", Value: "me"}}
	tests := []struct {
		name string
		doc  bson.D
		skip bool
	}{
		{"plain", base, false},
		{"in", append(base, bson.E{Key: "kind", Value: "archived"}), true},
		{"in other", append(base, bson.E{Key: "kind", Value: "live"}), false},
		{"equals int64", append(base, bson.E{Key: "n", Value: int64(3)}), true},
		{"equals double", append(base, bson.E{Key: "n", Value: 3.0}), true},
		{"equals decimal", append(base, bson.E{Key: "n", Value: dec("3.00")}), true},
		{"equals other", append(base, bson.E{Key: "n", Value: 3.5}), false},
		{"equals string 3", append(base, bson.E{Key: "n", Value: "3"}), false},
		{"exists", append(base, bson.E{Key: "gone", Value: false}), true},
		{"null missing", bson.D{{Key: "_id", Value: "x"}}, true},
		{"null", bson.D{{Key: "_id", Value: "x"}, {Key: "owner", Value: nil}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, _ := bson.Marshal(tt.doc)
			got, err := m.skip(rawValue{typ: bsonDocument, data: raw})
			if err != nil || got != tt.skip {
				t.Fatalf("skip = %v, %v; want %v", got, err, tt.skip)
			}
		})
	}
}
