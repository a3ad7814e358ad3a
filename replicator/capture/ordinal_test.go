package capture

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

func TestOrdinals(t *testing.T) {
	ev := func(t, i uint32) bson.Raw {
		raw, err := bson.Marshal(bson.D{{Key: "_id", Value: bson.D{{Key: "_data", Value: "x"}}}, {Key: "clusterTime", Value: bson.Timestamp{T: t, I: i}}})
		if err != nil {
			panic(err)
		}
		return raw
	}
	tok := func(t, i uint32) string { return fmt.Sprintf("82%08X%08X0000000100", t, i) }
	type step struct {
		raw   bson.Raw // an event, or
		token string   // an empty getMore's postBatchResumeToken
		want  uint32
	}
	tests := []struct {
		name  string
		start buffer.Position
		steps []step
	}{
		{"first start at T0", buffer.Position{ClusterTime: transform.ClusterTime{T: 10, I: 1}}, []step{
			{raw: ev(10, 1), want: 1}, {raw: ev(10, 1), want: 2}, {raw: ev(10, 2), want: 1}, {raw: ev(11, 1), want: 1}, {raw: ev(11, 1), want: 2},
		}},
		{"resume inside a transaction", buffer.Position{Token: tok(10, 1), ClusterTime: transform.ClusterTime{T: 10, I: 1}, Ordinal: 3}, []step{
			{raw: ev(10, 1), want: 4}, {raw: ev(10, 1), want: 5}, {raw: ev(12, 1), want: 1},
		}},
		{"resume after a transaction", buffer.Position{Token: tok(10, 1), ClusterTime: transform.ClusterTime{T: 10, I: 1}, Ordinal: 3}, []step{
			{raw: ev(10, 2), want: 1},
		}},
		{"postBatchResumeToken past the last event", buffer.Position{}, []step{
			{raw: ev(10, 1), want: 1}, {raw: ev(10, 1), want: 2}, {token: tok(10, 5), want: 0}, {raw: ev(10, 5), want: 1}, {raw: ev(10, 6), want: 1},
		}},
		{"postBatchResumeToken inside a transaction", buffer.Position{}, []step{
			{raw: ev(10, 1), want: 1}, {raw: ev(10, 1), want: 2}, {token: tok(10, 1), want: 2}, {raw: ev(10, 1), want: 3},
		}},
		{"unreadable token keeps the count", buffer.Position{}, []step{
			{raw: ev(10, 1), want: 1}, {token: "", want: 1}, {token: "zz", want: 1}, {raw: ev(10, 1), want: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ordinalsAfter(tt.start)
			for i, s := range tt.steps {
				var got uint32
				if s.raw != nil {
					got = o.next(s.raw)
				} else {
					got = o.caughtUp(s.token)
				}
				if got != s.want {
					t.Fatalf("step %d: ordinal %d, want %d", i, got, s.want)
				}
			}
		})
	}
}

// TestTransactionOrdinalsSurviveRestart: the events of one transaction
// share a cluster time and get ordinals 1..n in stream order; a capture
// restarted from a position in the middle of the transaction gives the
// remaining events the same ordinals (and the same message ids, so the
// buffer deduplicates them).
func TestTransactionOrdinalsSurviveRestart(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	db, coll, _ := strings.Cut(f.ns, ".")
	items := f.env.Client.Database(db).Collection(coll)
	others := f.env.Client.Database(db).Collection("others") // not configured

	ctxRun, cancel := context.WithCancel(ctx)
	done := f.start(t, ctxRun)
	f.insert(t, bson.D{{Key: "_id", Value: "p"}, {Key: "n", Value: 0}})
	sess, err := f.env.Client.StartSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.EndSession(ctx)
	_, err = sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
		for _, op := range []func() error{
			func() error { return put(sc, items, "a", 1) },
			func() error { return set(sc, items, "a", 2) },
			func() error { return put(sc, items, "b", 1) },
			func() error { return put(sc, others, "o", 0) },
			func() error { return set(sc, items, "a", 3) },
			func() error { _, err := items.DeleteOne(sc, bson.D{{Key: "_id", Value: "b"}}); return err },
		} {
			if err := op(); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.insert(t, bson.D{{Key: "_id", Value: "q"}, {Key: "n", Value: 9}})
	const total = 7 // p, five in the transaction, q
	first := waitEnvelopes(t, f, total)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}

	txn := first[1:6]
	for i, e := range txn {
		if e.ClusterTime != txn[0].ClusterTime || e.Ordinal != uint32(i+1) {
			t.Fatalf("transaction event %d (%s %s) at %v ordinal %d; want %v ordinal %d",
				i, e.Operation, e.DocumentKey, e.ClusterTime, e.Ordinal, txn[0].ClusterTime, i+1)
		}
	}
	for _, e := range []*envelope.Envelope{first[0], first[6]} {
		if e.ClusterTime == txn[0].ClusterTime || e.Ordinal != 1 {
			t.Fatalf("event %s outside the transaction at %v ordinal %d; want its own cluster time and ordinal 1", e.DocumentKey, e.ClusterTime, e.Ordinal)
		}
	}
	if pos, err := f.buf.Positions().Load(ctx, "default"); err != nil {
		t.Fatal(err)
	} else if pos.Token == first[6].Token && pos.Ordinal != 1 {
		t.Fatalf("saved position %+v at the last event, want its ordinal 1", pos)
	}

	// Restart after the transaction's second event, as after a crash
	// there: into the same buffer (a re-read event is deduplicated, or,
	// in a batch cut elsewhere than before, stored again unchanged), then
	// into an empty one (the re-read events are published again,
	// unchanged).
	mid := buffer.Position{Token: txn[1].Token, ClusterTime: txn[1].ClusterTime, Ordinal: txn[1].Ordinal}
	restart := func(f *fixture) []*envelope.Envelope {
		t.Helper()
		if err := f.buf.Positions().Save(ctx, "default", mid); err != nil {
			t.Fatal(err)
		}
		ctxRun, cancel := context.WithCancel(ctx)
		done := f.start(t, ctxRun)
		waitFor(t, "the re-read events", func() bool {
			pos, err := f.buf.Positions().Load(ctx, "default")
			return err == nil && !pos.ClusterTime.Before(first[6].ClusterTime)
		})
		cancel()
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
		return f.envelopes(t)
	}
	again := restart(f)
	if len(again) < total {
		t.Fatalf("%d envelopes after the restart into the same buffer, want at least %d", len(again), total)
	}
	for i, e := range again {
		if i < total {
			if e.Token != first[i].Token {
				t.Fatalf("envelope %d changed after the restart: token %s, was %s", i, e.Token, first[i].Token)
			}
			continue
		}
		// A copy of a re-read event (the events after mid), unchanged.
		k := slices.IndexFunc(first, func(w *envelope.Envelope) bool { return w.Token == e.Token })
		if k <= 2 || e.ClusterTime != first[k].ClusterTime || e.Ordinal != first[k].Ordinal || len(e.Mutations) != len(first[k].Mutations) {
			t.Fatalf("envelope %d after the restart (token %s at %v ordinal %d) is no copy of an event read again after the middle of the transaction", i, e.Token, e.ClusterTime, e.Ordinal)
		}
	}

	nb, err := buffer.Open(ctx, buffer.Config{URL: testenv.NATS(t).URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	fresh := *f
	fresh.buf = nb
	got := restart(&fresh)
	want := first[3:]
	if len(got) != len(want) {
		t.Fatalf("%d envelopes re-read after the middle of the transaction, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Token != w.Token || g.ClusterTime != w.ClusterTime || g.Ordinal != w.Ordinal {
			t.Fatalf("re-read event %d: token %s at %v ordinal %d; first read: token %s at %v ordinal %d",
				i, g.Token, g.ClusterTime, g.Ordinal, w.Token, w.ClusterTime, w.Ordinal)
		}
	}
}

func put(ctx context.Context, c *mongo.Collection, id string, n int) error {
	_, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: n}})
	return err
}

func set(ctx context.Context, c *mongo.Collection, id string, n int) error {
	_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: n}}}})
	return err
}

// waitEnvelopes waits until the collection's subject holds n envelopes
// (heartbeats aside) and returns them.
func waitEnvelopes(t *testing.T, f *fixture, n int) []*envelope.Envelope {
	t.Helper()
	var envs []*envelope.Envelope
	waitFor(t, fmt.Sprintf("%d envelopes", n), func() bool {
		envs = f.envelopes(t)
		return len(envs) >= n
	})
	if len(envs) != n {
		t.Fatalf("%d envelopes, want %d", len(envs), n)
	}
	return envs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
