package sink

import (
	"strings"
	"testing"

	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// BenchmarkDecodeEnvelope measures how the applier decodes a buffer
// message (decodeEnvelope): one change envelope with a row whose jsonb
// column holds escaped JSON.
func BenchmarkDecodeEnvelope(b *testing.B) {
	m := item{id: "doc-1", qty: 1}.mutation()
	m.Values[4] = transform.Text(`{"payload": "` + strings.Repeat("x", 120) + `", "n": {"a": [1, 2, "three"]}}`)
	e := &envelope.Envelope{Kind: envelope.KindChange, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 1, I: 1}, Ordinal: 1,
		Mutations: []transform.Mutation{m}}
	data, err := envelope.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("binary", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for range b.N {
			if _, err := decodeEnvelope(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
