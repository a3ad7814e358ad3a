package transform

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// errType reports a BSON type a column type does not accept. For the
// types that take strings only, the message says so.
type errType struct {
	bsonType byte
	col      colType
}

func (e errType) Error() string {
	col := e.col.String()
	article := "a"
	if strings.ContainsAny(col[:1], "aeiou") {
		article = "an"
	}
	msg := fmt.Sprintf("cannot store BSON %s in %s %s column", typeName(e.bsonType), article, col)
	switch e.col.kind {
	case kInet, kCidr, kMacaddr, kMacaddr8:
		if e.col.array {
			return msg + " (it takes an array of strings)"
		}
		return msg + " (it takes a string)"
	}
	return msg
}

// appendConvert appends the PostgreSQL text of v for a column of type t to
// b. null reports SQL NULL (missing, null and undefined), which appends
// nothing. On error the returned slice is nil. It never panics on
// well-framed values (those a docIter returned).
func appendConvert(b []byte, t colType, v rawValue, order uuidOrder) (text []byte, null bool, err error) {
	if v.isNullish() {
		return b, true, nil
	}
	if t.array {
		b, err = appendArray(b, t.elem(), v, order)
	} else {
		b, err = appendScalar(b, t, v, order)
	}
	return b, false, err
}

func appendScalar(b []byte, t colType, v rawValue, order uuidOrder) ([]byte, error) {
	switch t.kind {
	case kText, kVarchar:
		start := len(b)
		b, err := appendText(b, v, order)
		if err != nil {
			return nil, err
		}
		if t.kind == kVarchar {
			if n := utf8.RuneCount(b[start:]); n > t.n {
				return nil, fmt.Errorf("text of %d characters exceeds %s", n, t)
			}
		}
		return b, nil
	case kBoolean:
		if v.typ == bsonBoolean {
			return strconv.AppendBool(b, v.data[0] == 1), nil
		}
	case kSmallint, kInteger, kBigint:
		return appendInteger(b, t, v)
	case kNumeric:
		return appendNumeric(b, t, v)
	case kReal:
		return appendReal(b, t, v)
	case kDouble:
		return appendDouble(b, t, v)
	case kTimestamptz, kTimestamp, kDate:
		return appendTime(b, t, v)
	case kUUID:
		return appendUUID(b, t, v, order)
	case kBytea:
		if v.typ == bsonBinary {
			_, data := v.binary()
			return hex.AppendEncode(append(b, `\x`...), data), nil
		}
	case kJSONB, kJSON:
		return appendJSON(b, v)
	case kInet, kCidr:
		return appendInet(b, t, v)
	case kMacaddr, kMacaddr8:
		return appendMAC(b, t, v)
	}
	return nil, errType{v.typ, t}
}

// appendText: strings and symbols as they are; ObjectId as 24 hex digits;
// numbers, booleans, dates and UUID binaries as their column text; every
// other type as its JSONB encoding.
func appendText(b []byte, v rawValue, order uuidOrder) ([]byte, error) {
	switch v.typ {
	case bsonString, bsonSymbol:
		s := v.strBytes()
		if err := validText(s); err != nil {
			return nil, err
		}
		return append(b, s...), nil
	case bsonObjectID:
		return hex.AppendEncode(b, v.data), nil
	case bsonInt32:
		return strconv.AppendInt(b, int64(v.int32()), 10), nil
	case bsonInt64:
		return strconv.AppendInt(b, v.int64(), 10), nil
	case bsonDouble:
		return appendDoubleText(b, v.double()), nil
	case bsonDecimal:
		hi, lo := v.decimal()
		return append(b, bson.NewDecimal128(hi, lo).String()...), nil
	case bsonBoolean:
		return strconv.AppendBool(b, v.data[0] == 1), nil
	case bsonDateTime:
		return appendTime(b, colType{kind: kTimestamptz}, v)
	case bsonBinary:
		if st, data := v.binary(); (st == 3 || st == 4) && len(data) == 16 {
			return appendUUID(b, colType{kind: kUUID}, v, order)
		}
	}
	return appendJSON(b, v)
}

// appendJSON appends v's JSONB text.
func appendJSON(b []byte, v rawValue) ([]byte, error) {
	e := jsonEncoder{buf: b}
	if err := e.value(v, 0); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// validText reports an error if PostgreSQL text cannot hold b.
func validText(b []byte) error {
	i := textPlain(b)
	switch {
	case i == len(b):
		return nil
	case b[i] == 0, indexNUL(b[i:]) >= 0:
		// A NUL anywhere, also after the first non-ASCII byte.
		return errNUL
	case !utf8.Valid(b[i:]):
		return errInvalidUTF8
	}
	return nil
}

var errOutOfRange = errors.New("out of range")

func appendInteger(b []byte, t colType, v rawValue) ([]byte, error) {
	var n int64
	switch v.typ {
	case bsonInt32:
		n = int64(v.int32())
	case bsonInt64:
		n = v.int64()
	case bsonDouble:
		f := v.double()
		if f != math.Trunc(f) || f < -9223372036854775808 || f >= 9223372036854775808 {
			return nil, fmt.Errorf("double %s is not an integer in %s range", doubleText(f), t)
		}
		n = int64(f)
	case bsonDecimal:
		hi, lo := v.decimal()
		bi, ok := decimalInt(bson.NewDecimal128(hi, lo))
		if !ok || !bi.IsInt64() {
			return nil, fmt.Errorf("decimal %s is not an integer in %s range", bson.NewDecimal128(hi, lo), t)
		}
		n = bi.Int64()
	default:
		return nil, errType{v.typ, t}
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	switch t.kind {
	case kSmallint:
		lo, hi = math.MinInt16, math.MaxInt16
	case kInteger:
		lo, hi = math.MinInt32, math.MaxInt32
	}
	if n < lo || n > hi {
		return nil, fmt.Errorf("%d %w for %s", n, errOutOfRange, t)
	}
	return strconv.AppendInt(b, n, 10), nil
}

// decimalInt returns d as an integer if it is finite and integral.
func decimalInt(d bson.Decimal128) (*big.Int, bool) {
	coef, exp, err := d.BigInt()
	if err != nil {
		return nil, false
	}
	if canonicalCoefficient(coef) == nil {
		coef = new(big.Int)
	}
	if exp >= 0 {
		if exp > 40 && coef.Sign() != 0 {
			return nil, false // beyond int64 anyway
		}
		return coef.Mul(coef, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)), true
	}
	if exp < -40 {
		return coef, coef.Sign() == 0
	}
	q, r := new(big.Int).QuoRem(coef, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-exp)), nil), new(big.Int))
	return q, r.Sign() == 0
}

