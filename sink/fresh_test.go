package sink

import (
	"context"
	"reflect"
	"testing"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// insertEvent is the buffer message at seq of an insert event at cluster
// time t: the writes insertFresh COPYs without probing while the table
// has no tombstones. Its ordinal is seq, as change's is.
func insertEvent(seq uint64, t uint32, it item) message {
	return encodeMsg(seq, &envelope.Envelope{Kind: envelope.KindChange, Collection: testNS,
		ClusterTime: transform.ClusterTime{T: t, I: 1}, Ordinal: uint32(seq), Operation: "insert", Mutations: []transform.Mutation{it.mutation()}})
}

// TestInsertsWithoutProbe covers the unprobed COPY of insert events: new
// keys load directly; applying the same inserts again (a replay) finds the
// rows there, falls back to the guarded merge and changes nothing; once a
// tombstone exists, an insert older than it stays out.
func TestInsertsWithoutProbe(t *testing.T) {
	ctx := context.Background()
	pool := testDB(t, testenv.PostgresURL(t))
	c := newTestCollection(t, pool, 1, nil) // every batch through COPY
	inserts := []message{
		insertEvent(1, 10, item{id: "a", qty: 1, tags: []string{"x", "y"}}),
		insertEvent(2, 11, item{id: "b", qty: 2}),
	}
	if err := c.apply(ctx, redecode(inserts)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "qty=1 v=10/1 tags=x,y", "b": "qty=2 v=11/2 tags="}
	if got := itemState(t, pool); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the inserts: %v, want %v", got, want)
	}
	before := dump(t, pool)
	rewind(t, pool, c)
	if err := c.apply(ctx, redecode(inserts)); err != nil {
		t.Fatal(err)
	}
	if after := dump(t, pool); after != before {
		t.Fatalf("replaying the inserts changed the state:\n%s\n%s", before, after)
	}
	// b is deleted at 12; the replayed insert of b (at 11) must not bring
	// it back, while a new key still loads.
	if err := c.apply(ctx, []message{change(3, 12, deletion("b"))}); err != nil {
		t.Fatal(err)
	}
	// Only keys without a row in the batch, so the COPY itself would
	// succeed: the tombstone alone must keep b out.
	rewind(t, pool, c)
	replay := []message{insertEvent(2, 11, item{id: "b", qty: 2}), insertEvent(4, 13, item{id: "c", qty: 3})}
	if err := c.apply(ctx, replay); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"a": "qty=1 v=10/1 tags=x,y", "c": "qty=3 v=13/4 tags="}
	if got := itemState(t, pool); !reflect.DeepEqual(got, want) {
		t.Fatalf("after delete and replay: %v, want %v", got, want)
	}
}
