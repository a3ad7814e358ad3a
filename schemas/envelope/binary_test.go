package envelope

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/mongopg/replicator/transform"
)

// roundTrip encodes e, decodes it both ways and checks both equal e.
func roundTrip(t testing.TB, e *Envelope) []byte {
	t.Helper()
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if !IsBinary(b) {
		t.Fatalf("Encode wrote no binary envelope: % x", b)
	}
	for name, decode := range map[string]func([]byte) (*Envelope, error){"Decode": Decode, "DecodeShared": DecodeShared} {
		back, err := decode(b)
		if err != nil {
			t.Fatalf("%s: %v\n% x", name, err, b)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("%s:\n got %#v\nwant %#v", name, back, e)
		}
	}
	return b
}

func TestBinaryRoundTrip(t *testing.T) {
	wall := time.Date(2026, 11, 27, 5, 6, 40, 123456789, time.UTC)
	tests := []struct {
		name string
		env  Envelope
	}{
		{"heartbeat", Envelope{Kind: KindHeartbeat, Collection: "vuln.advisories", ClusterTime: transform.ClusterTime{T: 1764220000, I: 3}, WallTime: wall}},
		{"wall time before 1970", Envelope{Kind: KindHeartbeat, Collection: "a.b", WallTime: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC)}},
		{"no wall time", Envelope{Kind: KindControl, Collection: "a.b", Token: "82AB", Operation: "drop"}},
		{"change", Envelope{Kind: KindChange, Collection: "vuln.advisories", ClusterTime: transform.ClusterTime{T: 1, I: 2}, Ordinal: 3, WallTime: wall,
			Token: "8267", Operation: "update", DocumentKey: `{"_id":"GHSA-1"}`,
			Mutations: []transform.Mutation{{Table: "vuln.advisories", Op: transform.OpUpsert,
				Key:    []transform.Value{transform.Text("GHSA-1")},
				Values: []transform.Value{transform.Text("GHSA-1"), transform.Null, transform.Text(""), transform.Text(`{"a":"<b>&\u2028\\"}`)},
				Children: []transform.ChildRows{
					{Table: "vuln.advisory_affected", Rows: [][]transform.Value{{transform.Text("GHSA-1"), transform.Text("0")}, nil, {}}},
					{Table: "vuln.empty", Rows: [][]transform.Value{}},
					{Table: "vuln.nil"},
				}}}}},
		{"largest numbers", Envelope{Kind: KindChange, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 1<<32 - 1, I: 1<<32 - 1}, Ordinal: 1<<32 - 1, Token: "x", Operation: "insert"}},
		{"delete with nil key", Envelope{Kind: KindChange, Collection: "a.b", Ordinal: 1, Token: "x", Operation: "delete",
			Mutations: []transform.Mutation{{Table: "a.b", Op: transform.OpDelete}}}},
		{"identity", Envelope{Kind: KindChange, Collection: "a.b", Ordinal: 2, Token: "x", Operation: "update",
			Mutations: []transform.Mutation{
				{Table: "a.b", Op: transform.OpUpsert, Key: []transform.Value{transform.Text("t"), transform.Text("n")},
					Values: []transform.Value{transform.Text("t"), transform.Text("n")}, Identity: "65a1b2c3d4e5f60718293a4b",
					Children: []transform.ChildRows{{Table: "a.c", Rows: [][]transform.Value{}}}},
				{Table: "a.b", Op: transform.OpDelete, Identity: "~num:7"}}}},
		{"dead letter", Envelope{Kind: KindDeadLetter, Collection: "a.b", Token: "x", DocumentKey: `{"_id":1}`,
			DeadLetter: &DeadLetter{Error: "bad", Path: "a.b", RawEvent: json.RawMessage(`{"documentKey":{"_id":1}}`)}}},
		{"bytes kept as they are", Envelope{Kind: KindChange, Collection: "\x00\x01\b\"\\<>&\x7f", Ordinal: 1, Token: "\xff\xfe bad utf8 \u2029 é 😀"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.env
			e.V = Version
			roundTrip(t, &e)
		})
	}
}

func TestBinaryRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		e := randomEnvelope(r)
		e.V = Version
		roundTrip(t, &e)
	}
}

// TestBinaryNullHasNoText: a NULL is written without text, whatever the
// Value held.
func TestBinaryNullHasNoText(t *testing.T) {
	e := Envelope{Kind: KindChange, Collection: "a.b", Ordinal: 1, Mutations: []transform.Mutation{{Table: "t", Op: 1, Key: []transform.Value{{Text: "stale"}}}}}
	b, err := Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Mutations[0].Key[0]; got != transform.Null {
		t.Fatalf("decoded %#v, want NULL", got)
	}
}

// TestBinaryCorrupt: every truncation and a few corruptions of a valid
// envelope fail with an error, never a panic or a wrong envelope.
func TestBinaryCorrupt(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		e := randomEnvelope(r)
		b, err := Encode(&e)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			if _, err := Decode(b[:n]); err == nil {
				t.Fatalf("a truncation to %d of %d bytes decoded: % x", n, len(b), b[:n])
			}
		}
		if _, err := Decode(append(b, 0)); err == nil {
			t.Fatal("a trailing byte decoded")
		}
	}
	for _, b := range [][]byte{
		{binaryFormat},
		{binaryFormat, 9}, // unknown kind
		{binaryFormat, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0, 0, 0, 0, 0}, // cluster time t above 2^32
		{binaryFormat, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0},                            // wall-time flag 2
		{binaryFormat, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},    // 4 billion mutations in 5 bytes
		{binaryFormat, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2},                            // dead-letter flag 2
	} {
		if e, err := Decode(b); err == nil {
			t.Errorf("% x decoded: %#v", b, e)
		}
	}
}

// TestDecodeRefusesOtherFormats: only version 2 decodes. The JSON form
// (version 1) of builds before the first release, the JSON rendering of
// an envelope (buffer show, dead letters) and other first bytes are
// refused.
func TestDecodeRefusesOtherFormats(t *testing.T) {
	e := Envelope{Kind: KindChange, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 5, I: 1}, Ordinal: 2, Token: "82", Operation: "update",
		Mutations: []transform.Mutation{{Table: "a.b", Op: 1, Key: []transform.Value{transform.Text("x")}, Values: []transform.Value{transform.Text("x"), transform.Null}}}}
	b, err := Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := json.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	version3 := append([]byte{3}, b[1:]...)
	for _, b := range [][]byte{
		[]byte(`{"v":1,"kind":"change","collection":"a.b","cluster_time":{"t":5,"i":1},"ord":2,"token":"82","op":"update",` +
			`"mutations":[{"table":"a.b","op":1,"key":[{"t":"x","v":true}],"values":[{"t":"x","v":true},{}]}]}`),
		rendered, version3, {}, {0}, []byte("not json"),
	} {
		if got, err := Decode(b); err == nil {
			t.Errorf("%q decoded: %#v", b, got)
		}
	}
}

// TestDecodeCopies: Decode's result does not change with the message
// bytes; DecodeShared's strings are views of them.
func TestDecodeCopies(t *testing.T) {
	e := Envelope{Kind: KindChange, Collection: "a.b", Ordinal: 1, Token: "tok", Mutations: []transform.Mutation{{Table: "t", Op: 1, Key: []transform.Value{transform.Text("key")}}}}
	b, err := Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := DecodeShared(b)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("key"))
	b[i] = 'K'
	if copied.Mutations[0].Key[0].Text != "key" {
		t.Fatalf("Decode's value changed with the message: %q", copied.Mutations[0].Key[0].Text)
	}
	if shared.Mutations[0].Key[0].Text != "Key" {
		t.Fatalf("DecodeShared's value is not a view of the message: %q", shared.Mutations[0].Key[0].Text)
	}
}

func TestAppendEncodeAppends(t *testing.T) {
	e := Envelope{Kind: KindHeartbeat, Collection: "a.b"}
	got, err := AppendEncode([]byte("prefix"), &e)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(got[len("prefix"):])
	if err != nil {
		t.Fatal(err)
	}
	if back.Collection != "a.b" || back.Kind != KindHeartbeat {
		t.Fatalf("decoded %+v", back)
	}
	if _, err := AppendEncode(nil, &Envelope{Kind: "other"}); err == nil {
		t.Fatal("an unknown kind encoded")
	}
}

