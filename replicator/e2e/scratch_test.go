package e2e

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongotest"
)

func TestScratchResumeMidTxn(t *testing.T) {
	env := mongotest.New(t)
	ctx := context.Background()
	db := env.Client.Database("s")
	a, b := db.Collection("a"), db.Collection("b")
	_, _ = a.InsertOne(ctx, bson.D{{Key: "_id", Value: 0}})
	cs, err := db.Watch(ctx, mongo.Pipeline{})
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := env.Client.StartSession()
	_, err = sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
		a.InsertOne(sc, bson.D{{Key: "_id", Value: 1}})
		b.InsertOne(sc, bson.D{{Key: "_id", Value: 2}})
		a.DeleteOne(sc, bson.D{{Key: "_id", Value: 0}})
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var toks []bson.Raw
	for i := 0; i < 3; i++ {
		if !cs.Next(ctx) {
			t.Fatal(cs.Err())
		}
		t.Logf("event %s", cs.Current)
		toks = append(toks, cs.ResumeToken())
	}
	for i, tok := range toks {
		cs2, err := db.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetStartAfter(tok).SetMaxAwaitTime(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for cs2.TryNext(ctx) {
			n++
		}
		t.Logf("after token %d (%s): %d events", i, tok, n)
		cs2.Close(ctx)
	}
}
