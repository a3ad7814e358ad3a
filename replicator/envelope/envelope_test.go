package envelope

import (
	"bytes"
	"testing"

	"github.com/mongopg/replicator/transform"
)

// TestOrdinalRoundTrip: the ordinal survives encoding and decoding, is
// omitted when 0, and an envelope written before the field existed decodes
// with ordinal 0 (apply then falls back to the buffer sequence).
func TestOrdinalRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		ord     uint32
		wantKey bool
	}{
		{"first of its cluster time", 1, true},
		{"later in a transaction", 42, true},
		{"largest", 1<<32 - 1, true},
		{"none", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Envelope{Kind: KindChange, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 5, I: 1}, Ordinal: tt.ord, Token: "82"}
			b, err := AppendEncode(nil, &e)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Contains(b, []byte(`"ord":`)); got != tt.wantKey {
				t.Fatalf("%s: ord key present %v, want %v", b, got, tt.wantKey)
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
