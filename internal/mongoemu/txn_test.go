package mongoemu_test

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/internal/mongoemu"
)

func TestTransactions(t *testing.T) {
	_, cl := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	coll := cl.Database("db").Collection("tx")
	_, err := coll.InsertOne(ctx, D{{"_id", 0}, {"v", 0}})
	mustNoErr(t, err)

	t.Run("commit shares clusterTime", func(t *testing.T) {
		cs := watch(t, coll, nil, nil)
		sess, err := cl.StartSession()
		mustNoErr(t, err)
		defer sess.EndSession(ctx)
		_, err = sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
			if _, err := coll.InsertOne(sc, D{{"_id", 1}}); err != nil {
				return nil, err
			}
			if _, err := coll.UpdateOne(sc, D{{"_id", 0}}, D{{"$set", D{{"v", 1}}}}); err != nil {
				return nil, err
			}
			// Own writes are visible inside the transaction...
			n, err := coll.CountDocuments(sc, D{})
			if err != nil || n != 2 {
				return nil, errors.New("own insert not visible")
			}
			// ...but not outside it.
			if err := coll.FindOne(ctx, D{{"_id", 1}}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
				return nil, errors.New("uncommitted insert visible outside")
			}
			_, err = coll.DeleteOne(sc, D{{"_id", 1}})
			return nil, err
		})
		mustNoErr(t, err)
		var evs []bson.Raw
		for i := 0; i < 3; i++ {
			evs = append(evs, nextEvent(t, cs))
		}
		ops := []string{"insert", "update", "delete"}
		var tokens []string
		for i, ev := range evs {
			if got := ev.Lookup("operationType").StringValue(); got != ops[i] {
				t.Fatalf("event %d is %s", i, got)
			}
			if k := keys(t, ev); len(k) < 3 || k[0] != "txnNumber" || k[1] != "lsid" || k[2] != "_id" {
				t.Fatalf("field order %v", k)
			}
			if _, err := ev.LookupErr("lsid", "id"); err != nil {
				t.Fatalf("no lsid: %v", ev)
			}
			if ev.Lookup("txnNumber").Type != bson.TypeInt64 {
				t.Fatalf("txnNumber: %v", ev)
			}
			if !ev.Lookup("clusterTime").Equal(evs[0].Lookup("clusterTime")) {
				t.Fatalf("clusterTime differs: %v vs %v", ev.Lookup("clusterTime"), evs[0].Lookup("clusterTime"))
			}
			tokens = append(tokens, ev.Lookup("_id", "_data").StringValue())
		}
		if !(tokens[0] < tokens[1] && tokens[1] < tokens[2]) {
			t.Fatalf("tokens not ordered: %v", tokens)
		}
		var got bson.M
		mustNoErr(t, coll.FindOne(ctx, D{{"_id", 0}}).Decode(&got))
		if got["v"] != int32(1) {
			t.Fatalf("after commit %v", got)
		}
	})

	t.Run("abort leaves no trace", func(t *testing.T) {
		cs := watch(t, coll, nil, nil)
		sess, err := cl.StartSession()
		mustNoErr(t, err)
		defer sess.EndSession(ctx)
		mustNoErr(t, sess.StartTransaction())
		sc := mongo.NewSessionContext(ctx, sess)
		_, err = coll.InsertOne(sc, D{{"_id", 2}})
		mustNoErr(t, err)
		mustNoErr(t, sess.AbortTransaction(ctx))
		if err := coll.FindOne(ctx, D{{"_id", 2}}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
			t.Fatalf("aborted insert visible: %v", err)
		}
		_, err = coll.InsertOne(ctx, D{{"_id", 3}})
		mustNoErr(t, err)
		if ev := nextEvent(t, cs); ev.Lookup("documentKey", "_id").Int32() != 3 {
			t.Fatalf("unexpected event %v", ev)
		}
	})

	t.Run("commit without transaction", func(t *testing.T) {
		err := cl.Database("admin").RunCommand(ctx, D{{"commitTransaction", 1}, {"txnNumber", int64(99)}, {"autocommit", false}, {"lsid", D{{"id", bson.Binary{Subtype: 4, Data: make([]byte, 16)}}}}}).Err()
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != 251 || !ce.HasErrorLabel("TransientTransactionError") {
			t.Fatalf("err %v", err)
		}
	})

	t.Run("retryable writes", func(t *testing.T) {
		// The driver sends txnNumber with every retryable write by default.
		res, err := coll.UpdateOne(ctx, D{{"_id", 0}}, D{{"$inc", D{{"v", 1}}}})
		mustNoErr(t, err)
		if res.ModifiedCount != 1 {
			t.Fatal(res)
		}
	})
}

// TestEndSessionsForgetsSessions: a driver ends its pooled sessions when it
// disconnects, and the server forgets them, so clients that come and go do
// not accumulate sessions.
func TestEndSessionsForgetsSessions(t *testing.T) {
	srv, _ := startServer(t, mongoemu.Options{})
	ctx := ctxT(t)
	for round := range 3 {
		cl := connect(t, srv.URI())
		coll := cl.Database("db").Collection("sessions")
		sess, err := cl.StartSession()
		mustNoErr(t, err)
		_, err = sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
			_, err := coll.InsertOne(sc, D{{"_id", round}})
			return nil, err
		})
		sess.EndSession(ctx)
		mustNoErr(t, err)
		if n := mongoemu.SessionCount(srv); n == 0 {
			t.Fatalf("round %d: no session after a transaction", round)
		}
		mustNoErr(t, cl.Disconnect(ctx))
		if n := mongoemu.SessionCount(srv); n != 0 {
			t.Fatalf("round %d: %d sessions after the client disconnected, want 0", round, n)
		}
	}
}
