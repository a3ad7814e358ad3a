package transform

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// idMapping compiles a collection whose _id is the implicit text column
// (or the columns given), with a child table so parent keys are checked.
func idMapping(t testing.TB, cols Columns, key ...string) *Mapping {
	t.Helper()
	if cols == nil {
		cols = Columns{{Name: "n", ColumnConfig: ColumnConfig{Path: "n", Type: "bigint"}}}
	}
	m, err := Compile(CollectionConfig{
		Source: "db.things", Table: "app.things", Key: key, Columns: cols,
		Children: []ChildConfig{{Path: "kids", Table: "app.thing_kids",
			Columns: Columns{{Name: "kid", ColumnConfig: ColumnConfig{Path: ".", Type: "text"}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// idDoc is a document with _id id, one field and a two-element child array.
func idDoc(id any) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "n", Value: int64(7)}, {Key: "kids", Value: bson.A{"a", "b"}}}
}

func mustRaw(t testing.TB, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyTexts returns the key text of id as every path writes it: the
// snapshot row (key, column, every child row's parent key), an insert,
// an update and a replace from fullDocument, and a delete from the
// documentKey. It fails the test if any two differ.
func keyTexts(t *testing.T, m *Mapping, id any) (string, error) {
	t.Helper()
	var texts []string
	snap, err := m.SnapshotRow(mustRaw(t, idDoc(id)), ClusterTime{})
	if err != nil {
		return "", err
	}
	texts = append(texts, snap.Key[0].Text, snap.Values[0].Text)
	for _, ch := range snap.Children {
		for _, r := range ch.Rows {
			texts = append(texts, r[0].Text)
		}
	}
	key := bson.D{{Key: "_id", Value: id}}
	for _, op := range []string{"insert", "update", "replace", "delete"} {
		var doc any
		if op != "delete" {
			doc = idDoc(id)
		}
		raw := event(op, key, doc, bson.E{Key: "ns", Value: bson.D{{Key: "db", Value: "db"}, {Key: "coll", Value: "things"}}})
		ev, err := ParseEvent(raw)
		if err != nil {
			t.Fatal(err)
		}
		r, err := m.Transform(ev)
		if err != nil {
			return "", err
		}
		mut := r.Mutations[0]
		texts = append(texts, mut.Key[0].Text)
		if op != "delete" {
			texts = append(texts, mut.Values[0].Text, mut.Children[0].Rows[0][0].Text)
		}
	}
	for _, s := range texts[1:] {
		if s != texts[0] {
			t.Fatalf("_id %#v: key texts differ between paths: %q", id, texts)
		}
	}
	return texts[0], nil
}

func bin(st byte, data ...byte) bson.Binary { return bson.Binary{Subtype: st, Data: data} }

// idTextCases: the key text of every BSON type an _id can hold (TYPES.md,
// "The _id key text").
var idTextCases = []struct {
	name string
	id   any
	want string
}{
	{"objectid", oid(), "65a1b2c3d4e5f60718293a4b"},
	{"string", "GHSA-1", "GHSA-1"},
	{"string digits", "1", "1"},
	{"string empty", "", ""},
	{"string hex of objectid", "65a1b2c3d4e5f60718293a4b", "~str:65a1b2c3d4e5f60718293a4b"},
	{"string upper hex", "65A1B2C3D4E5F60718293A4B", "65A1B2C3D4E5F60718293A4B"},
	{"string 23 hex", "65a1b2c3d4e5f60718293a4", "65a1b2c3d4e5f60718293a4"},
	{"string tilde", "~x", "~str:~x"},
	{"string tagged-looking", "~str:abc", "~str:~str:abc"},
	{"string num-looking", "~num:1", "~str:~num:1"},
	{"string inner tilde", "a~b", "a~b"},
	{"symbol", bson.Symbol("sym"), "sym"},
	{"symbol hex", bson.Symbol("65a1b2c3d4e5f60718293a4b"), "~str:65a1b2c3d4e5f60718293a4b"},
	{"int32", int32(1), "~num:1"},
	{"int32 negative", int32(-42), "~num:-42"},
	{"int64", int64(1), "~num:1"},
	{"int64 max", int64(math.MaxInt64), "~num:9223372036854775807"},
	{"int64 min", int64(math.MinInt64), "~num:-9223372036854775808"},
	{"int64 2^53+1", int64(1<<53 + 1), "~num:9007199254740993"},
	{"int64 trailing zeros", int64(1_000_000), "~num:1000000"},
	{"double integral", 1.0, "~num:1"},
	{"double 2^53", float64(1 << 53), "~num:9007199254740992"},
	{"double fraction", 1.5, "~num:1.5"},
	{"double negative zero", math.Copysign(0, -1), "~num:0"},
	{"double 0.1 exact", 0.1, "~num:0.1000000000000000055511151231257827021181583404541015625"},
	{"double 2^63", math.Pow(2, 63), "~num:9223372036854775808"},
	{"double 1e20", 1e20, "~num:100000000000000000000"},
	{"double 1e21", 1e21, "~num:1e+21"},
	{"double 2^-20", math.Pow(2, -20), "~num:9.5367431640625e-7"},
	{"double NaN", math.NaN(), "~num:NaN"},
	{"double +Inf", math.Inf(1), "~num:Infinity"},
	{"double -Inf", math.Inf(-1), "~num:-Infinity"},
	{"decimal 1", dec("1"), "~num:1"},
	{"decimal 1.00", dec("1.00"), "~num:1"},
	{"decimal 1E+2", dec("1E+2"), "~num:100"},
	{"decimal 0.1", dec("0.1"), "~num:0.1"},
	{"decimal -0.00", dec("-0.00"), "~num:0"},
	{"decimal 1.50", dec("1.50"), "~num:1.5"},
	{"decimal 0.000001", dec("0.000001"), "~num:0.000001"},
	{"decimal 1E-7", dec("1E-7"), "~num:1e-7"},
	{"decimal -1.25E-7", dec("-1.25E-7"), "~num:-1.25e-7"},
	{"decimal 1.0E+21", dec("1.0E+21"), "~num:1e+21"},
	{"decimal max", dec("9.999999999999999999999999999999999E+6144"), "~num:9.999999999999999999999999999999999e+6144"},
	{"decimal NaN", dec("NaN"), "~num:NaN"},
	{"decimal -Infinity", dec("-Infinity"), "~num:-Infinity"},
	{"boolean true", true, "~bool:true"},
	{"boolean false", false, "~bool:false"},
	{"date", date(2024, 2, 29, 13, 14, 15, 678), "~date:2024-02-29T13:14:15.678Z"},
	{"date epoch", bson.DateTime(0), "~date:1970-01-01T00:00:00.000Z"},
	{"date before 1970", bson.DateTime(-1), "~date:1969-12-31T23:59:59.999Z"},
	{"date year 1", date(1, 1, 1, 0, 0, 0, 0), "~date:0001-01-01T00:00:00.000Z"},
	{"date before year 1", bson.DateTime(-62135596800001), "~date:-62135596800001"},
	{"date after 9999", bson.DateTime(253402300800000), "~date:253402300800000"},
	{"date max", bson.DateTime(math.MaxInt64), "~date:9223372036854775807"},
	{"uuid", bin(4, uuidBytes...), "~uuid:00112233-4455-6677-8899-aabbccddeeff"},
	{"uuid legacy", bin(3, uuidBytes...), "~uuid3:00112233-4455-6677-8899-aabbccddeeff"},
	{"uuid short", bin(4, 1, 2, 3), "~bin:04:AQID"},
	{"binary generic", bin(0, 1, 2, 3), "~bin:00:AQID"},
	{"binary empty", bin(0), "~bin:00:"},
	{"binary user", bin(0x80, 0xff), "~bin:80:/w=="},
	{"document", bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: "x"}}, `~doc:{"a":1,"b":"x"}`},
	{"document int64", bson.D{{Key: "a", Value: int64(1)}, {Key: "b", Value: "x"}}, `~doc:{"a":1,"b":"x"}`},
	{"document order", bson.D{{Key: "b", Value: "x"}, {Key: "a", Value: int32(1)}}, `~doc:{"b":"x","a":1}`},
	{"document string", bson.D{{Key: "a", Value: "1"}}, `~doc:{"a":"1"}`},
	{"document objectid", bson.D{{Key: "o", Value: oid()}}, `~doc:{"o":{"$oid":"65a1b2c3d4e5f60718293a4b"}}`},
	{"document empty", bson.D{}, `~doc:{}`},
	{"null", nil, "~null"},
	{"minkey", bson.MinKey{}, "~minkey"},
	{"maxkey", bson.MaxKey{}, "~maxkey"},
	{"timestamp", bson.Timestamp{T: 1700000000, I: 5}, "~ts:1700000000:5"},
	{"javascript", bson.JavaScript("f()"), `~js:{"$code":"f()"}`},
	{"javascript with scope", bson.CodeWithScope{Code: "f()", Scope: bson.D{{Key: "x", Value: int32(1)}}}, `~jsscope:{"$code":"f()","$scope":{"x":1}}`},
	{"dbpointer", bson.DBPointer{DB: "db.c", Pointer: oid()}, `~dbpointer:{"$dbPointer":{"$ref":"db.c","$id":{"$oid":"65a1b2c3d4e5f60718293a4b"}}}`},
}

// TestIDKeyText: the implicit _id column writes the key text of TYPES.md,
// the same on every path (snapshot, insert, update, replace, delete, child
// parent keys).
func TestIDKeyText(t *testing.T) {
	m := idMapping(t, nil)
	for _, tc := range idTextCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keyTexts(t, m, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("key text %q, want %q", got, tc.want)
			}
		})
	}
}

