package mongoemu

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Val is one BSON value. Scalars and untouched containers keep their raw
// bytes in B (the value payload, without type byte or key). Containers that
// have been parsed for mutation hold their contents in D or A instead; B is
// then ignored. The zero Val (T == 0) means "missing".
type Val struct {
	T bsoncore.Type
	B []byte
	D *Doc
	A *Arr
}

// Doc is a mutable, order-preserving BSON document.
type Doc struct {
	E []Elem
}

// Elem is one field of a Doc.
type Elem struct {
	K string
	V Val
}

// Arr is a mutable BSON array.
type Arr struct {
	V []Val
}

const (
	tDouble  = bsoncore.TypeDouble
	tString  = bsoncore.TypeString
	tDoc     = bsoncore.TypeEmbeddedDocument
	tArray   = bsoncore.TypeArray
	tBinary  = bsoncore.TypeBinary
	tUndef   = bsoncore.TypeUndefined
	tOID     = bsoncore.TypeObjectID
	tBool    = bsoncore.TypeBoolean
	tDate    = bsoncore.TypeDateTime
	tNull    = bsoncore.TypeNull
	tRegex   = bsoncore.TypeRegex
	tDBPtr   = bsoncore.TypeDBPointer
	tJS      = bsoncore.TypeJavaScript
	tSymbol  = bsoncore.TypeSymbol
	tJSScope = bsoncore.TypeCodeWithScope
	tInt32   = bsoncore.TypeInt32
	tTS      = bsoncore.TypeTimestamp
	tInt64   = bsoncore.TypeInt64
	tDecimal = bsoncore.TypeDecimal128
	tMinKey  = bsoncore.TypeMinKey
	tMaxKey  = bsoncore.TypeMaxKey
)

var missing = Val{}

func (v Val) exists() bool { return v.T != 0 }
func (v Val) isNumber() bool {
	return v.T == tInt32 || v.T == tInt64 || v.T == tDouble || v.T == tDecimal
}
func (v Val) isNullish() bool { return v.T == 0 || v.T == tNull || v.T == tUndef }

func fromCore(cv bsoncore.Value) Val { return Val{T: cv.Type, B: cv.Data} }

func vInt32(i int32) Val    { return Val{T: tInt32, B: bsoncore.AppendInt32(nil, i)} }
func vInt64(i int64) Val    { return Val{T: tInt64, B: bsoncore.AppendInt64(nil, i)} }
func vDouble(f float64) Val { return Val{T: tDouble, B: bsoncore.AppendDouble(nil, f)} }
func vString(s string) Val  { return Val{T: tString, B: bsoncore.AppendString(nil, s)} }
func vBool(b bool) Val      { return Val{T: tBool, B: bsoncore.AppendBoolean(nil, b)} }
func vNull() Val            { return Val{T: tNull} }
func vDate(ms int64) Val    { return Val{T: tDate, B: bsoncore.AppendDateTime(nil, ms)} }
func vTS(t, i uint32) Val   { return Val{T: tTS, B: bsoncore.AppendTimestamp(nil, t, i)} }
func vDoc(d *Doc) Val       { return Val{T: tDoc, D: d} }
func vArr(vals []Val) Val   { return Val{T: tArray, A: &Arr{V: vals}} }
func vRawDoc(b []byte) Val  { return Val{T: tDoc, B: b} }

// vInt returns an int32 value when n fits, otherwise int64 (as the server does
// for counts).
func vInt(n int64) Val {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		return vInt32(int32(n))
	}
	return vInt64(n)
}

func (v Val) core() bsoncore.Value { return bsoncore.Value{Type: v.T, Data: v.B} }

func (v Val) str() string {
	if v.T == tString || v.T == tSymbol {
		s, _, _ := bsoncore.ReadString(v.B)
		return s
	}
	return ""
}

func (v Val) boolean() bool { return v.T == tBool && len(v.B) > 0 && v.B[0] == 1 }

// truthy implements aggregation truthiness.
func (v Val) truthy() bool {
	switch v.T {
	case 0, tNull, tUndef:
		return false
	case tBool:
		return v.boolean()
	case tInt32, tInt64, tDouble, tDecimal:
		return !numIsZero(v)
	}
	return true
}

