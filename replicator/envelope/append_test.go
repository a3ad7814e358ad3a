package envelope

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/mongopg/replicator/transform"
)

// jsonEncode is the reference: the bytes encoding/json writes.
func jsonEncode(t testing.TB, e *Envelope) []byte {
	t.Helper()
	e.V = Version
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkSame(t testing.TB, e *Envelope) {
	t.Helper()
	want := jsonEncode(t, e)
	got, err := AppendEncode(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendEncode differs from encoding/json:\n got %s\nwant %s", got, want)
	}
	back, err := Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	// The decoded envelope (invalid UTF-8 and zones normalised) encodes
	// the same both ways too.
	again, err := AppendEncode(nil, back)
	if err != nil {
		t.Fatal(err)
	}
	if want := jsonEncode(t, back); !bytes.Equal(again, want) {
		t.Fatalf("re-encoded envelope differs:\n got %s\nwant %s", again, want)
	}
}

func TestAppendEncodeMatchesJSON(t *testing.T) {
	wall := time.Date(2026, 11, 27, 5, 6, 40, 123000000, time.UTC)
	tests := []struct {
		name string
		env  Envelope
	}{
		{"heartbeat", Envelope{Kind: KindHeartbeat, Collection: "vuln.advisories", ClusterTime: transform.ClusterTime{T: 1764220000, I: 3}, WallTime: wall}},
		{"heartbeat local zone", Envelope{Kind: KindHeartbeat, Collection: "a.b", WallTime: wall.In(time.FixedZone("x", 5*3600+30*60))}},
		{"odd zone falls back", Envelope{Kind: KindHeartbeat, Collection: "a.b", WallTime: wall.In(time.FixedZone("x", 17))}},
		{"no wall time", Envelope{Kind: KindControl, Collection: "a.b", Token: "82AB", Operation: "drop"}},
		{"change", Envelope{Kind: KindChange, Collection: "vuln.advisories", ClusterTime: transform.ClusterTime{T: 1, I: 2}, Ordinal: 3, WallTime: wall,
			Token: "8267", Operation: "update", DocumentKey: `{"_id":"GHSA-1"}`,
			Mutations: []transform.Mutation{{Table: "vuln.advisories", Op: transform.OpUpsert,
				Key:    []transform.Value{transform.Text("GHSA-1")},
				Values: []transform.Value{transform.Text("GHSA-1"), transform.Null, transform.Text(""), {Text: "odd"}, transform.Text(`{"a":"<b>&\u2028"}`)},
				Children: []transform.ChildRows{
					{Table: "vuln.advisory_affected", Rows: [][]transform.Value{{transform.Text("GHSA-1"), transform.Text("0")}, nil, {}}},
					{Table: "vuln.empty", Rows: [][]transform.Value{}},
					{Table: "vuln.nil"},
				}}}}},
		{"largest ordinal", Envelope{Kind: KindChange, Collection: "a.b", Ordinal: 1<<32 - 1, Token: "x", Operation: "insert"}},
		{"ordinal without wall time", Envelope{Kind: KindChange, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 7}, Ordinal: 1}},
		{"delete with nil key", Envelope{Kind: KindChange, Collection: "a.b", Token: "x", Operation: "delete",
			Mutations: []transform.Mutation{{Table: "a.b", Op: transform.OpDelete}}}},
		{"missing document", Envelope{Kind: KindChange, Collection: "a.b", Token: "x", Operation: "update", Mutations: []transform.Mutation{}}},
		{"dead letter", Envelope{Kind: KindDeadLetter, Collection: "a.b", Token: "x", DocumentKey: `{"_id":1}`,
			DeadLetter: &DeadLetter{Error: "bad", Path: "a.b", RawEvent: json.RawMessage(`{"documentKey":{"_id":1}}`)}}},
		{"escapes", Envelope{Kind: KindChange, Collection: "\x00\x01\b\f\n\r\t\"\\<>&\x7f", Token: "\xff\xfe bad utf8 \u2029 é 😀"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkSame(t, &tt.env) })
	}
}

func TestAppendEncodeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		e := randomEnvelope(r)
		checkSame(t, &e)
	}
}

