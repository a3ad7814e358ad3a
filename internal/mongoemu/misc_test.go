package mongoemu_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
)

func TestCommandErrors(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	db := cl.Database("errs")
	_, err := db.Collection("c").InsertOne(ctx, D{{"_id", 1}})
	mustNoErr(t, err)
	for _, tc := range []struct {
		name     string
		cmd      D
		code     int32
		codeName string
	}{
		{"unknown command", D{{"frobnicate", 1}}, 59, "CommandNotFound"},
		{"create existing", D{{"create", "c"}}, 48, "NamespaceExists"},
		{"collMod missing", D{{"collMod", "nope"}}, 26, "NamespaceNotFound"},
		{"listIndexes missing", D{{"listIndexes", "nope"}}, 26, "NamespaceNotFound"},
		{"dropIndexes unknown", D{{"dropIndexes", "c"}, {"index", "nope_1"}}, 27, "IndexNotFound"},
		{"bad filter operator", D{{"find", "c"}, {"filter", D{{"a", D{{"$bogus", 1}}}}}}, 2, "BadValue"},
		{"bad update modifier", D{{"findAndModify", "c"}, {"query", D{}}, {"update", D{{"$bogus", D{{"a", 1}}}}}}, 9, "FailedToParse"},
		{"getMore unknown cursor", D{{"getMore", int64(12345)}, {"collection", "c"}}, 43, "CursorNotFound"},
		{"unknown stage", D{{"aggregate", "c"}, {"pipeline", A{D{{"$bogus", 1}}}}, {"cursor", D{}}}, 40324, "Location40324"},
		{"changeStream not first", D{{"aggregate", "c"}, {"pipeline", A{D{{"$match", D{}}}, D{{"$changeStream", D{}}}}}, {"cursor", D{}}}, 40602, "Location40602"},
		{"multiple resume options", D{{"aggregate", "c"}, {"pipeline", A{D{{"$changeStream", D{{"startAfter", D{{"_data", "82"}}}, {"startAtOperationTime", bson.Timestamp{T: 1}}}}}}}, {"cursor", D{}}}, 40674, "Location40674"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := db.RunCommand(ctx, tc.cmd).Err()
			var ce mongo.CommandError
			if !errors.As(err, &ce) || ce.Code != tc.code || ce.Name != tc.codeName {
				t.Fatalf("err = %v (%#v)", err, ce)
			}
		})
	}
}

func TestViewsIndexesAndStages(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	db := cl.Database("vis")
	coll := db.Collection("base")
	_, err := coll.InsertMany(ctx, []any{
		D{{"_id", 1}, {"tags", A{"a", "b"}}, {"k", 1}},
		D{{"_id", 2}, {"tags", A{"b"}}, {"k", 2}},
		D{{"_id", 3}, {"tags", A{}}, {"k", 2}},
	})
	mustNoErr(t, err)

	t.Run("view", func(t *testing.T) {
		mustNoErr(t, db.CreateView(ctx, "big", "base", P{{{"$match", D{{"k", 2}}}}}))
		cur, err := db.Collection("big").Find(ctx, D{}, options.Find().SetSort(D{{"_id", -1}}))
		mustNoErr(t, err)
		if got := ids(t, cur); !reflect.DeepEqual(got, []any{int32(3), int32(2)}) {
			t.Fatalf("got %v", got)
		}
		_, err = db.Collection("big").InsertOne(ctx, D{{"x", 1}})
		if err == nil {
			t.Fatal("insert into a view succeeded")
		}
	})
	t.Run("listIndexes", func(t *testing.T) {
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: D{{"k", -1}}, Options: options.Index().SetName("by_k")})
		mustNoErr(t, err)
		specs, err := coll.Indexes().ListSpecifications(ctx)
		mustNoErr(t, err)
		if len(specs) != 2 || specs[0].Name != "_id_" || specs[1].Name != "by_k" {
			t.Fatalf("specs %+v", specs)
		}
	})
	t.Run("unwind and sortByCount", func(t *testing.T) {
		cur, err := coll.Aggregate(ctx, P{{{"$unwind", "$tags"}}, {{"$sortByCount", "$tags"}}})
		mustNoErr(t, err)
		var got []bson.M
		mustNoErr(t, cur.All(ctx, &got))
		if len(got) != 2 || got[0]["_id"] != "b" || got[0]["count"] != int32(2) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("distinct over arrays", func(t *testing.T) {
		var vals []string
		mustNoErr(t, coll.Distinct(ctx, "tags", D{}).Decode(&vals))
		if !reflect.DeepEqual(vals, []string{"a", "b"}) {
			t.Fatalf("got %v", vals)
		}
	})
	t.Run("sort by array uses min/max element", func(t *testing.T) {
		cur, err := coll.Find(ctx, D{}, options.Find().SetSort(D{{"tags", 1}, {"_id", 1}}))
		mustNoErr(t, err)
		// Empty array sorts first, then ["a","b"] (min "a"), then ["b"].
		if got := ids(t, cur); !reflect.DeepEqual(got, []any{int32(3), int32(1), int32(2)}) {
			t.Fatalf("got %v", got)
		}
	})
}

func TestFailPointModes(t *testing.T) {
	srv, cl := startServer(t, mongoemu.Options{})
	ctx := context.Background()
	coll := cl.Database("db").Collection("modes")
	t.Run("skip", func(t *testing.T) {
		setFailPoint(t, cl, D{{"skip", 2}}, D{{"failCommands", A{"count"}}, {"errorCode", 2}})
		for i := 0; i < 2; i++ {
			_, err := coll.EstimatedDocumentCount(ctx)
			mustNoErr(t, err)
		}
		if _, err := coll.EstimatedDocumentCount(ctx); err == nil {
			t.Fatal("third count succeeded")
		}
	})
	t.Run("appName", func(t *testing.T) {
		setFailPoint(t, cl, D{{"times", 5}}, D{{"failCommands", A{"count"}}, {"errorCode", 2}, {"appName", "victim"}})
		_, err := coll.EstimatedDocumentCount(ctx)
		mustNoErr(t, err)
		victim := connect(t, srv.URI(), options.Client().SetAppName("victim"))
		if _, err := victim.Database("db").Collection("modes").EstimatedDocumentCount(ctx); err == nil {
			t.Fatal("victim's count succeeded")
		}
	})
	t.Run("hello is not affected", func(t *testing.T) {
		setFailPoint(t, cl, "alwaysOn", D{{"failCommands", A{"ping"}}, {"errorCode", 2}})
		mustNoErr(t, cl.Database("admin").RunCommand(ctx, D{{"hello", 1}}).Err())
		if err := cl.Database("admin").RunCommand(ctx, D{{"ping", 1}}).Err(); err == nil {
			t.Fatal("ping succeeded")
		}
	})
}

func TestKillWaitingChangeStream(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	coll := cl.Database("db").Collection("kill")
	cs, err := coll.Watch(ctxT(t), P{}, options.ChangeStream().SetMaxAwaitTime(5*time.Second))
	mustNoErr(t, err)
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		cs.Next(ctx)
		close(done)
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	mustNoErr(t, cl.Database("db").RunCommand(ctxT(t), D{{"killCursors", "kill"}, {"cursors", A{cs.ID()}}}).Err())
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("killCursors blocked for %v", d)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("waiting getMore was not released")
	}
}
