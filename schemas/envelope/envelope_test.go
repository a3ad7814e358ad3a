package envelope

import (
	"errors"
	"testing"

	"github.com/mongopg/replicator/transform"
)

// TestOrdinalRoundTrip: the ordinal survives encoding and decoding.
func TestOrdinalRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ord  uint32
	}{
		{"first of its cluster time", 1},
		{"later in a transaction", 42},
		{"largest", 1<<32 - 1},
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
}

// TestChangeWithoutOrdinal: a change envelope without an ordinal does not
// decode (no release's capture writes one); the other kinds carry none.
func TestChangeWithoutOrdinal(t *testing.T) {
	for _, k := range []Kind{KindChange, KindHeartbeat, KindControl, KindDeadLetter} {
		e := Envelope{Kind: k, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 5, I: 1}, Token: "82"}
		if k == KindDeadLetter {
			e.DeadLetter = &DeadLetter{Error: "bad"}
		}
		b, err := Encode(&e)
		if err != nil {
			t.Fatal(err)
		}
		for name, decode := range map[string]func([]byte) (*Envelope, error){"Decode": Decode, "DecodeShared": DecodeShared} {
			_, err := decode(b)
			if k == KindChange && !errors.Is(err, errNoOrdinal) {
				t.Errorf("%s of a change without an ordinal: %v, want %v", name, err, errNoOrdinal)
			}
			if k != KindChange && err != nil {
				t.Errorf("%s of a %s without an ordinal: %v", name, k, err)
			}
		}
	}
}