// TestIDKeyTextInjective: _ids MongoDB keeps apart never share a key text;
// numbers equal in value (which MongoDB's unique _id index treats as one
// key) share one.
func TestIDKeyTextInjective(t *testing.T) {
	m := idMapping(t, nil)
	// Each group holds _ids MongoDB treats as the same key; different
	// groups are different documents.
	groups := [][]any{
		{"1"}, {int32(1), int64(1), 1.0, dec("1"), dec("1.0"), dec("0.001E+3")},
		{oid()}, {"65a1b2c3d4e5f60718293a4b"}, {"~65a1b2c3d4e5f60718293a4b"},
		{"~x"}, {"~str:~x"}, {"~str:abc"}, {"abc"}, {"~num:1"}, {"~bool:true"}, {"~null"}, {"~"},
		{int64(0), 0.0, math.Copysign(0, -1), dec("0"), dec("-0E+10")},
		{0.1}, {dec("0.1")}, {"0.1"},
		{int64(1<<53 + 1)}, {float64(1 << 53), int64(1 << 53)},
		{math.NaN(), dec("NaN")}, {math.Inf(1), dec("Infinity")}, {"Infinity"},
		{1e21, dec("1E+21")}, {"1e+21"},
		{true}, {"true"}, {false},
		{date(2024, 1, 1, 0, 0, 0, 0)}, {"2024-01-01T00:00:00.000Z"}, {bson.DateTime(1704067200000 + 1)},
		{bin(4, uuidBytes...)}, {bin(3, uuidBytes...)}, {bin(0, uuidBytes...)}, {"00112233-4455-6677-8899-aabbccddeeff"},
		{bson.D{{Key: "a", Value: int32(1)}}}, {bson.D{{Key: "a", Value: "1"}}}, {bson.D{{Key: "a", Value: 1.0}}},
		{bson.Timestamp{T: 1, I: 2}}, {bson.Timestamp{T: 12}}, {nil}, {bson.MinKey{}}, {bson.MaxKey{}},
	}
	owner := map[string]int{}
	for gi, g := range groups {
		var first string
		for i, id := range g {
			s, err := keyTexts(t, m, id)
			if err != nil {
				t.Fatalf("_id %#v: %v", id, err)
			}
			if i == 0 {
				first = s
			} else if s != first {
				t.Errorf("_id %#v has key text %q, %#v has %q: equal _ids must share one", id, s, g[0], first)
			}
			if o, ok := owner[s]; ok && o != gi {
				t.Errorf("_id %#v and %#v share key text %q", id, groups[o][0], s)
			}
			owner[s] = gi
		}
	}
}

