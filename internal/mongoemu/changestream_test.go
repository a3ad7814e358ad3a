package mongoemu_test

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
)

func watch(t *testing.T, w interface {
	Watch(context.Context, any, ...options.Lister[options.ChangeStreamOptions]) (*mongo.ChangeStream, error)
}, pipeline any, opts *options.ChangeStreamOptionsBuilder) *mongo.ChangeStream {
	t.Helper()
	if pipeline == nil {
		pipeline = P{}
	}
	if opts == nil {
		opts = options.ChangeStream()
	}
	cs, err := w.Watch(ctxT(t), pipeline, opts)
	mustNoErr(t, err)
	t.Cleanup(func() { _ = cs.Close(context.Background()) })
	return cs
}

func TestChangeEventShapes(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("ev")
	_, err := coll.InsertOne(ctx, D{{"_id", 0}})
	mustNoErr(t, err)
	cs := watch(t, coll, nil, options.ChangeStream().SetFullDocument(options.UpdateLookup))

	_, err = coll.InsertOne(ctx, D{{"_id", 1}, {"a", 1}, {"n", D{{"x", 1}}}, {"arr", A{1}}})
	mustNoErr(t, err)
	_, err = coll.UpdateOne(ctx, D{{"_id", 1}}, D{{"$set", D{{"n.x", 2}, {"b", "new"}}}, {"$unset", D{{"a", 1}}}, {"$push", D{{"arr", 2}}}})
	mustNoErr(t, err)
	_, err = coll.ReplaceOne(ctx, D{{"_id", 1}}, D{{"r", true}})
	mustNoErr(t, err)
	_, err = coll.DeleteOne(ctx, D{{"_id", 1}})
	mustNoErr(t, err)

	tests := []struct {
		name   string
		keys   []string
		checks map[string]string // dotted path -> relaxed ext JSON of value
	}{
		{"insert", []string{"_id", "operationType", "clusterTime", "wallTime", "fullDocument", "ns", "documentKey"},
			map[string]string{"operationType": `"insert"`, "ns": `{"db":"db","coll":"ev"}`, "documentKey": `{"_id":1}`, "fullDocument": `{"_id":1,"a":1,"n":{"x":1},"arr":[1]}`}},
		{"update", []string{"_id", "operationType", "clusterTime", "wallTime", "ns", "documentKey", "updateDescription", "fullDocument"},
			map[string]string{"updateDescription": `{"updatedFields":{"n.x":2,"b":"new","arr.1":2},"removedFields":["a"],"truncatedArrays":[]}`, "fullDocument": `null`}},
		{"replace", []string{"_id", "operationType", "clusterTime", "wallTime", "fullDocument", "ns", "documentKey"},
			map[string]string{"fullDocument": `{"_id":1,"r":true}`}},
		{"delete", []string{"_id", "operationType", "clusterTime", "wallTime", "ns", "documentKey"},
			map[string]string{"documentKey": `{"_id":1}`}},
	}
	var lastTS bson.Timestamp
	for _, tc := range tests {
		ev := nextEvent(t, cs)
		t.Run(tc.name, func(t *testing.T) {
			if got := keys(t, ev); !reflect.DeepEqual(got, tc.keys) {
				t.Errorf("keys %v want %v", got, tc.keys)
			}
			for path, want := range tc.checks {
				v := ev.Lookup(strings.Split(path, ".")...)
				got, _ := bson.MarshalExtJSON(D{{"v", v}}, false, false)
				if string(got) != `{"v":`+want+`}` {
					t.Errorf("%s = %s want %s", path, got, want)
				}
			}
			if v := ev.Lookup("operationType").StringValue(); v != tc.name {
				t.Errorf("operationType %s", v)
			}
			if ev.Lookup("clusterTime").Type != bson.TypeTimestamp || ev.Lookup("wallTime").Type != bson.TypeDateTime {
				t.Errorf("types: %v", ev)
			}
			ts, inc := ev.Lookup("clusterTime").Timestamp()
			cur := bson.Timestamp{T: ts, I: inc}
			if !cur.After(lastTS) {
				t.Errorf("clusterTime not increasing: %v after %v", cur, lastTS)
			}
			lastTS = cur
			if _, ok := ev.Lookup("_id", "_data").StringValueOK(); !ok {
				t.Errorf("_id = %v", ev.Lookup("_id"))
			}
		})
	}
}

