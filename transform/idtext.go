package transform

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The _id key text (TYPES.md, "The _id key text"): what a text or
// varchar(n) column mapped from path _id — the implicit id_column
// included — writes. MongoDB keeps _ids of different BSON types apart
// ("1" and 1, an ObjectId and its hex string), so the text must too, or
// two documents would share one row (ARCHITECTURE.md, guarantees 1 and 7).
//
// Invariants:
//   - Injective: _ids MongoDB stores as different documents never share a
//     text. ObjectIds are 24 lowercase hex digits; a string is itself
//     unless it is exactly 24 lowercase hex digits or starts with '~', then
//     it gets the "~str:" tag; every other type starts with "~<tag>" and
//     its tag's text is injective on its own. So the three families are
//     disjoint.
//   - Numbers by value: int32, int64, double and Decimal128 share "~num:"
//     and the exact value's one canonical spelling, because MongoDB's
//     unique _id index compares numbers by value (1, NumberLong(1) and 1.0
//     are one _id).
//   - Deterministic, and the same function everywhere the key text is
//     made: rows from fullDocument, keys from the documentKey (deletes
//     too), snapshot rows, child tables' parent keys.
//   - Strings and ObjectIds, the common case, cost no allocation.
const (
	tagStr       = "~str:"
	tagNum       = "~num:"
	tagBool      = "~bool:"
	tagDate      = "~date:"
	tagUUID      = "~uuid:"
	tagUUID3     = "~uuid3:"
	tagBin       = "~bin:"
	tagDoc       = "~doc:"
	tagArr       = "~arr:"
	tagTimestamp = "~ts:"
	tagRegex     = "~regex:"
	tagJS        = "~js:"
	tagJSScope   = "~jsscope:"
	tagDBPointer = "~dbpointer:"
	textNull     = "~null"
	textUndef    = "~undefined"
	textMinKey   = "~minkey"
	textMaxKey   = "~maxkey"
)

// Dates from year 1 to 9999 are written in RFC 3339, others as their
// milliseconds since 1970 (0001-01-01 and 10000-01-01 in Unix ms).
const (
	rfc3339MinMs = -62135596800000
	rfc3339EndMs = 253402300800000
)

// idText returns the key text of the _id value v for a text or varchar(n)
// column t, its text in a. varchar(n) limits the key text's characters.
func (a *arena) idText(t colType, v rawValue, order uuidOrder) (Value, error) {
	start := len(a.buf)
	b, err := appendIDText(a.buf, v, order)
	if err != nil {
		return Null, err
	}
	if t.kind == kVarchar {
		if n := utf8.RuneCount(b[start:]); n > t.n {
			return Null, fmt.Errorf("key text of %d characters exceeds %s", n, t)
		}
	}
	return Text(a.keep(b)), nil
}

// appendIDText appends the key text of the _id value v to b. It fails
// only for text PostgreSQL cannot hold (a NUL character, invalid UTF-8),
// with the path below v.
func appendIDText(b []byte, v rawValue, order uuidOrder) ([]byte, error) {
	switch v.typ {
	case bsonObjectID:
		return hex.AppendEncode(b, v.data), nil
	case bsonString, bsonSymbol:
		s := v.strBytes()
		if err := validText(s); err != nil {
			return nil, err
		}
		if needsStrTag(s) {
			b = append(b, tagStr...)
		}
		return append(b, s...), nil
	case bsonInt32:
		return strconv.AppendInt(append(b, tagNum...), int64(v.int32()), 10), nil
	case bsonInt64:
		return strconv.AppendInt(append(b, tagNum...), v.int64(), 10), nil
	case bsonDouble:
		return appendDoubleKey(append(b, tagNum...), v.double()), nil
	case bsonDecimal:
		hi, lo := v.decimal()
		return appendDecimalKey(append(b, tagNum...), bson.NewDecimal128(hi, lo))
	case bsonBoolean:
		return strconv.AppendBool(append(b, tagBool...), v.data[0] == 1), nil
	case bsonDateTime:
		b = append(b, tagDate...)
		if ms := v.int64(); ms < rfc3339MinMs || ms >= rfc3339EndMs {
			return strconv.AppendInt(b, ms, 10), nil
		}
		return appendTime(b, colType{kind: kTimestamptz}, v)
	case bsonBinary:
		st, data := v.binary()
		switch {
		case st == 4 && len(data) == 16:
			return appendUUID(append(b, tagUUID...), colType{kind: kUUID}, v, order)
		case st == 3 && len(data) == 16:
			return appendUUID(append(b, tagUUID3...), colType{kind: kUUID}, v, order)
		}
		b = hex.AppendEncode(append(b, tagBin...), []byte{st})
		return base64.StdEncoding.AppendEncode(append(b, ':'), data), nil
	case bsonNull:
		return append(b, textNull...), nil
	case bsonUndefined:
		return append(b, textUndef...), nil
	case bsonMinKey:
		return append(b, textMinKey...), nil
	case bsonMaxKey:
		return append(b, textMaxKey...), nil
	case bsonTimestamp:
		t, i := v.timestamp()
		b = strconv.AppendUint(append(b, tagTimestamp...), uint64(t), 10)
		return strconv.AppendUint(append(b, ':'), uint64(i), 10), nil
	}
	tag, ok := jsonTags[v.typ]
	if !ok {
		return nil, fmt.Errorf("BSON type 0x%02x cannot be an _id", v.typ)
	}
	return appendJSON(append(b, tag...), v)
}