// TestIDKeyTextNumbers: a number's key text is its exact value (it reads
// back as the same rational number) in one canonical spelling, so equal
// numbers of different BSON types give equal text and different numbers
// different text.
func TestIDKeyTextNumbers(t *testing.T) {
	m := idMapping(t, nil)
	r := rand.New(rand.NewPCG(1, 2))
	text := func(id any) string {
		s, err := keyTexts(t, m, id)
		if err != nil {
			t.Fatal(err)
		}
		num, ok := strings.CutPrefix(s, "~num:")
		if !ok {
			t.Fatalf("_id %#v: key text %q has no ~num: tag", id, s)
		}
		return num
	}
	exact := func(id any, s string, want *big.Rat) {
		t.Helper()
		got, ok := new(big.Rat).SetString(s)
		if !ok || got.Cmp(want) != 0 {
			t.Fatalf("_id %#v: key text %q does not read back as %s", id, s, want.FloatString(20))
		}
		if s != canonicalRat(want) {
			t.Fatalf("_id %#v: key text %q, canonical spelling is %q", id, s, canonicalRat(want))
		}
	}
	for i := 0; i < 3000; i++ {
		var f float64
		switch i % 3 {
		case 0:
			f = math.Float64frombits(r.Uint64())
		case 1:
			f = float64(r.Int64N(1<<40)-1<<39) / float64(int64(1)<<r.IntN(30))
		default:
			f = float64(r.Int64N(1 << 62))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		want := new(big.Rat).SetFloat64(f)
		s := text(f)
		exact(f, s, want)
		if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			if got := text(int64(f)); got != s {
				t.Fatalf("double %v gives %q, int64 %d gives %q", f, s, int64(f), got)
			}
		}
		if d, err := bson.ParseDecimal128(strconv.FormatFloat(f, 'e', -1, 64)); err == nil {
			ds := text(d)
			wantD, _ := new(big.Rat).SetString(d.String())
			exact(d, ds, wantD)
			if (ds == s) != (wantD.Cmp(want) == 0) {
				t.Fatalf("double %v gives %q, decimal %s gives %q", f, s, d, ds)
			}
		}
	}
	for i := 0; i < 1000; i++ {
		n := int64(r.Uint64())
		s := text(n)
		exact(n, s, new(big.Rat).SetInt64(n))
		if int64(int32(n)) == n {
			if got := text(int32(n)); got != s {
				t.Fatalf("int32 %d gives %q, int64 %q", n, got, s)
			}
		}
		d, err := bson.ParseDecimal128(strconv.FormatInt(n, 10) + "00E-2")
		if err != nil {
			t.Fatal(err)
		}
		if got := text(d); got != s {
			t.Fatalf("decimal %s gives %q, int64 %d gives %q", d, got, n, s)
		}
	}
}