func TestChangeStreamScopes(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	db0, db1 := cl.Database("d0"), cl.Database("d1")
	collCS := watch(t, db0.Collection("c0"), nil, nil)
	dbCS := watch(t, db0, nil, nil)
	clusterCS := watch(t, cl, nil, nil)
	for _, ins := range []struct {
		coll *mongo.Collection
		v    int
	}{{db0.Collection("c1"), 1}, {db1.Collection("c0"), 2}, {db0.Collection("c0"), 3}} {
		_, err := ins.coll.InsertOne(ctx, D{{"v", ins.v}})
		mustNoErr(t, err)
	}
	for _, tc := range []struct {
		name string
		cs   *mongo.ChangeStream
		want []int32
	}{
		{"collection", collCS, []int32{3}},
		{"database", dbCS, []int32{1, 3}},
		{"cluster", clusterCS, []int32{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range tc.want {
				ev := nextEvent(t, tc.cs)
				if got := ev.Lookup("fullDocument", "v").Int32(); got != w {
					t.Fatalf("got v=%d want %d (%v)", got, w, ev)
				}
			}
		})
	}
}

func TestChangeStreamPipeline(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("p")
	t.Run("match and project", func(t *testing.T) {
		cs := watch(t, coll, P{
			{{"$match", D{{"operationType", "insert"}, {"fullDocument.k", D{{"$gt", 1}}}}}},
			{{"$project", D{{"operationType", 1}, {"fullDocument.k", 1}, {"extra", "x"}}}},
		}, nil)
		_, err := coll.InsertMany(ctx, []any{D{{"k", 1}}, D{{"k", 2}}})
		mustNoErr(t, err)
		ev := nextEvent(t, cs)
		if got := toJSON(ev); !strings.Contains(got, `"operationType":"insert","fullDocument":{"k":2},"extra":"x"}`) || !strings.HasPrefix(got, `{"_id":{"_data":`) {
			t.Fatalf("event %s", got)
		}
	})
	t.Run("projecting out _id fails", func(t *testing.T) {
		cs := watch(t, coll, P{{{"$project", D{{"_id", 0}}}}}, nil)
		_, err := coll.InsertOne(ctx, D{{"z", 1}})
		mustNoErr(t, err)
		ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if cs.Next(ctx2) {
			t.Fatal("expected error")
		}
		var se mongo.ServerError
		if !errors.As(cs.Err(), &se) || !se.HasErrorCode(280) || !se.HasErrorLabel("NonResumableChangeStreamError") {
			t.Fatalf("err %v", cs.Err())
		}
	})
	t.Run("invalid stage", func(t *testing.T) {
		_, err := coll.Watch(ctx, P{{{"$unsupported", "foo"}}})
		var se mongo.ServerError
		if !errors.As(err, &se) || !se.HasErrorCode(40324) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestUpdateDescriptions(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("ud")
	for _, tc := range []struct {
		name     string
		start    D
		update   any
		expanded bool
		want     string
	}{
		{"nested set", D{{"a", D{{"b", 1}}}}, D{{"$set", D{{"a.b", 2}}}}, false, `{"updatedFields":{"a.b":2},"removedFields":[],"truncatedArrays":[]}`},
		{"new subdocument", D{}, D{{"$set", D{{"x.y", 1}}}}, false, `{"updatedFields":{"x":{"y":1}},"removedFields":[],"truncatedArrays":[]}`},
		{"pipeline truncation", D{{"array", A{"foo", D{{"a", "bar"}}, 1, 2, 3}}}, P{{{"$set", D{{"array", A{"foo", D{{"a", "bar"}}}}}}}}, false, `{"updatedFields":{},"removedFields":[],"truncatedArrays":[{"field":"array","newSize":2}]}`},
		{"pop reports array", D{{"arr", A{1, 2, 3}}}, D{{"$pop", D{{"arr", 1}}}}, false, `{"updatedFields":{"arr":[1,2]},"removedFields":[],"truncatedArrays":[]}`},
		{"disambiguated numeric field", D{{"a", D{{"1", 1}}}}, D{{"$set", D{{"a.1", 2}}}}, true, `{"updatedFields":{"a.1":2},"removedFields":[],"truncatedArrays":[],"disambiguatedPaths":{"a.1":["a","1"]}}`},
		{"disambiguated array index", D{{"a", A{D{{"1", 1}}}}}, D{{"$set", D{{"a.0.1", 2}}}}, true, `{"updatedFields":{"a.0.1":2},"removedFields":[],"truncatedArrays":[],"disambiguatedPaths":{"a.0.1":["a",0,"1"]}}`},
		{"expanded without ambiguity", D{{"a", 1}}, D{{"$inc", D{{"a", 1}}}}, true, `{"updatedFields":{"a":2},"removedFields":[],"truncatedArrays":[],"disambiguatedPaths":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := coll.DeleteMany(ctx, D{})
			mustNoErr(t, err)
			_, err = coll.InsertOne(ctx, append(D{{"_id", 1}}, tc.start...))
			mustNoErr(t, err)
			cs := watch(t, coll, nil, options.ChangeStream().SetShowExpandedEvents(tc.expanded))
			_, err = coll.UpdateOne(ctx, D{{"_id", 1}}, tc.update)
			mustNoErr(t, err)
			ev := nextEvent(t, cs)
			if got := toJSON(ev.Lookup("updateDescription").Document()); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestPrePostImages(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	db := cl.Database("img")
	mustNoErr(t, db.CreateCollection(ctx, "on", options.CreateCollection().SetChangeStreamPreAndPostImages(bson.M{"enabled": true})))
	mustNoErr(t, db.CreateCollection(ctx, "off"))
	for _, tc := range []struct {
		coll, fullDoc, before string
		wantFull, wantBefore  string // "" = absent, "error" = error expected
	}{
		{"on", "whenAvailable", "whenAvailable", `{"_id":1,"x":1}`, `{"_id":1}`},
		{"on", "required", "required", `{"_id":1,"x":1}`, `{"_id":1}`},
		{"off", "whenAvailable", "whenAvailable", `null`, `null`},
		{"off", "required", "off", "error", ""},
		{"off", "default", "required", "error", ""},
		{"on", "default", "off", "", ""},
	} {
		t.Run(tc.coll+"/"+tc.fullDoc+"/"+tc.before, func(t *testing.T) {
			coll := db.Collection(tc.coll)
			_, err := coll.DeleteMany(ctx, D{})
			mustNoErr(t, err)
			_, err = coll.InsertOne(ctx, D{{"_id", 1}})
			mustNoErr(t, err)
			cs := watch(t, coll, nil, options.ChangeStream().SetFullDocument(options.FullDocument(tc.fullDoc)).SetFullDocumentBeforeChange(options.FullDocument(tc.before)))
			_, err = coll.UpdateOne(ctx, D{{"_id", 1}}, D{{"$set", D{{"x", 1}}}})
			mustNoErr(t, err)
			ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if !cs.Next(ctx2) {
				if tc.wantFull != "error" {
					t.Fatalf("err %v", cs.Err())
				}
				var se mongo.ServerError
				if !errors.As(cs.Err(), &se) {
					t.Fatalf("err %v", cs.Err())
				}
				return
			}
			if tc.wantFull == "error" {
				t.Fatalf("expected error, got %v", cs.Current)
			}
			check := func(field, want string) {
				v, err := cs.Current.LookupErr(field)
				if want == "" {
					if err == nil {
						t.Errorf("%s present: %v", field, v)
					}
					return
				}
				if got := strings.TrimSuffix(strings.TrimPrefix(toJSON(D{{"v", v}}), `{"v":`), "}"); got != want {
					t.Errorf("%s = %s want %s", field, got, want)
				}
			}
			check("fullDocument", tc.wantFull)
			check("fullDocumentBeforeChange", tc.wantBefore)
		})
	}
	t.Run("delete pre-image", func(t *testing.T) {
		coll := db.Collection("on")
		cs := watch(t, coll, nil, options.ChangeStream().SetFullDocumentBeforeChange(options.Required))
		_, err := coll.DeleteOne(ctx, D{{"_id", 1}})
		mustNoErr(t, err)
		ev := nextEvent(t, cs)
		if got := toJSON(ev.Lookup("fullDocumentBeforeChange")); got != `{"_id":1,"x":1}` {
			t.Fatalf("got %s", got)
		}
	})
}

func TestExpandedEvents(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	db := cl.Database("ex")
	mustNoErr(t, db.CreateCollection(ctx, "foo"))
	cs := watch(t, db, nil, options.ChangeStream().SetShowExpandedEvents(true))
	coll := db.Collection("c")
	_, err := coll.InsertOne(ctx, D{{"a", 1}})
	mustNoErr(t, err)
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: D{{"x", 1}}})
	mustNoErr(t, err)
	mustNoErr(t, coll.Indexes().DropOne(ctx, "x_1"))
	mustNoErr(t, db.RunCommand(ctx, D{{"collMod", "c"}, {"changeStreamPreAndPostImages", D{{"enabled", true}}}}).Err())
	mustNoErr(t, cl.Database("admin").RunCommand(ctx, D{{"renameCollection", "ex.c"}, {"to", "ex.foo"}, {"dropTarget", true}}).Err())
	for _, tc := range []struct {
		op     string
		fields []string
	}{
		{"create", []string{"collectionUUID", "operationDescription"}},
		{"insert", []string{"collectionUUID", "fullDocument"}},
		{"createIndexes", []string{"collectionUUID", "operationDescription"}},
		{"dropIndexes", []string{"collectionUUID", "operationDescription"}},
		{"modify", []string{"collectionUUID", "operationDescription"}},
		{"rename", []string{"collectionUUID", "to", "operationDescription"}},
	} {
		ev := nextEvent(t, cs)
		t.Run(tc.op, func(t *testing.T) {
			if got := ev.Lookup("operationType").StringValue(); got != tc.op {
				t.Fatalf("operationType %s want %s: %v", got, tc.op, ev)
			}
			for _, f := range tc.fields {
				if _, err := ev.LookupErr(f); err != nil {
					t.Errorf("missing %s in %v", f, ev)
				}
			}
			if tc.op == "rename" {
				if _, err := ev.LookupErr("operationDescription", "dropTarget"); err != nil {
					t.Errorf("no dropTarget: %v", ev)
				}
			}
			if tc.op == "createIndexes" {
				if got := toJSON(ev.Lookup("operationDescription")); got != `{"indexes":[{"v":2,"key":{"x":1},"name":"x_1"}]}` {
					t.Errorf("operationDescription %s", got)
				}
			}
		})
	}
}

func TestInvalidateAndResume(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	db := cl.Database("inv")
	for _, tc := range []struct {
		name   string
		action func(t *testing.T, coll *mongo.Collection)
		first  string
	}{
		{"drop", func(t *testing.T, coll *mongo.Collection) { mustNoErr(t, coll.Drop(ctx)) }, "drop"},
		{"rename", func(t *testing.T, coll *mongo.Collection) {
			mustNoErr(t, cl.Database("admin").RunCommand(ctx, D{{"renameCollection", "inv." + coll.Name()}, {"to", "inv." + coll.Name() + "_renamed"}}).Err())
		}, "rename"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			coll := db.Collection("c_" + tc.name)
			_, err := coll.InsertOne(ctx, D{{"_id", 1}})
			mustNoErr(t, err)
			cs := watch(t, coll, nil, nil)
			tc.action(t, coll)
			ev := nextEvent(t, cs)
			if got := ev.Lookup("operationType").StringValue(); got != tc.first {
				t.Fatalf("first event %v", ev)
			}
			if tc.name == "rename" {
				if got := toJSON(ev.Lookup("to")); got != `{"db":"inv","coll":"c_rename_renamed"}` {
					t.Fatalf("to = %s", got)
				}
			}
			inv := nextEvent(t, cs)
			if got := inv.Lookup("operationType").StringValue(); got != "invalidate" {
				t.Fatalf("second event %v", inv)
			}
			if cs.Next(ctx) {
				t.Fatalf("stream continued after invalidate: %v", cs.Current)
			}
			token := cs.ResumeToken()

			_, err = coll.Watch(ctx, P{}, options.ChangeStream().SetResumeAfter(token))
			var se mongo.ServerError
			if !errors.As(err, &se) || !se.HasErrorCode(260) {
				t.Fatalf("resumeAfter invalidate: %v", err)
			}
			cs2 := watch(t, coll, nil, options.ChangeStream().SetStartAfter(token))
			_, err = coll.InsertOne(ctx, D{{"_id", 2}})
			mustNoErr(t, err)
			ev = nextEvent(t, cs2)
			if ev.Lookup("operationType").StringValue() != "insert" || ev.Lookup("documentKey", "_id").Int32() != 2 {
				t.Fatalf("after startAfter: %v", ev)
			}
		})
	}
	t.Run("dropDatabase", func(t *testing.T) {
		d := cl.Database("inv2")
		_, err := d.Collection("a").InsertOne(ctx, D{{"_id", 1}})
		mustNoErr(t, err)
		cs := watch(t, d, nil, nil)
		mustNoErr(t, d.Drop(ctx))
		var ops []string
		for i := 0; i < 3; i++ {
			ops = append(ops, nextEvent(t, cs).Lookup("operationType").StringValue())
		}
		if !reflect.DeepEqual(ops, []string{"drop", "dropDatabase", "invalidate"}) {
			t.Fatalf("ops %v", ops)
		}
	})
}

func TestResumeOptions(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("r")
	cs := watch(t, coll, nil, nil)
	for i := 1; i <= 3; i++ {
		_, err := coll.InsertOne(ctx, D{{"_id", i}})
		mustNoErr(t, err)
	}
	first := nextEvent(t, cs)
	tok := first.Lookup("_id").Document()
	ts, inc := first.Lookup("clusterTime").Timestamp()
	for _, tc := range []struct {
		name string
		opts *options.ChangeStreamOptionsBuilder
		want []int32
	}{
		{"resumeAfter", options.ChangeStream().SetResumeAfter(tok), []int32{2, 3}},
		{"startAfter", options.ChangeStream().SetStartAfter(tok), []int32{2, 3}},
		{"startAtOperationTime", options.ChangeStream().SetStartAtOperationTime(&bson.Timestamp{T: ts, I: inc}), []int32{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := watch(t, coll, nil, tc.opts)
			for _, w := range tc.want {
				if got := nextEvent(t, cs).Lookup("documentKey", "_id").Int32(); got != w {
					t.Fatalf("got %d want %d", got, w)
				}
			}
		})
	}
}

func TestPostBatchResumeTokenAdvances(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("pbrt")
	cs := watch(t, coll, nil, options.ChangeStream().SetMaxAwaitTime(50*time.Millisecond))
	t0 := cs.ResumeToken()
	// Writes elsewhere advance the cluster time; the idle stream's token must follow.
	_, err := cl.Database("db").Collection("other").InsertOne(ctx, D{{"x", 1}})
	mustNoErr(t, err)
	start := time.Now()
	// The first TryNext consumes the (empty) first batch, the second issues getMore.
	for i := 0; i < 2; i++ {
		if cs.TryNext(ctx) {
			t.Fatalf("unexpected event %v", cs.Current)
		}
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("getMore did not honour maxAwaitTime")
	}
	t1 := cs.ResumeToken()
	if t0 == nil || t1 == nil || string(t1.Lookup("_data").StringValue()) <= string(t0.Lookup("_data").StringValue()) {
		t.Fatalf("token did not advance: %v -> %v", t0, t1)
	}
	// The stream resumes from the high-water mark without replaying anything.
	_, err = coll.InsertOne(ctx, D{{"_id", "after"}})
	mustNoErr(t, err)
	cs2 := watch(t, coll, nil, options.ChangeStream().SetResumeAfter(t1))
	if got := nextEvent(t, cs2).Lookup("documentKey", "_id").StringValue(); got != "after" {
		t.Fatalf("got %s", got)
	}
}

func TestIdleStreamTokenFollowsClock(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("idle")
	_, err := coll.InsertOne(ctx, D{{"_id", 1}})
	mustNoErr(t, err)
	cs := watch(t, coll, nil, options.ChangeStream().SetMaxAwaitTime(100*time.Millisecond))
	tokenSec := func() int64 {
		// Token layout: "82" + 16 hex digits of the cluster time (seconds first).
		sec, err := strconv.ParseUint(cs.ResumeToken().Lookup("_data").StringValue()[2:10], 16, 32)
		mustNoErr(t, err)
		return int64(sec)
	}
	start := tokenSec()
	deadline := time.Now().Add(5 * time.Second)
	for tokenSec() < start+2 {
		if time.Now().After(deadline) {
			t.Fatalf("idle resume token stuck at %d", tokenSec())
		}
		if cs.TryNext(ctx) {
			t.Fatalf("unexpected event %v", cs.Current)
		}
	}
}

func TestAwaitDataWakesImmediately(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	coll := cl.Database("db").Collection("wake")
	cs := watch(t, coll, nil, options.ChangeStream().SetMaxAwaitTime(5*time.Second))
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = coll.InsertOne(context.Background(), D{{"_id", 1}})
	}()
	start := time.Now()
	ev := nextEvent(t, cs)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("event took %v", d)
	}
	if ev.Lookup("documentKey", "_id").Int32() != 1 {
		t.Fatal(ev)
	}
}

func TestHistoryLost(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{OplogMaxEvents: 5})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("h")
	cs := watch(t, coll, nil, options.ChangeStream().SetBatchSize(1))
	_, err := coll.InsertOne(ctx, D{{"_id", 0}})
	mustNoErr(t, err)
	first := nextEvent(t, cs)
	tok := first.Lookup("_id").Document()
	ts, inc := first.Lookup("clusterTime").Timestamp()
	for i := 1; i <= 10; i++ {
		_, err := coll.InsertOne(ctx, D{{"_id", i}})
		mustNoErr(t, err)
	}
	is286 := func(err error) bool {
		var se mongo.ServerError
		return errors.As(err, &se) && se.HasErrorCode(286)
	}
	t.Run("open with resumeAfter", func(t *testing.T) {
		_, err := coll.Watch(ctx, P{}, options.ChangeStream().SetResumeAfter(tok))
		if !is286(err) || !strings.Contains(err.Error(), "Resume of change stream was not possible, as the resume point may no longer be in the oplog.") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("open with startAfter", func(t *testing.T) {
		_, err := coll.Watch(ctx, P{}, options.ChangeStream().SetStartAfter(tok))
		if !is286(err) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("open with startAtOperationTime", func(t *testing.T) {
		_, err := coll.Watch(ctx, P{}, options.ChangeStream().SetStartAtOperationTime(&bson.Timestamp{T: ts, I: inc}))
		if !is286(err) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("open cursor falls off", func(t *testing.T) {
		ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if cs.Next(ctx2) {
			t.Fatalf("got event %v", cs.Current)
		}
		if !is286(cs.Err()) {
			t.Fatalf("err %v", cs.Err())
		}
	})
	t.Run("oplog oldest entry", func(t *testing.T) {
		var e bson.Raw
		mustNoErr(t, cl.Database("local").Collection("oplog.rs").FindOne(ctx, D{}, options.FindOne().SetSort(D{{"$natural", 1}})).Decode(&e))
		if e.Lookup("ts").Type != bson.TypeTimestamp || e.Lookup("op").StringValue() != "i" || e.Lookup("ns").StringValue() != "db.h" || e.Lookup("wall").Type != bson.TypeDateTime {
			t.Fatalf("oplog entry %v", e)
		}
		if got := e.Lookup("o", "_id").Int32(); got != 6 {
			t.Fatalf("oldest entry is _id %d, want 6", got)
		}
	})
}

func TestOversizedEvent(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("big")
	cs := watch(t, coll, nil, nil)
	// The document fits in 16 MiB; its insert event (document plus event
	// fields) does not, which MongoDB reports as BSONObjectTooLarge.
	_, err := coll.InsertOne(ctx, D{{"_id", 1}, {"s", strings.Repeat("x", 16*1024*1024-100)}})
	mustNoErr(t, err)
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if cs.Next(ctx2) {
		t.Fatal("expected an error")
	}
	var se mongo.ServerError
	if !errors.As(cs.Err(), &se) || !se.HasErrorCode(10334) {
		t.Fatalf("err %v", cs.Err())
	}
}

func TestOplogMaxBytes(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{OplogMaxBytes: 4000})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("bytes")
	cs := watch(t, coll, nil, nil)
	pad := strings.Repeat("p", 900)
	_, err := coll.InsertOne(ctx, D{{"_id", 0}, {"pad", pad}})
	mustNoErr(t, err)
	tok := nextEvent(t, cs).Lookup("_id").Document()
	for i := 1; i <= 10; i++ {
		_, err := coll.InsertOne(ctx, D{{"_id", i}, {"pad", pad}})
		mustNoErr(t, err)
	}
	oplog := cl.Database("local").Collection("oplog.rs")
	n, err := oplog.CountDocuments(ctx, D{})
	mustNoErr(t, err)
	if n < 1 || n > 4 {
		t.Fatalf("oplog holds %d entries, want at most 4 of ~1 KB", n)
	}
	var newest bson.Raw
	mustNoErr(t, oplog.FindOne(ctx, D{}, options.FindOne().SetSort(D{{"$natural", -1}})).Decode(&newest))
	if newest.Lookup("o", "_id").Int32() != 10 {
		t.Fatalf("newest entry %v", newest)
	}
	_, err = coll.Watch(ctx, P{}, options.ChangeStream().SetResumeAfter(tok))
	var se mongo.ServerError
	if !errors.As(err, &se) || !se.HasErrorCode(286) {
		t.Fatalf("err %v", err)
	}
}
