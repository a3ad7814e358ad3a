package mongoemu_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
)

// kv, D and P are ordered documents and pipelines for test literals
// (bson.D's element type cannot be written unkeyed without vet warnings).
type kv struct {
	K string
	V any
}

// D is an ordered document.
type D []kv

// P is an aggregation pipeline.
type P []D

// A is a BSON array.
type A = bson.A

// MarshalBSON encodes d in order.
func (d D) MarshalBSON() ([]byte, error) {
	bd := make(bson.D, len(d))
	for i, e := range d {
		bd[i] = bson.E{Key: e.K, Value: e.V}
	}
	return bson.Marshal(bd)
}

// startServer starts an emulator and returns it with a connected client
// (replica-set discovery). Both are closed when the test ends.
func startServer(t testing.TB, opts mongoemu.Options) (*mongoemu.Server, *mongo.Client) {
	t.Helper()
	srv := mongoemu.New(opts)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, connect(t, srv.URI())
}

func connect(t testing.TB, uri string, extra ...*options.ClientOptions) *mongo.Client {
	t.Helper()
	opts := append([]*options.ClientOptions{options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second)}, extra...)
	cl, err := mongo.Connect(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// nextEvent reads the next change event or fails.
func nextEvent(t testing.TB, cs *mongo.ChangeStream) bson.Raw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !cs.Next(ctx) {
		t.Fatalf("no change event: %v", cs.Err())
	}
	return cs.Current
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// keys returns the top-level field names of a document in order.
func keys(t testing.TB, d bson.Raw) []string {
	t.Helper()
	els, err := d.Elements()
	mustNoErr(t, err)
	out := make([]string, len(els))
	for i, e := range els {
		out[i] = e.Key()
	}
	return out
}

func toJSON(v any) string {
	b, err := bson.MarshalExtJSON(v, false, false)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
