package capture

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func marshalKey(t testing.TB, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(bson.D{{Key: "_id", Value: v}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkKeyJSON(t testing.TB, doc bson.Raw) {
	t.Helper()
	got, ok := keyJSON(doc)
	want, err := bson.MarshalExtJSON(doc, true, false)
	if !ok {
		return // extJSON renders it
	}
	if err != nil {
		t.Fatalf("keyJSON accepted %x, which the driver refuses: %v", []byte(doc), err)
	}
	if got != string(want) {
		t.Fatalf("keyJSON(%x) = %s, want %s", []byte(doc), got, want)
	}
	if got != extJSON(doc) {
		t.Fatalf("extJSON differs from keyJSON")
	}
}

func TestKeyJSON(t *testing.T) {
	tests := []struct {
		name string
		doc  bson.Raw
		fast bool
	}{
		{"string", marshalKey(t, "GHSA-1"), true},
		{"empty string", marshalKey(t, ""), true},
		{"escapes", marshalKey(t, "a\"\\\x00\x01\b\f\n\r\t<>&\x7f\u2028\u2029é😀"), true},
		{"invalid utf8", bson.Raw{17, 0, 0, 0, 2, '_', 'i', 'd', 0, 3, 0, 0, 0, 0xff, 'a', 0, 0}, true},
		{"object id", marshalKey(t, bson.NewObjectID()), true},
		{"int32", marshalKey(t, int32(7)), false},
		{"document", marshalKey(t, bson.D{{Key: "a", Value: 1}}), false},
		{"two fields", func() bson.Raw {
			b, _ := bson.Marshal(bson.D{{Key: "_id", Value: "x"}, {Key: "shard", Value: "y"}})
			return b
		}(), false},
		{"other key", func() bson.Raw { b, _ := bson.Marshal(bson.D{{Key: "id", Value: "x"}}); return b }(), false},
		{"bad length", bson.Raw{17, 0, 0, 0, 2, '_', 'i', 'd', 0, 4, 0, 0, 0, 'a', 'b', 0, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := keyJSON(tt.doc); ok != tt.fast {
				t.Fatalf("fast path %v, want %v", ok, tt.fast)
			}
			checkKeyJSON(t, tt.doc)
		})
	}
}

func FuzzKeyJSON(f *testing.F) {
	f.Add([]byte(marshalKey(f, "GHSA-1")))
	f.Add([]byte(marshalKey(f, bson.NewObjectID())))
	f.Add([]byte(marshalKey(f, "\u2028<&>\x00")))
	f.Fuzz(func(t *testing.T, b []byte) { checkKeyJSON(t, bson.Raw(b)) })
}

func FuzzKeyJSONString(f *testing.F) {
	f.Add("GHSA-1")
	f.Add("\xff\xfe\u2029\x1f")
	f.Fuzz(func(t *testing.T, s string) { checkKeyJSON(t, marshalKey(t, s)) })
}
