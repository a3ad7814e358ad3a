package mongoemu_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/mongopg/replicator/internal/mongoemu"
)

func TestConnect(t *testing.T) {
	srv := mongoemu.New(mongoemu.Options{})
	mustNoErr(t, srv.Listen("127.0.0.1:0"))
	t.Cleanup(func() { _ = srv.Close() })

	for _, tc := range []struct{ name, uri string }{
		{"replicaSet", srv.URI()},
		{"directConnection", "mongodb://" + srv.Addr() + "/?directConnection=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := connect(t, tc.uri)
			ctx := ctxT(t)
			mustNoErr(t, cl.Ping(ctx, readpref.Primary()))
			coll := cl.Database("db").Collection("c_" + tc.name)
			_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: "y"}})
			mustNoErr(t, err)
			var got bson.M
			mustNoErr(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
			if got["x"] != "y" {
				t.Fatalf("got %v", got)
			}
			var hello bson.M
			mustNoErr(t, cl.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello))
			for _, k := range []string{"setName", "hosts", "primary", "me", "isWritablePrimary", "topologyVersion", "logicalSessionTimeoutMinutes", "connectionId", "maxBsonObjectSize", "maxMessageSizeBytes", "maxWriteBatchSize"} {
				if _, ok := hello[k]; !ok {
					t.Errorf("hello lacks %s: %v", k, hello)
				}
			}
			if hello["maxWireVersion"] != int32(25) || hello["setName"] != "rs0" || hello["me"] != srv.Addr() {
				t.Errorf("hello = %v", hello)
			}
		})
	}
}

func TestCloseWithOpenClients(t *testing.T) {
	srv := mongoemu.New(mongoemu.Options{})
	mustNoErr(t, srv.Listen("127.0.0.1:0"))
	cl := connect(t, srv.URI())
	mustNoErr(t, cl.Ping(ctxT(t), readpref.Primary()))
	mustNoErr(t, srv.Close())
	mustNoErr(t, srv.Close())
}
