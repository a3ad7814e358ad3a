package mongoemu_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongopg/replicator/internal/mongoemu"
)

// smallDoc builds {seq, tenantId, severity, n} as raw BSON, so the
// benchmark measures the server rather than the driver's reflection (the
// driver adds an ObjectId _id without decoding the document).
func smallDoc(id, n int) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, 80))
	b = bsoncore.AppendInt64Element(b, "seq", int64(id))
	b = bsoncore.AppendStringElement(b, "tenantId", "t1")
	b = bsoncore.AppendStringElement(b, "severity", "high")
	b = bsoncore.AppendInt32Element(b, "n", int32(n))
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

// BenchmarkInsertAndChangeStream measures end-to-end change-event
// throughput: one client inserts batches of 1000 small documents while one
// change stream reads the events. Each iteration is one batch.
func BenchmarkInsertAndChangeStream(b *testing.B) {
	const batch = 1000
	_, cl := startServer(b, mongoemu.Options{OplogMaxEvents: 1_000_000})
	ctx := context.Background()
	coll := cl.Database("bench").Collection("events")
	mustNoErr(b, cl.Database("bench").CreateCollection(ctx, "events"))
	cs, err := coll.Watch(ctx, P{}, options.ChangeStream().SetMaxAwaitTime(500*time.Millisecond))
	mustNoErr(b, err)
	defer cs.Close(ctx)

	docs := make([]any, batch)
	want := b.N * batch
	done := make(chan int)
	go func() {
		n := 0
		for n < want && cs.Next(ctx) {
			n++
		}
		done <- n
	}()

	b.ResetTimer()
	start := time.Now()
	cpu0 := mongoemu.ProcessCPU()
	id := 0
	for i := 0; i < b.N; i++ {
		for j := range docs {
			id++
			docs[j] = smallDoc(id, j)
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			b.Fatal(err)
		}
	}
	got := <-done
	elapsed := time.Since(start)
	b.StopTimer()
	if got != want {
		b.Fatalf("read %d events, want %d: %v", got, want, cs.Err())
	}
	b.ReportMetric(float64(got)/elapsed.Seconds(), "events/s")
	// Server, driver and benchmark share the process: this is the end-to-end
	// CPU cost, independent of other load on the machine.
	b.ReportMetric(float64(got)/(mongoemu.ProcessCPU()-cpu0).Seconds(), "events/cpu-s")
}
