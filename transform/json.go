package transform

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// JSONB encoding. Every BSON value becomes JSON text by one deterministic
// rule set: MongoDB's relaxed Extended JSON v2, exactly as the Go driver's
// bson.MarshalExtJSON(v, false, false) writes it, except that text
// PostgreSQL cannot hold is an error instead of a replacement:
//
//   - int32, int64 → plain JSON integers (exact: jsonb stores numeric);
//   - finite double → JSON number, integral values with ".0" (1.0, 1E+21);
//     NaN, ±Infinity → {"$numberDouble":"NaN"|"Infinity"|"-Infinity"};
//   - Decimal128 → {"$numberDecimal":"<string>"};
//   - date → {"$date":"2006-01-02T15:04:05.999Z"} for years 1970–9999,
//     otherwise {"$date":{"$numberLong":"<ms>"}};
//   - ObjectId → {"$oid":"<hex>"}; binary → {"$binary":{"base64":…,"subType":"hh"}};
//   - regex → {"$regularExpression":{"pattern":…,"options":<sorted>}};
//   - timestamp, symbol, code, code with scope, dbPointer, undefined,
//     MinKey, MaxKey → their $-wrappers from the specification;
//   - documents keep their key order (jsonb itself then orders keys its own
//     way and keeps the last of duplicate keys);
//   - strings are escaped as encoding/json does without HTML escaping, plus
//     U+2028 and U+2029; a NUL character (jsonb cannot store \u0000) or
//     invalid UTF-8 is an error naming the field path.

// maxDepth bounds document nesting (MongoDB allows 100 levels).
const maxDepth = 200

var (
	errNUL         = errors.New("text contains a NUL character, which PostgreSQL cannot store")
	errInvalidUTF8 = errors.New("text is not valid UTF-8")
	errTooDeep     = errors.New("document nesting exceeds 200 levels")
)

// jsonEncoder appends JSON text to buf.
type jsonEncoder struct {
	buf []byte
}

// value appends v as JSON. Errors carry the path below v.
func (e *jsonEncoder) value(v rawValue, depth int) error {
	switch v.typ {
	case bsonDouble:
		e.buf = appendJSONDouble(e.buf, v.double())
	case bsonString:
		return e.str(v.strBytes())
	case bsonDocument:
		return e.document(v.data, depth+1)
	case bsonArray:
		return e.array(v.data, depth+1)
	case bsonBinary:
		st, data := v.binary()
		if st == 0x02 && len(data) >= 4 {
			// Old binary subtype: the driver strips the inner length.
			if n, ok := readInt32(data); ok && n == len(data)-4 {
				data = data[4:]
			}
		}
		e.buf = append(e.buf, `{"$binary":{"base64":"`...)
		e.buf = base64.StdEncoding.AppendEncode(e.buf, data)
		e.buf = append(e.buf, `","subType":"`...)
		e.buf = hex.AppendEncode(e.buf, []byte{st})
		e.buf = append(e.buf, `"}}`...)
	case bsonUndefined:
		e.buf = append(e.buf, `{"$undefined":true}`...)
	case bsonObjectID:
		e.buf = append(e.buf, `{"$oid":"`...)
		e.buf = hex.AppendEncode(e.buf, v.data)
		e.buf = append(e.buf, `"}`...)
	case bsonBoolean:
		e.buf = strconv.AppendBool(e.buf, v.data[0] == 1)
	case bsonDateTime:
		ms := v.int64()
		t := time.Unix(ms/1e3, ms%1e3*1e6).UTC()
		if y := t.Year(); y >= 1970 && y <= 9999 {
			e.buf = append(e.buf, `{"$date":"`...)
			e.buf = appendJSONDate(e.buf, t)
			e.buf = append(e.buf, `"}`...)
		} else {
			e.buf = append(e.buf, `{"$date":{"$numberLong":"`...)
			e.buf = strconv.AppendInt(e.buf, ms, 10)
			e.buf = append(e.buf, `"}}`...)
		}
	case bsonNull:
		e.buf = append(e.buf, "null"...)
	case bsonRegex:
		p, o := v.regex()
		e.buf = append(e.buf, `{"$regularExpression":{"pattern":`...)
		if err := e.str([]byte(p)); err != nil {
			return err
		}
		e.buf = append(e.buf, `,"options":`...)
		if err := e.str([]byte(sortOptions(o))); err != nil {
			return err
		}
		e.buf = append(e.buf, `}}`...)
	case bsonDBPointer:
		ns, oid := v.dbPointer()
		e.buf = append(e.buf, `{"$dbPointer":{"$ref":`...)
		if err := e.str([]byte(ns)); err != nil {
			return err
		}
		e.buf = append(e.buf, `,"$id":{"$oid":"`...)
		e.buf = hex.AppendEncode(e.buf, oid)
		e.buf = append(e.buf, `"}}}`...)
	case bsonJavaScript:
		e.buf = append(e.buf, `{"$code":`...)
		if err := e.str(v.strBytes()); err != nil {
			return err
		}
		e.buf = append(e.buf, '}')
	case bsonSymbol:
		e.buf = append(e.buf, `{"$symbol":`...)
		if err := e.str(v.strBytes()); err != nil {
			return err
		}
		e.buf = append(e.buf, '}')
	case bsonCodeScope:
		code, scope := v.codeScope()
		e.buf = append(e.buf, `{"$code":`...)
		if err := e.str([]byte(code)); err != nil {
			return err
		}
		e.buf = append(e.buf, `,"$scope":`...)
		if err := e.document(scope, depth+1); err != nil {
			return err
		}
		e.buf = append(e.buf, '}')
	case bsonInt32:
		e.buf = strconv.AppendInt(e.buf, int64(v.int32()), 10)
	case bsonTimestamp:
		t, i := v.timestamp()
		e.buf = append(e.buf, `{"$timestamp":{"t":`...)
		e.buf = strconv.AppendUint(e.buf, uint64(t), 10)
		e.buf = append(e.buf, `,"i":`...)
		e.buf = strconv.AppendUint(e.buf, uint64(i), 10)
		e.buf = append(e.buf, `}}`...)
	case bsonInt64:
		e.buf = strconv.AppendInt(e.buf, v.int64(), 10)
	case bsonDecimal:
		hi, lo := v.decimal()
		e.buf = append(e.buf, `{"$numberDecimal":"`...)
		e.buf = append(e.buf, bson.NewDecimal128(hi, lo).String()...)
		e.buf = append(e.buf, `"}`...)
	case bsonMinKey:
		e.buf = append(e.buf, `{"$minKey":1}`...)
	case bsonMaxKey:
		e.buf = append(e.buf, `{"$maxKey":1}`...)
	default:
		return errMalformed
	}
	return nil
}