// asInt64 converts any number to int64 (truncating doubles).
func (v Val) asInt64() (int64, bool) {
	switch v.T {
	case tInt32:
		return int64(int32(binary.LittleEndian.Uint32(v.B))), true
	case tInt64:
		return int64(binary.LittleEndian.Uint64(v.B)), true
	case tDouble:
		f := math.Float64frombits(binary.LittleEndian.Uint64(v.B))
		if math.IsNaN(f) {
			return 0, false
		}
		return int64(f), true
	case tDecimal:
		f, ok := decToFloat(v)
		return int64(f), ok
	}
	return 0, false
}

func (v Val) asFloat() (float64, bool) {
	switch v.T {
	case tInt32, tInt64:
		i, _ := v.asInt64()
		return float64(i), true
	case tDouble:
		return math.Float64frombits(binary.LittleEndian.Uint64(v.B)), true
	case tDecimal:
		return decToFloat(v)
	}
	return 0, false
}

func (v Val) timestamp() (uint32, uint32) {
	if v.T != tTS || len(v.B) < 8 {
		return 0, 0
	}
	return binary.LittleEndian.Uint32(v.B[4:]), binary.LittleEndian.Uint32(v.B[:4])
}

func (v Val) dateMS() int64 {
	if v.T != tDate {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(v.B))
}

// doc returns the document contents of v, parsing raw bytes on demand. The
// returned Doc must not be mutated unless v was obtained via a mutable path.
func (v Val) doc() *Doc {
	if v.D != nil {
		return v.D
	}
	if v.T != tDoc && v.T != tArray {
		return nil
	}
	d, _ := parseDoc(v.B)
	return d
}

// elems returns the elements of an array value.
func (v Val) elems() []Val {
	if v.A != nil {
		return v.A.V
	}
	if v.T != tArray {
		return nil
	}
	var out []Val
	it := bsoncore.Document(v.B)
	els, err := it.Elements()
	if err != nil {
		return nil
	}
	out = make([]Val, 0, len(els))
	for _, e := range els {
		out = append(out, fromCore(e.Value()))
	}
	return out
}

// field returns the named field of a document value without parsing the
// whole document when it is still raw.
func (v Val) field(k string) Val {
	if v.T != tDoc {
		return missing
	}
	if v.D != nil {
		return v.D.Get(k)
	}
	return rawLookup(v.B, k)
}

// rawLookup scans raw document bytes for a top-level key.
func rawLookup(doc []byte, k string) Val {
	if len(doc) < 5 {
		return missing
	}
	rem := doc[4 : len(doc)-1]
	for len(rem) > 0 {
		t := bsoncore.Type(rem[0])
		rem = rem[1:]
		i := 0
		for i < len(rem) && rem[i] != 0 {
			i++
		}
		if i >= len(rem) {
			return missing
		}
		key := rem[:i]
		rem = rem[i+1:]
		val, r2, ok := bsoncore.ReadValue(rem, t)
		if !ok {
			return missing
		}
		if string(key) == k {
			return Val{T: t, B: val.Data}
		}
		rem = r2
	}
	return missing
}

// parseDoc parses raw document bytes one level deep; nested containers stay raw.
func parseDoc(b []byte) (*Doc, error) {
	if len(b) < 5 {
		return nil, errBadValue("invalid BSON document")
	}
	d := &Doc{}
	rem := b[4 : len(b)-1]
	for len(rem) > 0 {
		t := bsoncore.Type(rem[0])
		rem = rem[1:]
		i := 0
		for i < len(rem) && rem[i] != 0 {
			i++
		}
		if i >= len(rem) {
			return nil, errBadValue("invalid BSON document")
		}
		key := string(rem[:i])
		rem = rem[i+1:]
		val, r2, ok := bsoncore.ReadValue(rem, t)
		if !ok {
			return nil, errBadValue("invalid BSON document")
		}
		d.E = append(d.E, Elem{K: key, V: Val{T: t, B: val.Data}})
		rem = r2
	}
	return d, nil
}

func mustDoc(b []byte) *Doc {
	d, err := parseDoc(b)
	if err != nil {
		return &Doc{}
	}
	return d
}

// Get returns the value of field k, or missing.
func (d *Doc) Get(k string) Val {
	if d == nil {
		return missing
	}
	for i := range d.E {
		if d.E[i].K == k {
			return d.E[i].V
		}
	}
	return missing
}

func (d *Doc) index(k string) int {
	for i := range d.E {
		if d.E[i].K == k {
			return i
		}
	}
	return -1
}