// canonicalRat spells a finite rational with a finite decimal expansion as
// TYPES.md says: the significant digits in plain notation when the
// decimal exponent of the first digit is between -6 and 20, else
// d.ddd…e±x.
func canonicalRat(x *big.Rat) string {
	if x.Sign() == 0 {
		return "0"
	}
	neg := x.Sign() < 0
	a := new(big.Rat).Abs(x)
	// a = digits × 10^exp with digits an integer without trailing zeros:
	// the denominator is 2^i·5^j, and 10^k with k its bit length is a
	// multiple of it.
	k := a.Denom().BitLen()
	exp := -k
	a.Mul(a, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil)))
	if !a.IsInt() {
		panic("no finite decimal expansion")
	}
	s := a.Num().String()
	for strings.HasSuffix(s, "0") {
		s = s[:len(s)-1]
		exp++
	}
	lead := exp + len(s) - 1
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case lead < -6 || lead > 20:
		b.WriteString(s[:1])
		if len(s) > 1 {
			b.WriteString("." + s[1:])
		}
		b.WriteString("e")
		if lead > 0 {
			b.WriteByte('+')
		}
		b.WriteString(strconv.Itoa(lead))
	case exp >= 0:
		b.WriteString(s + strings.Repeat("0", exp))
	case lead >= 0:
		b.WriteString(s[:lead+1] + "." + s[lead+1:])
	default:
		b.WriteString("0." + strings.Repeat("0", -lead-1) + s)
	}
	return b.String()
}