// document appends a whole BSON document as a JSON object.
func (e *jsonEncoder) document(doc []byte, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	e.buf = append(e.buf, '{')
	it := newDocIter(doc)
	first := true
	for key, v, ok := it.next(); ok; key, v, ok = it.next() {
		if !first {
			e.buf = append(e.buf, ',')
		}
		first = false
		if err := e.str(key); err != nil {
			return under(string(key), err)
		}
		e.buf = append(e.buf, ':')
		if err := e.value(v, depth); err != nil {
			return under(string(key), err)
		}
	}
	if it.err != nil {
		return it.err
	}
	e.buf = append(e.buf, '}')
	return nil
}

// array appends a BSON array as a JSON array (its keys are ignored).
func (e *jsonEncoder) array(doc []byte, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	e.buf = append(e.buf, '[')
	it := newDocIter(doc)
	i := 0
	for _, v, ok := it.next(); ok; _, v, ok = it.next() {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.value(v, depth); err != nil {
			return under(strconv.Itoa(i), err)
		}
		i++
	}
	if it.err != nil {
		return it.err
	}
	e.buf = append(e.buf, ']')
	return nil
}

const hexDigits = "0123456789abcdef"

// str appends s as a JSON string. NUL and invalid UTF-8 are errors.
func (e *jsonEncoder) str(s []byte) error {
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if i += jsonPlain(s[i:]); i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c == 0 {
				return errNUL
			}
			e.buf = append(e.buf, s[start:i]...)
			switch c {
			case '"', '\\':
				e.buf = append(e.buf, '\\', c)
			case '\n':
				e.buf = append(e.buf, '\\', 'n')
			case '\r':
				e.buf = append(e.buf, '\\', 'r')
			case '\t':
				e.buf = append(e.buf, '\\', 't')
			case '\b':
				e.buf = append(e.buf, '\\', 'b')
			case '\f':
				e.buf = append(e.buf, '\\', 'f')
			default:
				e.buf = append(e.buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			return errInvalidUTF8
		}
		if r == '\u2028' || r == '\u2029' {
			e.buf = append(e.buf, s[start:i]...)
			e.buf = append(e.buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	e.buf = append(e.buf, s[start:]...)
	e.buf = append(e.buf, '"')
	return nil
}

// appendJSONDate appends t, a UTC time in years 1970–9999, as the layout
// "2006-01-02T15:04:05.999Z07:00" writes it: milliseconds without trailing
// zeros, none at all when zero.
func appendJSONDate(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	b = appendYMD(b, year, month, day)
	b = append(b, 'T')
	b = appendHMS(b, t)
	if ms := t.Nanosecond() / 1e6; ms != 0 {
		b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
	}
	return append(b, 'Z')
}

// appendJSONDouble appends the Extended JSON spelling of a double.
func appendJSONDouble(b []byte, f float64) []byte {
	switch {
	case f != f:
		return append(b, `{"$numberDouble":"NaN"}`...)
	case f > math.MaxFloat64:
		return append(b, `{"$numberDouble":"Infinity"}`...)
	case f < -math.MaxFloat64:
		return append(b, `{"$numberDouble":"-Infinity"}`...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'G', -1, 64)
	if bytes.ContainsAny(b[start:], "E.") {
		return b
	}
	return append(b, ".0"...)
}

func sortOptions(o string) string {
	b := []byte(o)
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	return string(b)
}

// JSON returns the JSONB text of a whole BSON document by the package's
// documented encoding.
func JSON(doc bson.Raw) (string, error) {
	var e jsonEncoder
	if err := e.document(doc, 0); err != nil {
		return "", err
	}
	return string(e.buf), nil
}
