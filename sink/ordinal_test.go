package sink

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// txnChange is the change envelope of one operation of a transaction at
// cluster time {t, 1}: ord is its place in source order inside that
// cluster time.
func txnChange(t uint32, ord uint32, mut transform.Mutation) *envelope.Envelope {
	return &envelope.Envelope{Kind: envelope.KindChange, Collection: testNS,
		ClusterTime: transform.ClusterTime{T: t, I: 1}, Ordinal: ord, WallTime: time.Unix(int64(t), 0),
		Token: fmt.Sprintf("82%08X00000001%08X00", t, ord), Operation: "update",
		DocumentKey: fmt.Sprintf(`{"_id":%q}`, mut.Key[0].Text), Mutations: []transform.Mutation{mut}}
}

// TestRetriedPublishAppliesInSourceOrder: two operations of one transaction
// on one document share a cluster time; capture's publish of the first
// failed and its retry was stored after the second. The row must end at
// the second's state, whether both arrive in one batch or in two.
func TestRetriedPublishAppliesInSourceOrder(t *testing.T) {
	first := item{id: "a", qty: 1, tags: []string{"x"}}
	second := item{id: "a", qty: 2, tags: []string{"y", "z"}}
	other := item{id: "b", qty: 7}
	cases := []struct {
		name      string
		batchSize int
	}{
		{"one batch", 100},
		{"separate batches", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buf := newBuffer(t)
			pool := testDB(t, testenv.PostgresURL(t))
			ctx := context.Background()
			subject := envelope.Subject(testPrefix, testNS)
			ts := buf.ts
			// Stored order: ord 2, an unrelated document, then the retry of ord 1.
			for _, e := range []*envelope.Envelope{
				txnChange(ts, 2, second.mutation()),
				txnChange(ts, 3, other.mutation()),
				txnChange(ts, 1, first.mutation()),
			} {
				data, err := envelope.Encode(e)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := buf.js.Publish(ctx, subject, data); err != nil {
					t.Fatal(err)
				}
			}
			last := buf.lastSeq(t)
			startApplier(t, pool, buf.js, Config{BatchSize: tc.batchSize})
			waitFor(t, "catch-up", 30*time.Second, func() bool { return checkpointOf(pool) == last })
			want := model{
				"a": fmt.Sprintf("qty=2 v=%d/2 tags=y,z", ts),
				"b": fmt.Sprintf("qty=7 v=%d/3 tags=", ts),
			}
			checkState(t, pool, want)
		})
	}
}

// TestOrdinalVersionGuard: inside one cluster time, writes order by the
// envelope's ordinal, not by buffer sequence; a stream event at the
// snapshot's T0 (ordinal at least 1) wins over the snapshot's row at
// (T0, 0). Replaying everything changes nothing.
func TestOrdinalVersionGuard(t *testing.T) {
	a := func(qty int, tags ...string) item { return item{id: "a", qty: qty, tags: tags} }
	at := func(seq uint64, ts uint32, ord uint32, mut transform.Mutation) message {
		e := txnChange(ts, ord, mut)
		return encodeMsg(seq, e)
	}
	cases := []struct {
		name       string
		snapshot   bool // a snapshot row a at (T0=10, 0) is stored first
		batches    [][]message
		want       map[string]string
		tombstones []string
	}{
		{"retried first operation stored last, one batch", false, [][]message{
			{at(1, 10, 2, a(2, "y").mutation()), at(2, 10, 1, a(1, "x").mutation())},
		}, map[string]string{"a": "qty=2 v=10/2 tags=y"}, nil},
		{"retried first operation stored last, separate batches", false, [][]message{
			{at(1, 10, 2, a(2, "y").mutation())}, {at(2, 10, 1, a(1, "x").mutation())},
		}, map[string]string{"a": "qty=2 v=10/2 tags=y"}, nil},
		{"delete then re-insert, the delete retried", false, [][]message{
			{at(1, 10, 2, a(3, "r").mutation())}, {at(2, 10, 1, deletion("a"))},
		}, map[string]string{"a": "qty=3 v=10/2 tags=r"}, []string{"a"}}, // the older tombstone stays, harmless
		{"re-insert then delete, the re-insert retried", false, [][]message{
			{at(1, 10, 2, deletion("a")), at(2, 10, 1, a(3, "r").mutation())},
		}, map[string]string{}, []string{"a"}},
		{"a later cluster time still wins over a higher ordinal", false, [][]message{
			{at(1, 11, 1, a(5).mutation()), at(2, 10, 9, a(4).mutation())},
		}, map[string]string{"a": "qty=5 v=11/1 tags="}, nil},
		{"stream event at T0 wins over the snapshot row", true, [][]message{
			{at(5, 10, 1, a(6, "s").mutation())},
		}, map[string]string{"a": "qty=6 v=10/1 tags=s"}, nil},
		{"stream delete at T0 wins over the snapshot row", true, [][]message{
			{at(5, 10, 1, deletion("a"))},
		}, map[string]string{}, []string{"a"}},
	}
	ctx := context.Background()
	pool := testDB(t, testenv.PostgresURL(t))
	c := newTestCollection(t, pool, 1<<30, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reset(t, pool, c)
			if tc.snapshot {
				if _, err := pool.Exec(ctx, `INSERT INTO app.items (id, tenant, qty, _cdc_ts, _cdc_inc, _cdc_seq) VALUES ('a', $1, 99, 10, 1, 0)`, tenant); err != nil {
					t.Fatal(err)
				}
			}
			for pass := range 2 {
				if pass == 1 {
					rewind(t, pool, c) // replay from the start
				}
				for _, b := range tc.batches {
					if err := c.apply(ctx, redecode(b)); err != nil {
						t.Fatal(err)
					}
				}
				if got := itemState(t, pool); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("pass %d: rows\n got %v\nwant %v", pass, got, tc.want)
				}
				if tomb := tombstoneKeys(t, pool); !reflect.DeepEqual(tomb, tc.tombstones) {
					t.Fatalf("pass %d: tombstones %v, want %v", pass, tomb, tc.tombstones)
				}
			}
		})
	}
}

// TestChangeWithoutOrdinal: a change envelope without an ordinal is
// written by no release's capture; it is a decode dead letter holding the
// message's bytes, never applied with another tie-breaker, and the rest
// of the batch applies.
func TestChangeWithoutOrdinal(t *testing.T) {
	ctx := context.Background()
	c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1<<30, nil)
	e := txnChange(10, 1, item{id: "a", qty: 1}.mutation())
	e.Ordinal = 0
	data, err := envelope.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []message{decode(testNS, 1, data), change(2, 11, item{id: "b", qty: 2}.mutation())}
	if err := c.apply(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if dl := deadLetters(t, c); !reflect.DeepEqual(dl, []deadRow{{1, "decode", "decode", ""}}) {
		t.Errorf("dead letters %+v, want one decode dead letter at 1", dl)
	}
	var rawBytes []byte
	if err := c.pool.QueryRow(ctx, `SELECT raw_bytes FROM replicator.dead_letters WHERE stream_seq = 1`).Scan(&rawBytes); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rawBytes, data) {
		t.Errorf("raw bytes % x, want % x", rawBytes, data)
	}
	if got := itemState(t, c.pool); !reflect.DeepEqual(got, map[string]string{"b": "qty=2 v=11/2 tags="}) {
		t.Errorf("rows %v, want only b", got)
	}
}