// Set replaces field k in place or appends it.
func (d *Doc) Set(k string, v Val) {
	if i := d.index(k); i >= 0 {
		d.E[i].V = v
		return
	}
	d.E = append(d.E, Elem{K: k, V: v})
}

// Delete removes field k; it reports whether it existed.
func (d *Doc) Delete(k string) bool {
	if i := d.index(k); i >= 0 {
		d.E = append(d.E[:i], d.E[i+1:]...)
		return true
	}
	return false
}

// Append adds a field without checking for duplicates.
func (d *Doc) Append(k string, v Val) *Doc {
	d.E = append(d.E, Elem{K: k, V: v})
	return d
}

// Bytes serialises the document.
func (d *Doc) Bytes() []byte { return d.AppendTo(make([]byte, 0, 64)) }

// AppendTo appends the serialised document to dst.
func (d *Doc) AppendTo(dst []byte) []byte {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	for _, e := range d.E {
		dst = appendElem(dst, e.K, e.V)
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

func appendElem(dst []byte, k string, v Val) []byte {
	if v.T == 0 {
		return dst
	}
	dst = bsoncore.AppendHeader(dst, v.T, k)
	return appendValue(dst, v)
}

func appendValue(dst []byte, v Val) []byte {
	switch {
	case v.D != nil:
		return v.D.AppendTo(dst)
	case v.A != nil:
		idx, d2 := bsoncore.AppendArrayStart(dst)
		for i, e := range v.A.V {
			if e.T == 0 {
				e = vNull()
			}
			d2 = appendElem(d2, strconv.Itoa(i), e)
		}
		d2, _ = bsoncore.AppendArrayEnd(d2, idx)
		return d2
	case (v.T == tDoc || v.T == tArray) && len(v.B) == 0:
		return append(dst, 5, 0, 0, 0, 0)
	}
	return append(dst, v.B...)
}

// raw returns the serialised payload of v (for containers, the full document).
func (v Val) raw() []byte {
	if v.D == nil && v.A == nil {
		return v.B
	}
	return appendValue(nil, v)
}

// mutableDoc returns a parsed, mutable Doc for a document value, converting it
// in place if it is still raw.
func (v *Val) mutableDoc() *Doc {
	if v.D == nil {
		d, _ := parseDoc(v.B)
		if d == nil {
			d = &Doc{}
		}
		v.D = d
		v.B = nil
	}
	return v.D
}

// mutableArr returns a mutable Arr for an array value.
func (v *Val) mutableArr() *Arr {
	if v.A == nil {
		v.A = &Arr{V: v.elems()}
		v.B = nil
	}
	return v.A
}

// clone returns a deep copy safe to mutate independently.
func (v Val) clone() Val {
	switch {
	case v.D != nil:
		return Val{T: v.T, D: v.D.clone()}
	case v.A != nil:
		out := make([]Val, len(v.A.V))
		for i, e := range v.A.V {
			out[i] = e.clone()
		}
		return Val{T: v.T, A: &Arr{V: out}}
	}
	return v
}

func (d *Doc) clone() *Doc {
	out := &Doc{E: make([]Elem, len(d.E))}
	for i, e := range d.E {
		out.E[i] = Elem{K: e.K, V: e.V.clone()}
	}
	return out
}

func nowMS() int64 { return time.Now().UnixMilli() }

// docOf builds a Doc from alternating key/value pairs.
func docOf(kv ...any) *Doc {
	d := &Doc{E: make([]Elem, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		d.E = append(d.E, Elem{K: kv[i].(string), V: toVal(kv[i+1])})
	}
	return d
}

// toVal converts a few Go types to Val for building replies.
func toVal(x any) Val {
	switch t := x.(type) {
	case Val:
		return t
	case *Doc:
		return vDoc(t)
	case string:
		return vString(t)
	case int:
		return vInt(int64(t))
	case int32:
		return vInt32(t)
	case int64:
		return vInt64(t)
	case float64:
		return vDouble(t)
	case bool:
		return vBool(t)
	case nil:
		return vNull()
	case []Val:
		return vArr(t)
	case []string:
		vals := make([]Val, len(t))
		for i, s := range t {
			vals[i] = vString(s)
		}
		return vArr(vals)
	case bsoncore.Document:
		return vRawDoc(t)
	}
	panic("toVal: unsupported type")
}