// TestIDKeyTextMappedColumn: a column that maps path _id with type text or
// varchar(n) writes the same key text as the implicit column, key or not;
// other column types keep their own conversion.
func TestIDKeyTextMappedColumn(t *testing.T) {
	col := func(name, path, typ string) Column {
		return Column{Name: name, ColumnConfig: ColumnConfig{Path: path, Type: typ}}
	}
	text := idMapping(t, Columns{col("id", "_id", "text"), col("n", "n", "bigint")})
	varchar := idMapping(t, Columns{col("id", "_id", "varchar(30)"), col("n", "n", "bigint")})
	for _, tc := range idTextCases {
		if len(tc.want) > 30 {
			continue
		}
		for name, m := range map[string]*Mapping{"text": text, "varchar": varchar} {
			got, err := keyTexts(t, m, tc.id)
			if err != nil {
				t.Fatalf("%s %s: %v", name, tc.name, err)
			}
			if got != tc.want {
				t.Errorf("%s %s: key text %q, want %q", name, tc.name, got, tc.want)
			}
		}
	}
	// varchar(n) counts the characters of the key text.
	if _, err := keyTexts(t, varchar, 0.1); err == nil || !strings.Contains(err.Error(), "exceeds varchar(30)") {
		t.Errorf("0.1 in varchar(30): %v, want a length error", err)
	}

	// Not the key: the column still writes the key text.
	other := idMapping(t, Columns{col("code", "n", "bigint"), col("mongo_id", "_id", "text")}, "code")
	mut, err := other.SnapshotRow(mustRaw(t, idDoc(int32(1))), ClusterTime{})
	if err != nil {
		t.Fatal(err)
	}
	if mut.Key[0].Text != "7" || mut.Values[1].Text != "~num:1" {
		t.Errorf("key %v values %v, want key 7 and mongo_id ~num:1", mut.Key, mut.Values)
	}

	// A typed _id column converts by its type.
	typed := idMapping(t, Columns{col("id", "_id", "bigint")})
	if got, err := keyTexts(t, typed, int32(1)); err != nil || got != "1" {
		t.Errorf("bigint _id: %q, %v", got, err)
	}
	if _, err := keyTexts(t, typed, "1"); err == nil {
		t.Error("string _id in a bigint column converts")
	}
	uuidCol := idMapping(t, Columns{col("id", "_id", "uuid")})
	if got, err := keyTexts(t, uuidCol, bin(4, uuidBytes...)); err != nil || got != "00112233-4455-6677-8899-aabbccddeeff" {
		t.Errorf("uuid _id: %q, %v", got, err)
	}
}

