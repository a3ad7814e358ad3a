package sink

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

func decodeSeeds(f interface{ Add(...any) }) {
	envs := []*envelope.Envelope{
		{Kind: envelope.KindChange, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 1, I: 2}, WallTime: time.Date(2026, 1, 2, 3, 4, 5, 6000000, time.UTC),
			Token: "8260", Operation: "update", DocumentKey: `{"_id": {"$oid": "65"}}`,
			Mutations: []transform.Mutation{item{id: "x\t\"y\"\\é\u2028", qty: 3, tags: []string{"a", "b"}}.mutation(), deletion("z")}},
		{Kind: envelope.KindHeartbeat, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 4294967295, I: 1}},
		{Kind: envelope.KindDeadLetter, Collection: "a.b", DeadLetter: &envelope.DeadLetter{Error: "e", RawEvent: json.RawMessage(`{"a":1}`)}},
		{Kind: envelope.KindChange, Collection: "a.b", Mutations: []transform.Mutation{{Table: "t", Op: 1, Key: []transform.Value{}, Children: []transform.ChildRows{{Table: "c"}}}}},
	}
	for _, e := range envs {
		b, _ := envelope.Encode(e)
		f.Add(b)
		f.Add(jsonV1(e))
	}
	for _, s := range []string{
		`{"v":1,"kind":"change","collection":"a.b","mutations":null}`,
		`{"v":1,"mutations":[{"key":null,"values":null,"children":null},{"children":[{"table":"c","rows":null},{"rows":[null]}]}]}`,
		`{"v":1,"mutations":[{"key":[null]}],"token":null}`,
		`{"v":1,"KIND":"change"}`,
		`{"v":1,"kind":"change","cluster_time":{"t":1},"cluster_time":{"i":2}}`,
		`{"v":2,"kind":"change"}`,
		`{"v":1.0}`,
		`{"v":1,"kind":"ch\u0061nge\ud800"}`,
		"{\"v\":1,\"kind\":\"\xff\"}",
		`{"v":1,"mutations":[{"op":256}]}`,
		`{"v":1,"wall_time":"2026-13-01T00:00:00Z"}`,
		` {"v" : 1 , "kind" : "heartbeat" } `,
		`{"v":1}x`,
		`{"v":01}`,
		`{"v":1,"mutations":[{"key":[{"t":"a","v":true,"x":1}]}]}`,
		`{"v":1,"mutations":[{"key":[{"t":"a","v":truex}]}]}`,
	} {
		f.Add([]byte(s))
	}
}

// jsonV1 is e in the JSON form (version 1) that builds before the binary
// form wrote.
func jsonV1(e *envelope.Envelope) []byte {
	c := *e
	c.V = 1
	b, err := json.Marshal(&c)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecodeEnvelope(f *testing.F) {
	decodeSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := envelope.Decode(b)
		got, gotErr := decodeEnvelope(b)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("%q: envelope.Decode error %v, fast decoder error %v", b, wantErr, gotErr)
		}
		if wantErr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("%q:\nenvelope.Decode %#v\nfast decoder    %#v", b, want, got)
		}
	})
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	m := item{id: "doc-1", qty: 1}.mutation()
	m.Values[4] = transform.Text(`{"payload": "` + strings.Repeat("x", 120) + `", "n": {"a": [1, 2, "three"]}}`)
	e := &envelope.Envelope{Kind: envelope.KindChange, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 1, I: 1}, Mutations: []transform.Mutation{m}}
	bin, err := envelope.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	js := jsonV1(e)
	for _, bc := range []struct {
		name   string
		data   []byte
		decode func([]byte) (*envelope.Envelope, error)
	}{
		{"binary", bin, decodeEnvelope},
		{"json-v1/fast", js, decodeEnvelope},
		{"json-v1/encoding-json", js, envelope.Decode},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			for range b.N {
				if _, err := bc.decode(bc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
