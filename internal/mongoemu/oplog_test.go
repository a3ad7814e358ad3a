package mongoemu_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
)

// oldestOplogEntry reads local.oplog.rs sorted {$natural: 1} with limit 1,
// as oplog-window monitors do.
func oldestOplogEntry(t testing.TB, cl *mongo.Client) bson.Raw {
	t.Helper()
	ctx := ctxT(t)
	cur, err := cl.Database("local").Collection("oplog.rs").Find(ctx, D{},
		options.Find().SetSort(D{{"$natural", 1}}).SetLimit(1))
	mustNoErr(t, err)
	defer func() { _ = cur.Close(ctx) }()
	if !cur.Next(ctx) {
		t.Fatalf("oplog is empty: %v", cur.Err())
	}
	return cur.Current
}

func tsBefore(a, b bson.Timestamp) bool { return a.T < b.T || a.T == b.T && a.I < b.I }

func TestOplogInitiationEntry(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	init := oldestOplogEntry(t, cl)
	if got, want := keys(t, init), []string{"op", "ns", "o", "ts", "t", "v", "wall"}; !slices.Equal(got, want) {
		t.Fatalf("initiation entry fields %v, want %v: %v", got, want, init)
	}
	if init.Lookup("op").StringValue() != "n" || init.Lookup("ns").StringValue() != "" ||
		init.Lookup("o", "msg").StringValue() != "initiating set" || init.Lookup("wall").Type != bson.TypeDateTime {
		t.Fatalf("initiation entry %v", init)
	}
	it, ii := init.Lookup("ts").Timestamp()
	initTS := bson.Timestamp{T: it, I: ii}
	if n, err := cl.Database("local").Collection("oplog.rs").CountDocuments(ctx, D{}); err != nil || n != 1 {
		t.Fatalf("fresh oplog holds %d entries (%v), want 1", n, err)
	}

	// A stream from the initiation entry's cluster time skips it: the
	// first event is the first write.
	cs, err := cl.Watch(ctx, P{}, options.ChangeStream().SetStartAtOperationTime(&initTS))
	mustNoErr(t, err)
	t.Cleanup(func() { _ = cs.Close(context.Background()) })
	_, err = cl.Database("db").Collection("c").InsertOne(ctx, D{{"_id", 1}})
	mustNoErr(t, err)
	ev := nextEvent(t, cs)
	if ev.Lookup("operationType").StringValue() != "insert" || ev.Lookup("documentKey", "_id").Int32() != 1 {
		t.Fatalf("first event %v, want the insert", ev)
	}
	et, ei := ev.Lookup("clusterTime").Timestamp()
	if !tsBefore(initTS, bson.Timestamp{T: et, I: ei}) {
		t.Fatalf("initiation entry ts %v is not before the first insert's cluster time %d.%d", initTS, et, ei)
	}
	if got := oldestOplogEntry(t, cl); got.Lookup("op").StringValue() != "n" {
		t.Fatalf("oldest entry after the insert %v, want the initiation entry", got)
	}
}

func TestOplogInitiationEntryTruncated(t *testing.T) {
	// Room for four entries: the initiation entry, the collection's
	// create and two inserts.
	_, cl := startServer(t, mongoemu.Options{OplogMaxEvents: 4})
	ctx := ctxT(t)
	oplog := cl.Database("local").Collection("oplog.rs")
	it, ii := oldestOplogEntry(t, cl).Lookup("ts").Timestamp()
	initTS := bson.Timestamp{T: it, I: ii}
	mustNoErr(t, cl.Database("db").CreateCollection(ctx, "trunc"))
	coll := cl.Database("db").Collection("trunc")
	insert := func(t *testing.T, id int) {
		t.Helper()
		_, err := coll.InsertOne(ctx, D{{"_id", id}})
		mustNoErr(t, err)
	}
	// replay opens a stream at the initiation entry's cluster time and
	// returns the _id of every insert event, or the open error.
	replay := func(t *testing.T) ([]int32, error) {
		t.Helper()
		cs, err := coll.Watch(ctx, P{}, options.ChangeStream().SetStartAtOperationTime(&initTS).SetMaxAwaitTime(10*time.Millisecond))
		if err != nil {
			return nil, err
		}
		defer func() { _ = cs.Close(context.Background()) }()
		var ids []int32
		for cs.TryNext(ctx) {
			ids = append(ids, cs.Current.Lookup("documentKey", "_id").Int32())
		}
		return ids, cs.Err()
	}

	t.Run("initiation entry retained while the oplog has room", func(t *testing.T) {
		insert(t, 1)
		insert(t, 2)
		if got := oldestOplogEntry(t, cl); got.Lookup("op").StringValue() != "n" {
			t.Fatalf("oldest entry %v, want the initiation entry", got)
		}
	})
	t.Run("initiation entry discarded first", func(t *testing.T) {
		insert(t, 3)
		got := oldestOplogEntry(t, cl)
		if got.Lookup("op").StringValue() != "c" || got.Lookup("o", "create").StringValue() != "trunc" {
			t.Fatalf("oldest entry %v, want the collection's create", got)
		}
		if n, err := oplog.CountDocuments(ctx, D{}); err != nil || n != 4 {
			t.Fatalf("oplog holds %d entries (%v), want 4", n, err)
		}
	})
	t.Run("discarding it loses no event", func(t *testing.T) {
		ids, err := replay(t)
		mustNoErr(t, err)
		if !slices.Equal(ids, []int32{1, 2, 3}) {
			t.Fatalf("replayed %v, want [1 2 3]", ids)
		}
	})
	t.Run("discarding an event loses history", func(t *testing.T) {
		insert(t, 4)
		_, err := replay(t)
		var se mongo.ServerError
		if !errors.As(err, &se) || !se.HasErrorCode(286) {
			t.Fatalf("err %v, want ChangeStreamHistoryLost", err)
		}
	})
}