// TestIDKeyTextErrors: an _id PostgreSQL text cannot hold is a transform
// error naming the document, never a silent change.
func TestIDKeyTextErrors(t *testing.T) {
	m := idMapping(t, nil)
	for _, id := range []any{"a\x00b", bson.D{{Key: "a", Value: "x\x00"}}, bson.Symbol("\xff")} {
		_, err := keyTexts(t, m, id)
		var te *Error
		if !errors.As(err, &te) || !strings.HasPrefix(te.Path, "_id") || te.DocumentKey == "" {
			t.Errorf("_id %#v: error %v, want a transform error at _id naming the document", id, err)
		}
	}
}

// FuzzIDText computes the key text of every field of an arbitrary
// document. It must never panic, be deterministic, be valid PostgreSQL
// text, and two scalar fields may share a text only if MongoDB treats
// them as one _id (the same string, or numbers equal in value).
func FuzzIDText(f *testing.F) {
	var all bson.D
	for i, tc := range idTextCases {
		all = append(all, bson.E{Key: "v" + strconv.Itoa(i), Value: tc.id})
	}
	f.Add([]byte(mustRaw(f, all)))
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		seen := map[string]rawValue{}
		it := newDocIter(doc)
		for _, v, ok := it.next(); ok; _, v, ok = it.next() {
			a, aerr := appendIDText(nil, v, uuidStandard)
			b, berr := appendIDText(nil, v, uuidStandard)
			if string(a) != string(b) || (aerr == nil) != (berr == nil) {
				t.Fatal("key text is not deterministic")
			}
			if aerr != nil {
				continue
			}
			if err := validText(a); err != nil {
				t.Fatalf("key text %q: %v", a, err)
			}
			switch v.typ {
			case bsonDocument, bsonArray, bsonCodeScope, bsonDBPointer:
				continue
			}
			if o, ok := seen[string(a)]; ok && !sameID(o, v) {
				t.Fatalf("BSON %s and %s share key text %q", typeName(o.typ), typeName(v.typ), a)
			}
			seen[string(a)] = v
		}
	})
}

// sameID reports whether MongoDB treats two scalar _ids as one: numbers
// equal in value, strings (and symbols) with the same bytes, or the same
// type and bytes.
func sameID(a, b rawValue) bool {
	if x, ok := exactNumber(a); ok {
		y, ok := exactNumber(b)
		return ok && x == y
	}
	str := func(v rawValue) bool { return v.typ == bsonString || v.typ == bsonSymbol }
	if str(a) && str(b) {
		return string(a.strBytes()) == string(b.strBytes())
	}
	return a.typ == b.typ && string(a.data) == string(b.data)
}

// exactNumber returns a number's exact value as a rational ("NaN",
// "+Inf", "-Inf" for the others); ok is false for other types.
func exactNumber(v rawValue) (string, bool) {
	switch v.typ {
	case bsonInt32:
		return big.NewRat(int64(v.int32()), 1).String(), true
	case bsonInt64:
		return new(big.Rat).SetInt64(v.int64()).String(), true
	case bsonDouble:
		f := v.double()
		switch {
		case math.IsNaN(f):
			return "NaN", true
		case math.IsInf(f, 0):
			return fmt.Sprintf("%+v", f), true
		}
		return new(big.Rat).SetFloat64(f).String(), true
	case bsonDecimal:
		hi, lo := v.decimal()
		d := bson.NewDecimal128(hi, lo)
		switch {
		case d.IsNaN():
			return "NaN", true
		case d.IsInf() > 0:
			return "+Inf", true
		case d.IsInf() < 0:
			return "-Inf", true
		}
		coef, exp, err := d.BigInt()
		if err != nil {
			return "unreadable " + d.String(), true
		}
		if canonicalCoefficient(coef) == nil {
			coef = new(big.Int)
		}
		r := new(big.Rat).SetInt(coef)
		p := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(exp, -exp))), nil))
		if exp >= 0 {
			r.Mul(r, p)
		} else {
			r.Quo(r, p)
		}
		return r.String(), true
	}
	return "", false
}
