package specrunner

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// opResult is what an operation produced: a BSON value (Type 0 when the
// operation returns none), an entity to save, or the error the driver
// returned. A runner problem (an unsupported argument, say) is returned
// separately by execute, and is never matched against expectError.
type opResult struct {
	value  bson.RawValue
	entity any
	err    error
}

// execute runs one operation. The error it returns is a runner failure;
// the driver's outcome is in opResult.
func (r *Runner) execute(ctx context.Context, st *testState, op Operation) (opResult, error) {
	a := args{doc: op.Arguments}
	if op.Object == "testRunner" {
		return opResult{}, r.special(ctx, st, op.Name, a)
	}
	e := st.entities
	switch e.kind(op.Object) {
	case "client":
		return clientOperation(ctx, e, e.clients[op.Object], op.Name, a)
	case "database":
		return databaseOperation(ctx, e, e.dbs[op.Object], op.Name, a)
	case "collection":
		return collectionOperation(ctx, e, e.colls[op.Object], op.Name, a)
	case "changeStream":
		return r.changeStreamOperation(ctx, e.streams[op.Object], op.Name, a)
	case "":
		return opResult{}, fmt.Errorf("no entity %q", op.Object)
	default:
		return opResult{}, fmt.Errorf("operations on %s entities are not supported by this runner", e.kind(op.Object))
	}
}

func unsupported(kind, name string) error {
	return fmt.Errorf("operation %s on a %s is not supported by this runner", name, kind)
}

func clientOperation(ctx context.Context, e *entities, c *clientEntity, name string, a args) (opResult, error) {
	switch name {
	case "createChangeStream":
		return createChangeStream(ctx, e, a, func(ctx context.Context, pl any, o *options.ChangeStreamOptionsBuilder) (*mongo.ChangeStream, error) {
			return c.client.Watch(ctx, pl, o)
		})
	}
	return opResult{}, unsupported("client", name)
}

func databaseOperation(ctx context.Context, e *entities, db *mongo.Database, name string, a args) (opResult, error) {
	switch name {
	case "createChangeStream":
		return createChangeStream(ctx, e, a, func(ctx context.Context, pl any, o *options.ChangeStreamOptionsBuilder) (*mongo.ChangeStream, error) {
			return db.Watch(ctx, pl, o)
		})
	case "runCommand":
		if err := a.check(name, "command", "commandName", "readPreference", "session"); err != nil {
			return opResult{}, err
		}
		cmd, err := a.document("command")
		if err != nil {
			return opResult{}, err
		}
		if cn, err := a.str("commandName"); err != nil {
			return opResult{}, err
		} else if first, _ := cmd.IndexErr(0); first.Key() != cn {
			return opResult{}, fmt.Errorf("commandName %q is not the command's first key %q", cn, first.Key())
		}
		var ropts []options.Lister[options.RunCmdOptions]
		if d, ok := a.value("readPreference").DocumentOK(); ok {
			rp, err := readPreference(d)
			if err != nil {
				return opResult{}, err
			}
			ropts = append(ropts, options.RunCmd().SetReadPreference(rp))
		}
		ctx, err = a.withSession(ctx, e)
		if err != nil {
			return opResult{}, err
		}
		reply, err := db.RunCommand(ctx, cmd, ropts...).Raw()
		if err != nil {
			return opResult{err: err}, nil
		}
		return opResult{value: docValue(reply)}, nil
	case "createCollection":
		if err := a.check(name, "collection", "viewOn", "pipeline", "changeStreamPreAndPostImages",
			"capped", "size", "max", "expireAfterSeconds", "validator", "session"); err != nil {
			return opResult{}, err
		}
		coll, err := a.str("collection")
		if err != nil {
			return opResult{}, err
		}
		ctx, err = a.withSession(ctx, e)
		if err != nil {
			return opResult{}, err
		}
		if a.has("viewOn") {
			viewOn, err := a.str("viewOn")
			if err != nil {
				return opResult{}, err
			}
			pipeline := bson.A{}
			if a.has("pipeline") {
				stages, err := a.pipeline("pipeline")
				if err != nil {
					return opResult{}, err
				}
				for _, s := range stages {
					pipeline = append(pipeline, s)
				}
			}
			return opResult{err: db.CreateView(ctx, coll, viewOn, pipeline)}, nil
		}
		o := options.CreateCollection()
		if d, ok := a.value("changeStreamPreAndPostImages").DocumentOK(); ok {
			o.SetChangeStreamPreAndPostImages(d)
		}
		if b, ok := a.value("capped").BooleanOK(); ok {
			o.SetCapped(b)
		}
		if a.has("size") {
			o.SetSizeInBytes(a.value("size").AsInt64())
		}
		if a.has("max") {
			o.SetMaxDocuments(a.value("max").AsInt64())
		}
		if a.has("expireAfterSeconds") {
			o.SetExpireAfterSeconds(a.value("expireAfterSeconds").AsInt64())
		}
		if d, ok := a.value("validator").DocumentOK(); ok {
			o.SetValidator(d)
		}
		return opResult{err: db.CreateCollection(ctx, coll, o)}, nil
	case "dropCollection":
		if err := a.check(name, "collection", "session"); err != nil {
			return opResult{}, err
		}
		coll, err := a.str("collection")
		if err != nil {
			return opResult{}, err
		}
		ctx, err = a.withSession(ctx, e)
		if err != nil {
			return opResult{}, err
		}
		return opResult{err: db.Collection(coll).Drop(ctx)}, nil
	}
	return opResult{}, unsupported("database", name)
}

