package envelope

import (
	"testing"

	"github.com/mongopg/replicator/transform"
)

// TestOrdinalRoundTrip: the ordinal survives encoding and decoding, and a
// JSON envelope written before the field existed decodes with ordinal 0
// (apply then falls back to the buffer sequence).
func TestOrdinalRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ord  uint32
	}{
		{"first of its cluster time", 1},
		{"later in a transaction", 42},
		{"largest", 1<<32 - 1},
		{"none", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Envelope{Kind: KindChange, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 5, I: 1}, Ordinal: tt.ord, Token: "82"}
			b, err := AppendEncode(nil, &e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if back.Ordinal != tt.ord {
				t.Fatalf("decoded ordinal %d, want %d", back.Ordinal, tt.ord)
			}
		})
	}
	old := []byte(`{"v":1,"kind":"change","collection":"a.b","cluster_time":{"t":5,"i":1},"token":"82","op":"update"}`)
	back, err := Decode(old)
	if err != nil {
		t.Fatal(err)
	}
	if back.Ordinal != 0 {
		t.Fatalf("an envelope without ord decoded with ordinal %d, want 0", back.Ordinal)
	}
}