var maxCoefficient = new(big.Int).Exp(big.NewInt(10), big.NewInt(34), nil)

// canonicalCoefficient returns nil for a coefficient the Decimal128
// specification says reads as zero (10^34 or more).
func canonicalCoefficient(c *big.Int) *big.Int {
	if new(big.Int).Abs(c).Cmp(maxCoefficient) >= 0 {
		return nil
	}
	return c
}

// appendDoubleText appends the column text of a double: the shortest
// decimal that reads back as f, or NaN, Infinity, -Infinity.
func appendDoubleText(b []byte, f float64) []byte {
	if s, ok := nonFinite(f); ok {
		return append(b, s...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// nonFinite spells NaN and the infinities as PostgreSQL and the key text
// do; ok is false for a finite f.
func nonFinite(f float64) (string, bool) {
	switch {
	case math.IsNaN(f):
		return "NaN", true
	case math.IsInf(f, 1):
		return "Infinity", true
	case math.IsInf(f, -1):
		return "-Infinity", true
	}
	return "", false
}

func doubleText(f float64) string {
	var buf [32]byte
	return string(appendDoubleText(buf[:0], f))
}

func appendReal(b []byte, t colType, v rawValue) ([]byte, error) {
	var f float64
	switch v.typ {
	case bsonDouble:
		f = v.double()
	case bsonInt32:
		f = float64(v.int32())
	case bsonInt64:
		n := v.int64()
		f = float64(n)
		if n != int64(f) || math.Abs(f) > 1<<53 {
			return nil, fmt.Errorf("%d is not exact in %s", n, t)
		}
	default:
		return nil, errType{v.typ, t}
	}
	f32 := float32(f)
	if math.IsNaN(f) {
		return append(b, "NaN"...), nil
	}
	if float64(f32) != f {
		return nil, fmt.Errorf("%s is not exact in %s (use double precision or numeric)", doubleText(f), t)
	}
	switch {
	case math.IsInf(f, 1):
		return append(b, "Infinity"...), nil
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...), nil
	}
	return strconv.AppendFloat(b, float64(f32), 'g', -1, 32), nil
}

func appendDouble(b []byte, t colType, v rawValue) ([]byte, error) {
	switch v.typ {
	case bsonDouble:
		return appendDoubleText(b, v.double()), nil
	case bsonInt32:
		return strconv.AppendInt(b, int64(v.int32()), 10), nil
	case bsonInt64:
		n := v.int64()
		if n > 1<<53 || n < -(1<<53) {
			return nil, fmt.Errorf("%d is not exact in %s (use bigint or numeric)", n, t)
		}
		return strconv.AppendInt(b, n, 10), nil
	}
	return nil, errType{v.typ, t}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// appendArray appends a BSON array as a one-dimensional PostgreSQL array
// literal: every element double-quoted, NULL for missing/null elements.
func appendArray(b []byte, elem colType, v rawValue, order uuidOrder) ([]byte, error) {
	if v.typ != bsonArray {
		return nil, errType{v.typ, colType{kind: elem.kind, array: true, n: elem.n, prec: elem.prec, scale: elem.scale}}
	}
	b = append(b, '{')
	it := newDocIter(v.data)
	i := 0
	for _, ev, ok := it.next(); ok; _, ev, ok = it.next() {
		if i > 0 {
			b = append(b, ',')
		}
		if ev.typ == bsonArray && elem.kind != kJSONB && elem.kind != kJSON {
			return nil, under(strconv.Itoa(i), errors.New("nested arrays cannot map to a one-dimensional array column"))
		}
		// The element's text goes right after its opening quote and is
		// escaped where it lies.
		b = append(b, '"')
		start := len(b)
		var null bool
		var err error
		if b, null, err = appendConvert(b, elem, ev, order); err != nil {
			return nil, under(strconv.Itoa(i), err)
		}
		if null {
			b = append(b[:start-1], "NULL"...)
		} else {
			b = append(escapeQuoted(b, start), '"')
		}
		i++
	}
	if it.err != nil {
		return nil, it.err
	}
	return append(b, '}'), nil
}

// escapeQuoted puts a backslash before every double quote and backslash
// in b[start:], in place.
func escapeQuoted(b []byte, start int) []byte {
	n := 0
	for _, c := range b[start:] {
		if c == '"' || c == '\\' {
			n++
		}
	}
	if n == 0 {
		return b
	}
	end := len(b)
	b = append(b, make([]byte, n)...)
	// Back to front, so every byte is read before it is overwritten.
	w := len(b)
	for r := end - 1; r >= start; r-- {
		c := b[r]
		w--
		b[w] = c
		if c == '"' || c == '\\' {
			w--
			b[w] = '\\'
		}
	}
	return b
}