// FuzzDecode: no input panics the decoder, and whatever decodes encodes
// and decodes to the same envelope.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		e := randomEnvelope(r)
		b, _ := Encode(&e)
		f.Add(b)
	}
	for _, e := range fuzzSeeds() {
		b, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"kind":"heartbeat","collection":"a.b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if !IsBinary(b) {
			t.Fatalf("%q decoded without the binary format byte", b)
		}
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("decoded envelope does not encode: %v", err)
		}
		back, err := Decode(again)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("re-encoded envelope differs (%v):\n got %#v\nwant %#v", err, back, e)
		}
	})
}

// fuzzSeeds are envelopes of the shapes the applier meets: escapes and
// non-ASCII text in values, a wall time, an upsert and a delete in one
// event, the largest cluster time, a dead letter with its raw event, an
// empty key and a child without rows.
func fuzzSeeds() []*Envelope {
	wall := time.Date(2026, 1, 2, 3, 4, 5, 6000000, time.UTC)
	upsert := transform.Mutation{Table: "app.items", Op: transform.OpUpsert,
		Key:    []transform.Value{transform.Text("x\t\"y\"\\é\u2028")},
		Values: []transform.Value{transform.Text("x\t\"y\"\\é\u2028"), transform.Text("3"), transform.Null, transform.Text(`{"a": [1, "two"]}`)},
		Children: []transform.ChildRows{{Table: "app.item_tags", Rows: [][]transform.Value{
			{transform.Text("x"), transform.Text("0"), transform.Text("a")},
			{transform.Text("x"), transform.Text("1"), transform.Text("b")}}}}}
	del := transform.Mutation{Table: "app.items", Op: transform.OpDelete, Key: []transform.Value{transform.Text("z")}}
	return []*Envelope{
		{Kind: KindChange, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 1, I: 2}, Ordinal: 1, WallTime: wall,
			Token: "8260", Operation: "update", DocumentKey: `{"_id": {"$oid": "65"}}`, Mutations: []transform.Mutation{upsert, del}},
		{Kind: KindHeartbeat, Collection: "a.b", ClusterTime: transform.ClusterTime{T: 1<<32 - 1, I: 1}},
		{Kind: KindDeadLetter, Collection: "a.b", DeadLetter: &DeadLetter{Error: "e", RawEvent: json.RawMessage(`{"a":1}`)}},
		{Kind: KindChange, Collection: "a.b", Ordinal: 1, Mutations: []transform.Mutation{{Table: "t", Op: 1, Key: []transform.Value{}, Children: []transform.ChildRows{{Table: "c"}}}}},
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
			if r.IntN(4) != 0 {
				vs[i] = transform.Text(str())
			}
		}
		return vs
	}
	e := Envelope{Kind: []Kind{KindChange, KindHeartbeat, KindControl}[r.IntN(3)], Collection: str(),
		ClusterTime: transform.ClusterTime{T: r.Uint32(), I: r.Uint32()}, Token: str(), Operation: str(), DocumentKey: str()}
	if r.IntN(3) != 0 {
		e.WallTime = time.Unix(r.Int64N(1<<33), r.Int64N(1e9)).UTC()
	}
	if e.Kind == KindChange || r.IntN(2) == 0 {
		e.Ordinal = 1 + r.Uint32N(1<<32-1) // a change envelope carries one
	}
	if r.IntN(6) == 0 {
		e.Kind = KindDeadLetter
		e.DeadLetter = &DeadLetter{Error: str(), Path: str()}
		if r.IntN(3) != 0 {
			e.DeadLetter.RawEvent = json.RawMessage(`{"_id":` + strconv.Quote(str()) + `}`)
		}
	}
	for range r.IntN(3) {
		m := transform.Mutation{Table: str(), Op: transform.Op(r.IntN(3)), Key: vals(), Values: vals()}
		if r.IntN(3) == 0 {
			m.Identity = str() + "x"
		}
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