// jsonTags are the types whose key text is their JSONB text (relaxed
// Extended JSON: deterministic, and it keeps apart every pair of values
// MongoDB does, int32 and int64 aside, which MongoDB compares by value).
var jsonTags = map[byte]string{
	bsonDocument: tagDoc, bsonArray: tagArr, bsonRegex: tagRegex,
	bsonJavaScript: tagJS, bsonCodeScope: tagJSScope, bsonDBPointer: tagDBPointer,
}

// needsStrTag reports whether a string _id would read as an ObjectId (24
// lowercase hex digits) or as a tagged text (a leading '~').
func needsStrTag(s []byte) bool {
	if len(s) > 0 && s[0] == '~' {
		return true
	}
	if len(s) != 24 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// appendDoubleKey appends the canonical number text of f (appendNumKey).
func appendDoubleKey(b []byte, f float64) []byte {
	if s, ok := nonFinite(f); ok {
		return append(b, s...)
	}
	switch {
	case f == math.Trunc(f) && math.Abs(f) < 1<<63:
		// Integral and in int64 range (-0 too): exactly the int64's text.
		return strconv.AppendInt(b, int64(f), 10)
	}
	// f = mant × 2^exp exactly, mant odd.
	mant, exp := math.Frexp(math.Abs(f))
	m := uint64(mant * (1 << 53))
	e := exp - 53
	tz := bits.TrailingZeros64(m)
	m >>= tz
	e += tz
	coef := new(big.Int).SetUint64(m)
	dexp := 0
	if e >= 0 {
		coef.Lsh(coef, uint(e))
	} else {
		// m / 2^k = m × 5^k / 10^k.
		coef.Mul(coef, new(big.Int).Exp(big.NewInt(5), big.NewInt(int64(-e)), nil))
		dexp = e
	}
	return appendNumKey(b, decimalNum{neg: f < 0, digits: coef.Append(nil, 10), exp: dexp})
}

// appendDecimalKey appends the canonical number text of d (appendNumKey).
func appendDecimalKey(b []byte, d bson.Decimal128) ([]byte, error) {
	if d.IsNaN() {
		return append(b, "NaN"...), nil
	}
	switch d.IsInf() {
	case 1:
		return append(b, "Infinity"...), nil
	case -1:
		return append(b, "-Infinity"...), nil
	}
	var digits [40]byte
	n, ok := decimal128Num(digits[:0], d)
	if !ok {
		return nil, fmt.Errorf("decimal %s cannot be read", d)
	}
	return appendNumKey(b, n), nil
}

// appendNumKey appends a finite number's canonical text: its exact value
// with no trailing fraction zeros, no sign on zero, in plain notation when
// the decimal exponent of its first significant digit is between -6 and
// 20 (1000000, 1.5, 0.000001), otherwise as d.ddd…e±x (1e+21, 1.25e-7) —
// ECMAScript's Number-to-String layout, but with every significant digit
// of the exact value. One number has one text, and the text reads back as
// exactly that number.
func appendNumKey(b []byte, d decimalNum) []byte {
	digits := d.digits
	if d.isZero() {
		return append(b, '0')
	}
	exp := d.exp
	for len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if d.neg {
		b = append(b, '-')
	}
	lead := exp + len(digits) - 1
	switch {
	case lead < -6 || lead > 20:
		b = append(b, digits[0])
		if len(digits) > 1 {
			b = append(append(b, '.'), digits[1:]...)
		}
		b = append(b, 'e')
		if lead > 0 {
			b = append(b, '+')
		}
		return strconv.AppendInt(b, int64(lead), 10)
	case exp >= 0:
		return appendZeros(append(b, digits...), exp)
	case lead >= 0:
		b = append(b, digits[:lead+1]...)
		return append(append(b, '.'), digits[lead+1:]...)
	}
	b = appendZeros(append(b, "0."...), -lead-1)
	return append(b, digits...)
}
