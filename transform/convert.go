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

// errType reports a BSON type a column type does not accept.
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
	return fmt.Sprintf("cannot store BSON %s in %s %s column", typeName(e.bsonType), article, col)
}

// convert returns the PostgreSQL text of v for a column of type t. null
// reports SQL NULL (missing, null and undefined). It never panics on
// well-framed values (those a docIter returned).
func convert(t colType, v rawValue, order uuidOrder) (text string, null bool, err error) {
	if v.isNullish() {
		return "", true, nil
	}
	if t.array {
		s, err := convertArray(t.elem(), v, order)
		return s, false, err
	}
	s, err := convertScalar(t, v, order)
	return s, false, err
}

func convertScalar(t colType, v rawValue, order uuidOrder) (string, error) {
	switch t.kind {
	case kText, kVarchar:
		s, err := toText(v, order)
		if err != nil {
			return "", err
		}
		if t.kind == kVarchar && utf8.RuneCountInString(s) > t.n {
			return "", fmt.Errorf("text of %d characters exceeds %s", utf8.RuneCountInString(s), t)
		}
		return s, nil
	case kBoolean:
		if v.typ == bsonBoolean {
			return strconv.FormatBool(v.data[0] == 1), nil
		}
	case kSmallint, kInteger, kBigint:
		return toInteger(t, v)
	case kNumeric:
		return toNumeric(t, v)
	case kReal:
		return toReal(t, v)
	case kDouble:
		return toDouble(t, v)
	case kTimestamptz, kTimestamp, kDate:
		return toTime(t, v)
	case kUUID:
		return toUUID(t, v, order)
	case kBytea:
		if v.typ == bsonBinary {
			_, data := v.binary()
			return `\x` + hex.EncodeToString(data), nil
		}
	case kJSONB:
		var e jsonEncoder
		if err := e.value(v, 0); err != nil {
			return "", err
		}
		return string(e.buf), nil
	}
	return "", errType{v.typ, t}
}

// toText: strings and symbols as they are; ObjectId as 24 hex digits;
// numbers, booleans, dates and UUID binaries as their column text; every
// other type as its JSONB encoding.
func toText(v rawValue, order uuidOrder) (string, error) {
	switch v.typ {
	case bsonString, bsonSymbol:
		return checkText(v.strBytes())
	case bsonObjectID:
		return hex.EncodeToString(v.data), nil
	case bsonInt32:
		return strconv.FormatInt(int64(v.int32()), 10), nil
	case bsonInt64:
		return strconv.FormatInt(v.int64(), 10), nil
	case bsonDouble:
		return doubleText(v.double()), nil
	case bsonDecimal:
		hi, lo := v.decimal()
		return bson.NewDecimal128(hi, lo).String(), nil
	case bsonBoolean:
		return strconv.FormatBool(v.data[0] == 1), nil
	case bsonDateTime:
		return toTime(colType{kind: kTimestamptz}, v)
	case bsonBinary:
		if st, data := v.binary(); (st == 3 || st == 4) && len(data) == 16 {
			return toUUID(colType{kind: kUUID}, v, order)
		}
	}
	var e jsonEncoder
	if err := e.value(v, 0); err != nil {
		return "", err
	}
	return string(e.buf), nil
}

// checkText returns b as a string if PostgreSQL text can hold it.
func checkText(b []byte) (string, error) {
	for i, c := range b {
		if c == 0 {
			return "", errNUL
		}
		if c >= utf8.RuneSelf {
			if !utf8.Valid(b[i:]) {
				return "", errInvalidUTF8
			}
			break
		}
	}
	return string(b), nil
}

var errOutOfRange = errors.New("out of range")

func toInteger(t colType, v rawValue) (string, error) {
	var n int64
	switch v.typ {
	case bsonInt32:
		n = int64(v.int32())
	case bsonInt64:
		n = v.int64()
	case bsonDouble:
		f := v.double()
		if f != math.Trunc(f) || f < -9223372036854775808 || f >= 9223372036854775808 {
			return "", fmt.Errorf("double %s is not an integer in %s range", doubleText(f), t)
		}
		n = int64(f)
	case bsonDecimal:
		hi, lo := v.decimal()
		bi, ok := decimalInt(bson.NewDecimal128(hi, lo))
		if !ok || !bi.IsInt64() {
			return "", fmt.Errorf("decimal %s is not an integer in %s range", bson.NewDecimal128(hi, lo), t)
		}
		n = bi.Int64()
	default:
		return "", errType{v.typ, t}
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	switch t.kind {
	case kSmallint:
		lo, hi = math.MinInt16, math.MaxInt16
	case kInteger:
		lo, hi = math.MinInt32, math.MaxInt32
	}
	if n < lo || n > hi {
		return "", fmt.Errorf("%d %w for %s", n, errOutOfRange, t)
	}
	return strconv.FormatInt(n, 10), nil
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

func doubleText(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func toReal(t colType, v rawValue) (string, error) {
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
			return "", fmt.Errorf("%d is not exact in %s", n, t)
		}
	default:
		return "", errType{v.typ, t}
	}
	f32 := float32(f)
	if math.IsNaN(f) {
		return "NaN", nil
	}
	if float64(f32) != f {
		return "", fmt.Errorf("%s is not exact in %s (use double precision or numeric)", doubleText(f), t)
	}
	switch {
	case math.IsInf(f, 1):
		return "Infinity", nil
	case math.IsInf(f, -1):
		return "-Infinity", nil
	}
	return strconv.FormatFloat(float64(f32), 'g', -1, 32), nil
}

func toDouble(t colType, v rawValue) (string, error) {
	switch v.typ {
	case bsonDouble:
		return doubleText(v.double()), nil
	case bsonInt32:
		return strconv.FormatInt(int64(v.int32()), 10), nil
	case bsonInt64:
		n := v.int64()
		if n > 1<<53 || n < -(1<<53) {
			return "", fmt.Errorf("%d is not exact in %s (use bigint or numeric)", n, t)
		}
		return strconv.FormatInt(n, 10), nil
	}
	return "", errType{v.typ, t}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// convertArray writes a BSON array as a one-dimensional PostgreSQL array
// literal: every element double-quoted, NULL for missing/null elements.
func convertArray(elem colType, v rawValue, order uuidOrder) (string, error) {
	if v.typ != bsonArray {
		return "", errType{v.typ, colType{kind: elem.kind, array: true, n: elem.n, prec: elem.prec, scale: elem.scale}}
	}
	b := []byte{'{'}
	it := newDocIter(v.data)
	i := 0
	for _, ev, ok := it.next(); ok; _, ev, ok = it.next() {
		if i > 0 {
			b = append(b, ',')
		}
		if ev.typ == bsonArray && elem.kind != kJSONB {
			return "", under(strconv.Itoa(i), errors.New("nested arrays cannot map to a one-dimensional array column"))
		}
		s, null, err := convert(elem, ev, order)
		if err != nil {
			return "", under(strconv.Itoa(i), err)
		}
		if null {
			b = append(b, "NULL"...)
		} else {
			b = append(b, '"')
			for j := 0; j < len(s); j++ {
				if s[j] == '"' || s[j] == '\\' {
					b = append(b, '\\')
				}
				b = append(b, s[j])
			}
			b = append(b, '"')
		}
		i++
	}
	if it.err != nil {
		return "", it.err
	}
	b = append(b, '}')
	return string(b), nil
}