func collectionOperation(ctx context.Context, e *entities, coll *mongo.Collection, name string, a args) (opResult, error) {
	switch name {
	case "createChangeStream":
		return createChangeStream(ctx, e, a, func(ctx context.Context, pl any, o *options.ChangeStreamOptionsBuilder) (*mongo.ChangeStream, error) {
			return coll.Watch(ctx, pl, o)
		})
	case "insertOne":
		if err := a.check(name, "document", "session", "comment", "bypassDocumentValidation"); err != nil {
			return opResult{}, err
		}
		doc, err := a.document("document")
		if err != nil {
			return opResult{}, err
		}
		o := options.InsertOne()
		if a.has("comment") {
			o.SetComment(a.value("comment"))
		}
		if b, ok := a.value("bypassDocumentValidation").BooleanOK(); ok {
			o.SetBypassDocumentValidation(b)
		}
		if ctx, err = a.withSession(ctx, e); err != nil {
			return opResult{}, err
		}
		res, err := coll.InsertOne(ctx, doc, o)
		if err != nil {
			return opResult{err: err}, nil
		}
		return resultDoc(bson.D{{Key: "insertedId", Value: res.InsertedID}})
	case "updateOne", "replaceOne":
		field := "update"
		if name == "replaceOne" {
			field = "replacement"
		}
		if err := a.check(name, "filter", field, "upsert", "session", "comment", "hint"); err != nil {
			return opResult{}, err
		}
		filter, err := a.document("filter")
		if err != nil {
			return opResult{}, err
		}
		if ctx, err = a.withSession(ctx, e); err != nil {
			return opResult{}, err
		}
		var res *mongo.UpdateResult
		if name == "replaceOne" {
			repl, err := a.document(field)
			if err != nil {
				return opResult{}, err
			}
			o := options.Replace()
			if b, ok := a.value("upsert").BooleanOK(); ok {
				o.SetUpsert(b)
			}
			if a.has("comment") {
				o.SetComment(a.value("comment"))
			}
			if a.has("hint") {
				o.SetHint(a.value("hint"))
			}
			res, err = coll.ReplaceOne(ctx, filter, repl, o)
			if err != nil {
				return opResult{err: err}, nil
			}
		} else {
			// An update is a document of operators or a pipeline.
			var update any
			if d, ok := a.value(field).DocumentOK(); ok {
				update = d
			} else if stages, err := a.pipeline(field); err == nil {
				update = stages
			} else {
				return opResult{}, fmt.Errorf("argument %q must be a document or a pipeline", field)
			}
			o := options.UpdateOne()
			if b, ok := a.value("upsert").BooleanOK(); ok {
				o.SetUpsert(b)
			}
			if a.has("comment") {
				o.SetComment(a.value("comment"))
			}
			if a.has("hint") {
				o.SetHint(a.value("hint"))
			}
			res, err = coll.UpdateOne(ctx, filter, update, o)
			if err != nil {
				return opResult{err: err}, nil
			}
		}
		d := bson.D{
			{Key: "matchedCount", Value: res.MatchedCount},
			{Key: "modifiedCount", Value: res.ModifiedCount},
			{Key: "upsertedCount", Value: res.UpsertedCount},
		}
		if res.UpsertedID != nil {
			d = append(d, bson.E{Key: "upsertedId", Value: res.UpsertedID})
		}
		return resultDoc(d)
	case "deleteOne":
		if err := a.check(name, "filter", "session", "comment", "hint"); err != nil {
			return opResult{}, err
		}
		filter, err := a.document("filter")
		if err != nil {
			return opResult{}, err
		}
		o := options.DeleteOne()
		if a.has("comment") {
			o.SetComment(a.value("comment"))
		}
		if a.has("hint") {
			o.SetHint(a.value("hint"))
		}
		if ctx, err = a.withSession(ctx, e); err != nil {
			return opResult{}, err
		}
		res, err := coll.DeleteOne(ctx, filter, o)
		if err != nil {
			return opResult{err: err}, nil
		}
		return resultDoc(bson.D{{Key: "deletedCount", Value: res.DeletedCount}})
	case "createIndex":
		if err := a.check(name, "keys", "name", "unique", "session"); err != nil {
			return opResult{}, err
		}
		keys, err := a.document("keys")
		if err != nil {
			return opResult{}, err
		}
		io := options.Index()
		if a.has("name") {
			n, err := a.str("name")
			if err != nil {
				return opResult{}, err
			}
			io.SetName(n)
		}
		if b, ok := a.value("unique").BooleanOK(); ok {
			io.SetUnique(b)
		}
		if ctx, err = a.withSession(ctx, e); err != nil {
			return opResult{}, err
		}
		n, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: io})
		if err != nil {
			return opResult{err: err}, nil
		}
		return resultValue(n)
	case "dropIndex":
		if err := a.check(name, "name", "session"); err != nil {
			return opResult{}, err
		}
		n, err := a.str("name")
		if err != nil {
			return opResult{}, err
		}
		if ctx, err = a.withSession(ctx, e); err != nil {
			return opResult{}, err
		}
		return opResult{err: coll.Indexes().DropOne(ctx, n)}, nil
	case "rename":
		if err := a.check(name, "to", "dropTarget", "session"); err != nil {
			return opResult{}, err
		}
		to, err := a.str("to")
		if err != nil {
			return opResult{}, err
		}
		db := coll.Database()
		cmd := bson.D{
			{Key: "renameCollection", Value: db.Name() + "." + coll.Name()},
			{Key: "to", Value: db.Name() + "." + to},
		}
		if b, ok := a.value("dropTarget").BooleanOK(); ok {
			cmd = append(cmd, bson.E{Key: "dropTarget", Value: b})
		}
		if ctx, err = a.withSession(ctx, e); err != nil {
			return opResult{}, err
		}
		reply, err := db.Client().Database("admin").RunCommand(ctx, cmd).Raw()
		if err != nil {
			return opResult{err: err}, nil
		}
		return opResult{value: docValue(reply)}, nil
	}
	return opResult{}, unsupported("collection", name)
}

func resultDoc(d bson.D) (opResult, error) {
	raw, err := bson.Marshal(d)
	if err != nil {
		return opResult{}, fmt.Errorf("marshal result: %w", err)
	}
	return opResult{value: docValue(raw)}, nil
}

func resultValue(v any) (opResult, error) {
	raw, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
	if err != nil {
		return opResult{}, fmt.Errorf("marshal result: %w", err)
	}
	return opResult{value: bson.Raw(raw).Lookup("v")}, nil
}