func FuzzAppendEncode(f *testing.F) {
	f.Add("vuln.advisories", "GHSA-1", `{"_id":"x"}`, "text\x00<&>\u2028", uint32(1), uint32(2), uint32(1), int64(0), true)
	f.Add("", "", "", "\xff", uint32(0), uint32(0), uint32(0), int64(1764220000123), false)
	f.Fuzz(func(t *testing.T, coll, token, key, text string, ct, ci, ord uint32, wallMs int64, valid bool) {
		e := Envelope{Kind: KindChange, Collection: coll, Token: token, Operation: "insert", DocumentKey: key,
			ClusterTime: transform.ClusterTime{T: ct, I: ci}, Ordinal: ord}
		if wallMs != 0 {
			e.WallTime = time.UnixMilli(wallMs).UTC()
		}
		v := transform.Value{Text: text, Valid: valid}
		e.Mutations = []transform.Mutation{{Table: text, Op: transform.OpUpsert, Key: []transform.Value{v},
			Values: []transform.Value{v, transform.Null}, Children: []transform.ChildRows{{Table: key, Rows: [][]transform.Value{{v}}}}}}
		want, werr := json.Marshal(&Envelope{V: Version, Kind: e.Kind, Collection: e.Collection, ClusterTime: e.ClusterTime,
			Ordinal: e.Ordinal, WallTime: e.WallTime, Token: e.Token, Operation: e.Operation, DocumentKey: e.DocumentKey, Mutations: e.Mutations})
		got, gerr := AppendEncode(nil, &e)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("errors differ: json %v, append %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("AppendEncode differs from encoding/json:\n got %s\nwant %s", got, want)
		}
	})
}

func TestAppendEncodeAppends(t *testing.T) {
	e := Envelope{Kind: KindHeartbeat, Collection: "a.b"}
	got, err := AppendEncode([]byte("prefix"), &e)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("prefix"), jsonEncode(t, &e)...); !bytes.Equal(got, want) {
		t.Fatalf("got %s, want %s", got, want)
	}
	back, err := Decode(got[len("prefix"):])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Collection, "a.b") || back.Kind != KindHeartbeat {
		t.Fatalf("decoded %+v", back)
	}
}

func randomEnvelope(r *rand.Rand) Envelope {
	str := func() string {
		const alphabet = "ab<>&\"\\\x00\x1f\n\t é€😀\u2028\u2029\x7f"
		n := r.IntN(12)
		b := make([]byte, 0, n*2)
		for range n {
			if r.IntN(20) == 0 {
				b = append(b, byte(0x80+r.IntN(0x80))) // invalid UTF-8
				continue
			}
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		return string(b)
	}
	vals := func() []transform.Value {
		if r.IntN(8) == 0 {
			return nil
		}
		vs := make([]transform.Value, r.IntN(5))
		for i := range vs {
			vs[i] = transform.Value{Text: str(), Valid: r.IntN(4) != 0}
		}
		return vs
	}
	e := Envelope{Kind: []Kind{KindChange, KindHeartbeat, KindControl}[r.IntN(3)], Collection: str(),
		ClusterTime: transform.ClusterTime{T: r.Uint32(), I: r.Uint32()}, Token: str(), Operation: str(), DocumentKey: str()}
	if r.IntN(3) != 0 {
		e.WallTime = time.Unix(r.Int64N(1<<33), r.Int64N(1e9)).UTC()
	}
	if r.IntN(2) == 0 {
		e.Ordinal = r.Uint32()
	}
	for range r.IntN(3) {
		m := transform.Mutation{Table: str(), Op: transform.Op(r.IntN(3)), Key: vals(), Values: vals()}
		for range r.IntN(3) {
			ch := transform.ChildRows{Table: str()}
			if r.IntN(5) != 0 {
				ch.Rows = [][]transform.Value{}
				for range r.IntN(4) {
					ch.Rows = append(ch.Rows, vals())
				}
			}
			m.Children = append(m.Children, ch)
		}
		e.Mutations = append(e.Mutations, m)
	}
	return e
}
