package snapshot

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/mongotest"
)

func rv(t *testing.T, v any) bson.RawValue {
	t.Helper()
	typ, data, err := bson.MarshalValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return bson.RawValue{Type: typ, Value: data}
}

func TestChunkFilter(t *testing.T) {
	tests := []struct {
		name  string
		chunk Chunk
		want  string // relaxed extended JSON of the filter
	}{
		{"whole collection", Chunk{Bracket: bracketAll}, `{}`},
		{"whole bracket", Chunk{Bracket: "number"}, `{"_id":{"$type":"number"}}`},
		{"first chunk keeps NaN", Chunk{Bracket: "number", Upper: rv(t, int32(5))}, `{"_id":{"$type":"number","$not":{"$gte":5}}}`},
		{"middle chunk", Chunk{Bracket: "string", Lower: rv(t, "a"), Upper: rv(t, "m")}, `{"_id":{"$type":["string","symbol"],"$gte":"a","$lt":"m"}}`},
		{"last chunk", Chunk{Bracket: "objectId", Lower: rv(t, bson.ObjectID{1})}, `{"_id":{"$type":"objectId","$gte":{"$oid":"010000000000000000000000"}}}`},
		{"null bracket", Chunk{Bracket: "null"}, `{"_id":{"$type":["null","undefined"]}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.chunk.Filter()
			if err != nil {
				t.Fatal(err)
			}
			b, err := bson.MarshalExtJSON(f, false, false)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("filter %s, want %s", b, tc.want)
			}
		})
	}
	if _, err := (Chunk{Bracket: "nope"}).Filter(); err == nil {
		t.Fatal("unknown bracket: no error")
	}
}

func TestBoundRoundTrip(t *testing.T) {
	for _, v := range []any{int32(1), "x", bson.NewObjectID(), 2.5, bson.D{{Key: "a", Value: 1}}} {
		enc, err := encodeBound(rv(t, v))
		if err != nil {
			t.Fatal(err)
		}
		dec, err := decodeBound(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !dec.Equal(rv(t, v)) {
			t.Fatalf("%v: round trip gave %v", v, dec)
		}
	}
	if enc, _ := encodeBound(bson.RawValue{}); enc != nil {
		t.Fatal("open bound encoded as non-NULL")
	}
}

func TestQuantiles(t *testing.T) {
	var ids []bson.RawValue
	for i := range 100 {
		ids = append(ids, rv(t, int32(i/10))) // ten repeats of each value
	}
	tests := []struct {
		k    int
		want int
	}{{1, 0}, {2, 1}, {10, 9}, {50, 10}}
	for _, tc := range tests {
		if got := quantiles(ids, tc.k); len(got) != tc.want {
			t.Fatalf("k=%d: %d split points, want %d (distinct)", tc.k, len(got), tc.want)
		}
	}
	if !isNaN(rv(t, math.NaN())) || isNaN(rv(t, 1.0)) {
		t.Fatal("isNaN")
	}
}

// TestPlanCoversEveryIDType plans a collection holding every BSON type an
// _id may have, with tiny chunks, and reads each chunk back: every
// document must come back exactly once.
func TestPlanCoversEveryIDType(t *testing.T) {
	env := mongotest.New(t)
	ctx := context.Background()
	coll := env.Client.Database(env.Database("plan")).Collection("mixed")
	ids := []any{
		bson.MinKey{}, nil, math.NaN(), math.Inf(-1), int32(-3), int64(7), 2.5, bson.NewDecimal128(0, 42), math.Inf(1),
		"", "a", "b", "zz", bson.Symbol("sym"), bson.D{{Key: "k", Value: 1}}, bson.D{{Key: "k", Value: 2}},
		bson.Binary{Subtype: 0, Data: []byte{1}}, bson.Binary{Subtype: 4, Data: make([]byte, 16)},
		bson.NewObjectID(), bson.NewObjectID(), false, true,
		bson.NewDateTimeFromTime(time.Unix(0, 0)), bson.NewDateTimeFromTime(time.Now()),
		bson.Timestamp{T: 1, I: 1}, bson.MaxKey{},
	}
	for i := range 60 {
		ids = append(ids, int32(100+i), strings.Repeat("s", i+1), bson.NewObjectID())
	}
	var docs []any
	for _, id := range ids {
		docs = append(docs, bson.D{{Key: "_id", Value: id}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	chunks, total, err := plan(ctx, coll, 7)
	if err != nil {
		t.Fatal(err)
	}
	if total != int64(len(ids)) {
		t.Fatalf("planned %d documents, want %d", total, len(ids))
	}
	seen := map[string]int{}
	for _, c := range chunks {
		f, err := c.Filter()
		if err != nil {
			t.Fatal(err)
		}
		cur, err := coll.Find(ctx, f)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		for cur.Next(ctx) {
			seen[cur.Current.Lookup("_id").String()]++
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != len(ids) {
		t.Fatalf("%d chunks read %d distinct documents, want %d", len(chunks), len(seen), len(ids))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("_id %s read %d times", id, n)
		}
	}
	if len(chunks) < len(ids)/7 {
		t.Fatalf("%d chunks for %d documents of chunk size 7", len(chunks), len(ids))
	}
}
