package mongoemu_test

import (
	"errors"
	"reflect"
	"regexp"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
)

func ids(t *testing.T, cur *mongo.Cursor) []any {
	t.Helper()
	var docs []bson.M
	mustNoErr(t, cur.All(ctxT(t), &docs))
	out := []any{}
	for _, d := range docs {
		out = append(out, d["_id"])
	}
	return out
}

func TestFindFilters(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("f")
	dec, _ := bson.ParseDecimal128("2.5")
	docs := []any{
		D{{"_id", 1}, {"a", 1}, {"tags", A{"x", "y"}}, {"n", D{{"b", 5}}}},
		D{{"_id", 2}, {"a", int64(2)}, {"tags", A{"y"}}, {"n", D{{"b", 7}}}},
		D{{"_id", 3}, {"a", 2.5}, {"tags", A{}}, {"arr", A{D{{"k", 1}, {"v", "p"}}, D{{"k", 2}, {"v", "q"}}}}},
		D{{"_id", 4}, {"a", "str"}, {"s", "Hello"}},
		D{{"_id", 5}, {"a", nil}},
		D{{"_id", 6}, {"a", dec}, {"arr", A{D{{"k", 2}, {"v", "p"}}}}},
		D{{"_id", 7}, {"a", A{1, 10}}},
		D{{"_id", "s"}, {"b", true}},
	}
	_, err := coll.InsertMany(ctx, docs)
	mustNoErr(t, err)
	for _, tc := range []struct {
		name   string
		filter any
		want   []any
	}{
		{"eq number cross-type", D{{"a", 2}}, []any{int32(2)}},
		{"gte type bracketed", D{{"_id", D{{"$gte", 5}}}}, []any{int32(5), int32(6), int32(7)}},
		{"gt decimal", D{{"a", D{{"$gt", 2.4}}}}, []any{int32(3), int32(6), int32(7)}},
		{"null matches missing", D{{"a", nil}}, []any{int32(5), "s"}},
		{"ne", D{{"a", D{{"$ne", 1}}}}, []any{int32(2), int32(3), int32(4), int32(5), int32(6), "s"}},
		{"in", D{{"a", D{{"$in", A{1, "str"}}}}}, []any{int32(1), int32(4), int32(7)}},
		{"nin", D{{"_id", D{{"$nin", A{1, 2, 3, 4, 5, 6}}}}}, []any{int32(7), "s"}},
		{"exists false", D{{"a", D{{"$exists", false}}}}, []any{"s"}},
		{"type string", D{{"a", D{{"$type", "string"}}}}, []any{int32(4)}},
		{"type number", D{{"a", D{{"$type", "number"}}}}, []any{int32(1), int32(2), int32(3), int32(6), int32(7)}},
		{"regex", D{{"s", bson.Regex{Pattern: "^hel", Options: "i"}}}, []any{int32(4)}},
		{"regex op", D{{"s", D{{"$regex", "LLO$"}, {"$options", "i"}}}}, []any{int32(4)}},
		{"array contains", D{{"tags", "y"}}, []any{int32(1), int32(2)}},
		{"array size", D{{"tags", D{{"$size", 0}}}}, []any{int32(3)}},
		{"all", D{{"tags", D{{"$all", A{"x", "y"}}}}}, []any{int32(1)}},
		{"dotted", D{{"n.b", D{{"$lt", 6}}}}, []any{int32(1)}},
		{"array of docs path", D{{"arr.k", 2}}, []any{int32(3), int32(6)}},
		{"elemMatch", D{{"arr", D{{"$elemMatch", D{{"k", 2}, {"v", "p"}}}}}}, []any{int32(6)}},
		{"array element range", D{{"a", D{{"$gt", 5}, {"$lt", 20}}}}, []any{int32(7)}},
		{"and or", D{{"$or", A{D{{"a", 1}}, D{{"b", true}}}}}, []any{int32(1), int32(7), "s"}},
		{"nor", D{{"$nor", A{D{{"a", D{{"$exists", true}}}}}}}, []any{"s"}},
		{"not", D{{"_id", D{{"$not", D{{"$lt", 6}}}}}}, []any{int32(6), int32(7), "s"}},
		{"mod", D{{"_id", D{{"$mod", A{2, 0}}}}}, []any{int32(2), int32(4), int32(6)}},
		{"expr", D{{"$expr", D{{"$eq", A{"$_id", 3}}}}}, []any{int32(3)}},
		{"index path", D{{"tags.0", "y"}}, []any{int32(2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, err := coll.Find(ctx, tc.filter)
			mustNoErr(t, err)
			if got := ids(t, cur); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
}

func TestSortTypeOrder(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("s")
	oid := bson.NewObjectID()
	_, err := coll.InsertMany(ctx, []any{
		D{{"_id", 1}, {"v", "b"}},
		D{{"_id", 2}, {"v", 3}},
		D{{"_id", 3}, {"v", nil}},
		D{{"_id", 4}, {"v", D{{"x", 1}}}},
		D{{"_id", 5}, {"v", A{5, 0.5}}},
		D{{"_id", 6}, {"v", oid}},
		D{{"_id", 7}, {"v", true}},
		D{{"_id", 8}, {"v", time.UnixMilli(0)}},
		D{{"_id", 9}, {"v", bson.MinKey{}}},
		D{{"_id", 10}, {"v", bson.MaxKey{}}},
		D{{"_id", 11}, {"v", int64(2)}},
		D{{"_id", 12}},
		D{{"_id", 13}, {"v", "a"}},
		D{{"_id", 14}, {"v", bson.Binary{Data: []byte{1}}}},
	})
	mustNoErr(t, err)
	for _, tc := range []struct {
		name string
		sort D
		want []any
	}{
		{"ascending", D{{"v", 1}, {"_id", 1}}, []any{int32(9), int32(3), int32(12), int32(5), int32(11), int32(2), int32(13), int32(1), int32(4), int32(14), int32(6), int32(7), int32(8), int32(10)}},
		{"descending", D{{"v", -1}, {"_id", 1}}, []any{int32(10), int32(8), int32(7), int32(6), int32(14), int32(4), int32(1), int32(13), int32(5), int32(2), int32(11), int32(3), int32(12), int32(9)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, err := coll.Find(ctx, D{}, options.Find().SetSort(tc.sort))
			mustNoErr(t, err)
			if got := ids(t, cur); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestFindOptions(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("o")
	var docs []any
	for i := 0; i < 250; i++ {
		docs = append(docs, D{{"_id", i}, {"n", i % 10}, {"sub", D{{"a", i}, {"b", "x"}}}})
	}
	_, err := coll.InsertMany(ctx, docs)
	mustNoErr(t, err)

	t.Run("getMore batches", func(t *testing.T) {
		cur, err := coll.Find(ctx, D{}, options.Find().SetBatchSize(7))
		mustNoErr(t, err)
		if got := ids(t, cur); len(got) != 250 {
			t.Fatalf("got %d docs", len(got))
		}
	})
	t.Run("skip limit sort", func(t *testing.T) {
		cur, err := coll.Find(ctx, D{{"n", 3}}, options.Find().SetSort(D{{"_id", -1}}).SetSkip(2).SetLimit(3))
		mustNoErr(t, err)
		if got := ids(t, cur); !reflect.DeepEqual(got, []any{int32(223), int32(213), int32(203)}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("projection inclusion", func(t *testing.T) {
		var got bson.Raw
		mustNoErr(t, coll.FindOne(ctx, D{{"_id", 5}}, options.FindOne().SetProjection(D{{"sub.b", 1}, {"n", 1}})).Decode(&got))
		if s := got.String(); s != `{"_id": {"$numberInt":"5"},"n": {"$numberInt":"5"},"sub": {"b": "x"}}` {
			t.Fatalf("got %s", s)
		}
	})
	t.Run("projection exclusion", func(t *testing.T) {
		var got bson.Raw
		mustNoErr(t, coll.FindOne(ctx, D{{"_id", 5}}, options.FindOne().SetProjection(D{{"sub.a", 0}, {"_id", 0}})).Decode(&got))
		if s := got.String(); s != `{"n": {"$numberInt":"5"},"sub": {"b": "x"}}` {
			t.Fatalf("got %s", s)
		}
	})
	t.Run("count and distinct", func(t *testing.T) {
		n, err := coll.CountDocuments(ctx, D{{"n", D{{"$lt", 2}}}})
		mustNoErr(t, err)
		if n != 50 {
			t.Fatalf("countDocuments = %d", n)
		}
		est, err := coll.EstimatedDocumentCount(ctx)
		mustNoErr(t, err)
		if est != 250 {
			t.Fatalf("estimated = %d", est)
		}
		res := coll.Distinct(ctx, "n", D{{"n", D{{"$gte", 8}}}})
		var vals []int32
		mustNoErr(t, res.Decode(&vals))
		if !reflect.DeepEqual(vals, []int32{8, 9}) {
			t.Fatalf("distinct = %v", vals)
		}
	})
	t.Run("aggregate", func(t *testing.T) {
		cur, err := coll.Aggregate(ctx, P{
			{{"$match", D{{"n", D{{"$lt", 3}}}}}},
			{{"$group", D{{"_id", "$n"}, {"c", D{{"$sum", 1}}}, {"max", D{{"$max", "$_id"}}}, {"avg", D{{"$avg", "$_id"}}}}}},
			{{"$sort", D{{"_id", 1}}}},
			{{"$project", D{{"c", 1}, {"max", 1}, {"avg", 1}, {"twice", D{{"$multiply", A{"$c", 2}}}}}}},
		})
		mustNoErr(t, err)
		var got []bson.M
		mustNoErr(t, cur.All(ctx, &got))
		if len(got) != 3 || got[1]["c"] != int32(25) || got[1]["max"] != int32(241) || got[1]["avg"] != 121.0 || got[2]["twice"] != int32(50) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("bucketAuto and count stage", func(t *testing.T) {
		cur, err := coll.Aggregate(ctx, P{{{"$bucketAuto", D{{"groupBy", "$_id"}, {"buckets", 5}}}}})
		mustNoErr(t, err)
		var got []bson.M
		mustNoErr(t, cur.All(ctx, &got))
		if len(got) != 5 || got[0]["count"] != int32(50) {
			t.Fatalf("got %v", got)
		}
		cur, err = coll.Aggregate(ctx, P{{{"$match", D{{"n", 1}}}}, {{"$count", "k"}}})
		mustNoErr(t, err)
		mustNoErr(t, cur.All(ctx, &got))
		if len(got) != 1 || got[0]["k"] != int32(25) {
			t.Fatalf("got %v", got)
		}
	})
}

func TestUpdateOperators(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("u")
	for _, tc := range []struct {
		name   string
		start  D
		update any
		want   string
	}{
		{"set appends new field, keeps order", D{{"_id", 1}, {"a", 1}, {"b", 2}}, D{{"$set", D{{"c", 3}, {"a", 9}}}}, `{"_id":1,"a":9,"b":2,"c":3}`},
		{"set nested creates", D{{"_id", 1}}, D{{"$set", D{{"x.y.z", 1}}}}, `{"_id":1,"x":{"y":{"z":1}}}`},
		{"unset", D{{"_id", 1}, {"a", 1}, {"b", 2}}, D{{"$unset", D{{"a", ""}}}}, `{"_id":1,"b":2}`},
		{"inc mul", D{{"_id", 1}, {"a", 1}, {"b", 2.5}}, D{{"$inc", D{{"a", 2}, {"c", 1}}}, {"$mul", D{{"b", 2}}}}, `{"_id":1,"a":3,"b":5.0,"c":1}`},
		{"min max", D{{"_id", 1}, {"a", 5}, {"b", 5}}, D{{"$min", D{{"a", 3}}}, {"$max", D{{"b", 3}}}}, `{"_id":1,"a":3,"b":5}`},
		{"push each slice position", D{{"_id", 1}, {"a", A{1, 2}}}, D{{"$push", D{{"a", D{{"$each", A{8, 9}}, {"$position", 0}, {"$slice", 3}}}}}}, `{"_id":1,"a":[8,9,1]}`},
		{"push creates", D{{"_id", 1}}, D{{"$push", D{{"a", 1}}}}, `{"_id":1,"a":[1]}`},
		{"addToSet each", D{{"_id", 1}, {"a", A{1}}}, D{{"$addToSet", D{{"a", D{{"$each", A{1, 2, 2}}}}}}}, `{"_id":1,"a":[1,2]}`},
		{"pull cond", D{{"_id", 1}, {"a", A{1, 5, 7}}}, D{{"$pull", D{{"a", D{{"$gte", 5}}}}}}, `{"_id":1,"a":[1]}`},
		{"pull doc", D{{"_id", 1}, {"a", A{D{{"k", 1}}, D{{"k", 2}}}}}, D{{"$pull", D{{"a", D{{"k", 2}}}}}}, `{"_id":1,"a":[{"k":1}]}`},
		{"pullAll", D{{"_id", 1}, {"a", A{1, 2, 3, 1}}}, D{{"$pullAll", D{{"a", A{1, 3}}}}}, `{"_id":1,"a":[2]}`},
		{"pop", D{{"_id", 1}, {"a", A{1, 2, 3}}}, D{{"$pop", D{{"a", -1}}}}, `{"_id":1,"a":[2,3]}`},
		{"rename", D{{"_id", 1}, {"a", 1}, {"b", 2}}, D{{"$rename", D{{"a", "z"}}}}, `{"_id":1,"b":2,"z":1}`},
		{"array index set", D{{"_id", 1}, {"a", A{1, 2}}}, D{{"$set", D{{"a.1", 5}}}}, `{"_id":1,"a":[1,5]}`},
		{"arrayFilters all", D{{"_id", 1}, {"a", A{1, 2}}}, D{{"$inc", D{{"a.$[]", 10}}}}, `{"_id":1,"a":[11,12]}`},
		{"positional", D{{"_id", 1}, {"a", A{D{{"k", 1}, {"v", 0}}, D{{"k", 2}, {"v", 0}}}}}, D{{"$set", D{{"a.$.v", 9}}}}, `{"_id":1,"a":[{"k":1,"v":0},{"k":2,"v":9}]}`},
		{"arrayFilters identifier", D{{"_id", 1}, {"a", A{1, 5, 7}}}, D{{"$set", D{{"a.$[x]", 0}}}}, `{"_id":1,"a":[1,0,0]}`},
		{"replacement keeps _id", D{{"_id", 1}, {"a", 1}}, D{{"b", 2}}, `{"_id":1,"b":2}`},
		{"pipeline", D{{"_id", 1}, {"a", 1}, {"b", 2}}, P{{{"$set", D{{"c", D{{"$add", A{"$a", "$b"}}}}}}}, {{"$unset", "a"}}}, `{"_id":1,"b":2,"c":3}`},
		{"pipeline replaceWith", D{{"_id", 1}, {"a", D{{"x", 1}}}}, P{{{"$replaceWith", D{{"$mergeObjects", A{D{{"_id", "$_id"}}, "$a"}}}}}}, `{"_id":1,"x":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := coll.DeleteMany(ctx, D{})
			mustNoErr(t, err)
			_, err = coll.InsertOne(ctx, tc.start)
			mustNoErr(t, err)
			filter := D{{"_id", 1}}
			opts := options.UpdateOne()
			switch tc.name {
			case "positional":
				filter = append(filter, kv{"a.k", 2})
			case "arrayFilters identifier":
				opts.SetArrayFilters([]any{D{{"x", D{{"$gte", 5}}}}})
			}
			if d, ok := tc.update.(D); ok && len(d) > 0 && d[0].K[0] != '$' {
				_, err = coll.ReplaceOne(ctx, filter, d)
			} else {
				_, err = coll.UpdateOne(ctx, filter, tc.update, opts)
			}
			mustNoErr(t, err)
			var got bson.Raw
			mustNoErr(t, coll.FindOne(ctx, D{{"_id", 1}}).Decode(&got))
			js, _ := bson.MarshalExtJSON(got, false, false)
			if string(js) != tc.want {
				t.Fatalf("got %s want %s", js, tc.want)
			}
		})
	}
}

func TestWriteResults(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("w")
	_, err := coll.InsertOne(ctx, D{{"_id", 1}, {"a", 1}})
	mustNoErr(t, err)

	t.Run("duplicate key", func(t *testing.T) {
		_, err := coll.InsertOne(ctx, D{{"_id", 1}})
		var we mongo.WriteException
		if !errors.As(err, &we) || len(we.WriteErrors) != 1 || we.WriteErrors[0].Code != 11000 {
			t.Fatalf("err = %v", err)
		}
		if !regexp.MustCompile(`^E11000 duplicate key error collection: db.w index: _id_ dup key: \{ _id: 1 \}$`).MatchString(we.WriteErrors[0].Message) {
			t.Fatalf("message %q", we.WriteErrors[0].Message)
		}
		if !mongo.IsDuplicateKeyError(err) {
			t.Fatal("not a duplicate key error")
		}
	})
	t.Run("unordered insertMany continues", func(t *testing.T) {
		res, err := coll.InsertMany(ctx, []any{D{{"_id", 2}}, D{{"_id", 1}}, D{{"_id", 3}}}, options.InsertMany().SetOrdered(false))
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 1 || bwe.WriteErrors[0].Index != 1 {
			t.Fatalf("err = %v", err)
		}
		_ = res
		n, _ := coll.CountDocuments(ctx, D{})
		if n != 3 {
			t.Fatalf("count %d", n)
		}
	})
	t.Run("unique secondary index", func(t *testing.T) {
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: D{{"email", 1}}, Options: options.Index().SetUnique(true).SetSparse(true)})
		mustNoErr(t, err)
		_, err = coll.InsertOne(ctx, D{{"_id", 10}, {"email", "a@b"}})
		mustNoErr(t, err)
		_, err = coll.InsertOne(ctx, D{{"_id", 11}, {"email", "a@b"}})
		if !mongo.IsDuplicateKeyError(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("upsert", func(t *testing.T) {
		res, err := coll.UpdateOne(ctx, D{{"_id", 20}, {"k", "v"}}, D{{"$set", D{{"x", 1}}}, {"$setOnInsert", D{{"created", true}}}}, options.UpdateOne().SetUpsert(true))
		mustNoErr(t, err)
		if res.UpsertedID != int32(20) {
			t.Fatalf("upserted %v", res.UpsertedID)
		}
		var got bson.Raw
		mustNoErr(t, coll.FindOne(ctx, D{{"_id", 20}}).Decode(&got))
		if js, _ := bson.MarshalExtJSON(got, false, false); string(js) != `{"_id":20,"k":"v","x":1,"created":true}` {
			t.Fatalf("got %s", js)
		}
	})
	t.Run("update many and delete", func(t *testing.T) {
		res, err := coll.UpdateMany(ctx, D{{"_id", D{{"$in", A{1, 2, 3}}}}}, D{{"$set", D{{"m", 1}}}})
		mustNoErr(t, err)
		if res.MatchedCount != 3 || res.ModifiedCount != 3 {
			t.Fatalf("res %+v", res)
		}
		res, err = coll.UpdateMany(ctx, D{{"_id", D{{"$in", A{1, 2, 3}}}}}, D{{"$set", D{{"m", 1}}}})
		mustNoErr(t, err)
		if res.MatchedCount != 3 || res.ModifiedCount != 0 {
			t.Fatalf("noop res %+v", res)
		}
		dr, err := coll.DeleteOne(ctx, D{{"m", 1}})
		mustNoErr(t, err)
		if dr.DeletedCount != 1 {
			t.Fatal(dr)
		}
		dr, err = coll.DeleteMany(ctx, D{{"m", 1}})
		mustNoErr(t, err)
		if dr.DeletedCount != 2 {
			t.Fatal(dr)
		}
	})
	t.Run("findAndModify", func(t *testing.T) {
		var got bson.M
		mustNoErr(t, coll.FindOneAndUpdate(ctx, D{{"_id", 20}}, D{{"$inc", D{{"x", 1}}}}, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&got))
		if got["x"] != int32(2) {
			t.Fatalf("got %v", got)
		}
		mustNoErr(t, coll.FindOneAndDelete(ctx, D{{"_id", 20}}).Decode(&got))
		if err := coll.FindOne(ctx, D{{"_id", 20}}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("immutable _id", func(t *testing.T) {
		_, err := coll.UpdateOne(ctx, D{{"_id", 10}}, D{{"$set", D{{"_id", 99}}}})
		var we mongo.WriteException
		if !errors.As(err, &we) || we.WriteErrors[0].Code != 66 {
			t.Fatalf("err %v", err)
		}
	})
}

func TestDDL(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	db := cl.Database("ddl")
	mustNoErr(t, db.CreateCollection(ctx, "a", options.CreateCollection().SetChangeStreamPreAndPostImages(bson.M{"enabled": true})))
	err := db.CreateCollection(ctx, "a")
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code != 48 || ce.Name != "NamespaceExists" {
		t.Fatalf("err %v", err)
	}
	specs, err := db.ListCollectionSpecifications(ctx, D{{"name", "a"}})
	mustNoErr(t, err)
	if len(specs) != 1 || specs[0].UUID == nil || !specs[0].Options.Lookup("changeStreamPreAndPostImages", "enabled").Boolean() {
		t.Fatalf("specs %+v", specs)
	}
	names, err := db.ListCollectionNames(ctx, D{})
	mustNoErr(t, err)
	if !reflect.DeepEqual(names, []string{"a"}) {
		t.Fatal(names)
	}
	mustNoErr(t, cl.Database("admin").RunCommand(ctx, D{{"renameCollection", "ddl.a"}, {"to", "ddl.b"}}).Err())
	err = cl.Database("admin").RunCommand(ctx, D{{"renameCollection", "ddl.nope"}, {"to", "ddl.c"}}).Err()
	if !errors.As(err, &ce) || ce.Code != 26 {
		t.Fatalf("err %v", err)
	}
	dbs, err := cl.ListDatabaseNames(ctx, D{})
	mustNoErr(t, err)
	if !reflect.DeepEqual(dbs, []string{"ddl"}) {
		t.Fatal(dbs)
	}
	mustNoErr(t, db.Collection("b").Drop(ctx))
	mustNoErr(t, db.Drop(ctx))
	err = cl.Database("x").RunCommand(ctx, D{{"noSuchCommand", 1}}).Err()
	if !errors.As(err, &ce) || ce.Code != 59 || ce.Name != "CommandNotFound" {
		t.Fatalf("err %v", err)
	}
}
