package mongoemu

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func mustMsg(b testing.TB, raw []byte) *message {
	m := &message{opCode: opMsg}
	if err := m.parseMsg(raw[:16], raw[16:]); err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkServerInsertAndGetMore measures the emulator alone (no network,
// no driver): one insert of 1000 small documents and one change-stream
// getMore returning their 1000 events per iteration.
func BenchmarkServerInsertAndGetMore(b *testing.B) {
	s := New(Options{OplogMaxEvents: 1_000_000})
	c := &conn{s: s, id: 1}
	db := bsoncore.AppendStringElement(nil, "$db", "bench")
	open := docBytes(bsoncore.AppendStringElement(nil, "aggregate", "events"),
		bsoncore.AppendArrayElement(nil, "pipeline", bsoncore.BuildArray(nil, bsoncore.Value{Type: bsoncore.TypeEmbeddedDocument,
			Data: docBytes(bsoncore.AppendDocumentElement(nil, "$changeStream", docBytes()))})),
		bsoncore.AppendDocumentElement(nil, "cursor", docBytes()), db)
	reply, _ := c.handle(mustMsg(b, rawMsg(0, open, "", nil)))
	id, _ := reply.Get("cursor").field("id").asInt64()
	getMore := docBytes(bsoncore.AppendInt64Element(nil, "getMore", id), bsoncore.AppendStringElement(nil, "collection", "events"), db)
	insertBody := docBytes(bsoncore.AppendStringElement(nil, "insert", "events"), db)
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		docs := make([][]byte, 1000)
		for j := range docs {
			n++
			docs[j] = docBytes(bsoncore.AppendInt64Element(nil, "_id", int64(n)), bsoncore.AppendStringElement(nil, "tenantId", "t1"),
				bsoncore.AppendStringElement(nil, "severity", "high"), bsoncore.AppendInt32Element(nil, "n", int32(j)))
		}
		if _, err := c.handle(mustMsg(b, rawMsg(0, insertBody, "documents", docs))); err != nil {
			b.Fatal(err)
		}
		r, _ := c.handle(mustMsg(b, rawMsg(0, getMore, "", nil)))
		out := appendReply(nil, &message{}, 1, r)
		if len(out) < 1000*100 {
			b.Fatalf("short getMore reply: %d bytes", len(out))
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N*1000)/(processCPU()-cpu0).Seconds(), "events/cpu-s")
}
