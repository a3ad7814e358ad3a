package transform

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// BSON element types (bsonspec.org).
const (
	bsonDouble     byte = 0x01
	bsonString     byte = 0x02
	bsonDocument   byte = 0x03
	bsonArray      byte = 0x04
	bsonBinary     byte = 0x05
	bsonUndefined  byte = 0x06
	bsonObjectID   byte = 0x07
	bsonBoolean    byte = 0x08
	bsonDateTime   byte = 0x09
	bsonNull       byte = 0x0A
	bsonRegex      byte = 0x0B
	bsonDBPointer  byte = 0x0C
	bsonJavaScript byte = 0x0D
	bsonSymbol     byte = 0x0E
	bsonCodeScope  byte = 0x0F
	bsonInt32      byte = 0x10
	bsonTimestamp  byte = 0x11
	bsonInt64      byte = 0x12
	bsonDecimal    byte = 0x13
	bsonMinKey     byte = 0xFF
	bsonMaxKey     byte = 0x7F
)

// errMalformed reports BSON bytes that do not follow the specification.
var errMalformed = errors.New("malformed bson")

// rawValue is one BSON value: its type byte and exactly its value bytes.
// The zero rawValue (typ 0) means "missing".
type rawValue struct {
	typ  byte
	data []byte
}

func (v rawValue) missing() bool { return v.typ == 0 }

// isNullish reports whether v is missing, null or undefined: all three
// become SQL NULL.
func (v rawValue) isNullish() bool {
	return v.typ == 0 || v.typ == bsonNull || v.typ == bsonUndefined
}

// docIter walks the elements of one BSON document without allocating.
// It advances an offset rather than reslicing elems: next then stores no
// pointer, which keeps the garbage collector's write barrier out of the
// hottest loop.
type docIter struct {
	elems []byte // the document between its length and its final NUL
	off   int    // where the next element starts
	err   error
}

// newDocIter checks the document's framing and returns an iterator over its
// elements.
func newDocIter(doc []byte) docIter {
	if len(doc) < 5 {
		return docIter{err: errMalformed}
	}
	n := int(int32(binary.LittleEndian.Uint32(doc)))
	if n != len(doc) || doc[n-1] != 0 {
		return docIter{err: errMalformed}
	}
	return docIter{elems: doc[4 : n-1]}
}

// next returns the next element; ok is false at the end or on a malformed
// element (then err is set).
func (it *docIter) next() (key []byte, v rawValue, ok bool) {
	if it.off >= len(it.elems) { // the end, or an error moved off there
		return nil, rawValue{}, false
	}
	b := it.elems[it.off:]
	t := b[0]
	end := indexNUL(b[1:]) + 1
	if end == 0 {
		it.off, it.err = len(it.elems), errMalformed
		return nil, rawValue{}, false
	}
	size, err := valueSize(t, b[end+1:])
	if err != nil {
		it.off, it.err = len(it.elems), err
		return nil, rawValue{}, false
	}
	it.off += end + 1 + size
	return b[1:end], rawValue{typ: t, data: b[end+1 : end+1+size]}, true
}

func readInt32(b []byte) (int, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return int(int32(binary.LittleEndian.Uint32(b))), true
}

// stringSize is the size of a BSON string (int32 length, bytes, NUL).
func stringSize(b []byte) (int, error) {
	n, ok := readInt32(b)
	if !ok || n < 1 || n > len(b)-4 || b[4+n-1] != 0 {
		return 0, errMalformed
	}
	return 4 + n, nil
}

func cstringSize(b []byte) (int, error) {
	for i, c := range b {
		if c == 0 {
			return i + 1, nil
		}
	}
	return 0, errMalformed
}

// valueSize returns the size in bytes of the value of type t at the start
// of b. Embedded documents are checked for framing only; their contents are
// validated when walked.
func valueSize(t byte, b []byte) (int, error) {
	fixed := func(n int) (int, error) {
		if len(b) < n {
			return 0, errMalformed
		}
		return n, nil
	}
	switch t {
	case bsonDouble, bsonDateTime, bsonTimestamp, bsonInt64:
		return fixed(8)
	case bsonString, bsonJavaScript, bsonSymbol:
		return stringSize(b)
	case bsonDocument, bsonArray:
		n, ok := readInt32(b)
		if !ok || n < 5 || n > len(b) || b[n-1] != 0 {
			return 0, errMalformed
		}
		return n, nil
	case bsonBinary:
		n, ok := readInt32(b)
		if !ok || n < 0 || n > len(b)-5 {
			return 0, errMalformed
		}
		return 5 + n, nil
	case bsonUndefined, bsonNull, bsonMinKey, bsonMaxKey:
		return 0, nil
	case bsonObjectID:
		return fixed(12)
	case bsonBoolean:
		if len(b) < 1 || b[0] > 1 {
			return 0, errMalformed
		}
		return 1, nil
	case bsonRegex:
		p, err := cstringSize(b)
		if err != nil {
			return 0, err
		}
		o, err := cstringSize(b[p:])
		if err != nil {
			return 0, err
		}
		return p + o, nil
	case bsonDBPointer:
		n, err := stringSize(b)
		if err != nil || len(b)-n < 12 {
			return 0, errMalformed
		}
		return n + 12, nil
	case bsonCodeScope:
		n, ok := readInt32(b)
		if !ok || n < 14 || n > len(b) {
			return 0, errMalformed
		}
		s, err := stringSize(b[4:n])
		if err != nil {
			return 0, err
		}
		d, ok := readInt32(b[4+s : n])
		if !ok || d != n-4-s || d < 5 || b[n-1] != 0 {
			return 0, errMalformed
		}
		return n, nil
	case bsonInt32:
		return fixed(4)
	case bsonDecimal:
		return fixed(16)
	}
	return 0, fmt.Errorf("%w: unknown element type 0x%02x", errMalformed, t)
}

// Accessors below assume v.data was sized by valueSize for v.typ.

func (v rawValue) str() string { return string(v.data[4 : len(v.data)-1]) }

// strBytes returns a string value's bytes without copying.
func (v rawValue) strBytes() []byte { return v.data[4 : len(v.data)-1] }

func (v rawValue) double() float64 {
	return math.Float64frombits(binary.LittleEndian.Uint64(v.data))
}

func (v rawValue) int32() int32 { return int32(binary.LittleEndian.Uint32(v.data)) }

func (v rawValue) int64() int64 { return int64(binary.LittleEndian.Uint64(v.data)) }

// timestamp returns a BSON Timestamp's seconds and increment.
func (v rawValue) timestamp() (t, i uint32) {
	return binary.LittleEndian.Uint32(v.data[4:]), binary.LittleEndian.Uint32(v.data)
}

func (v rawValue) binary() (subtype byte, data []byte) {
	return v.data[4], v.data[5:]
}

// regex returns a regular expression's pattern and options.
func (v rawValue) regex() (pattern, options string) {
	p, _ := cstringSize(v.data)
	return string(v.data[:p-1]), string(v.data[p : len(v.data)-1])
}

func (v rawValue) dbPointer() (ns string, oid []byte) {
	n, _ := stringSize(v.data)
	return string(v.data[4 : n-1]), v.data[n:]
}

// codeScope returns the code and the scope document of a code_w_s value.
func (v rawValue) codeScope() (code string, scope []byte) {
	s, _ := stringSize(v.data[4:])
	return string(v.data[8 : 4+s-1]), v.data[4+s:]
}

func (v rawValue) decimal() (hi, lo uint64) {
	return binary.LittleEndian.Uint64(v.data[8:]), binary.LittleEndian.Uint64(v.data)
}

// typeName is the BSON type's name as MongoDB's $type operator spells it.
func typeName(t byte) string {
	switch t {
	case 0:
		return "missing"
	case bsonDouble:
		return "double"
	case bsonString:
		return "string"
	case bsonDocument:
		return "object"
	case bsonArray:
		return "array"
	case bsonBinary:
		return "binData"
	case bsonUndefined:
		return "undefined"
	case bsonObjectID:
		return "objectId"
	case bsonBoolean:
		return "bool"
	case bsonDateTime:
		return "date"
	case bsonNull:
		return "null"
	case bsonRegex:
		return "regex"
	case bsonDBPointer:
		return "dbPointer"
	case bsonJavaScript:
		return "javascript"
	case bsonSymbol:
		return "symbol"
	case bsonCodeScope:
		return "javascriptWithScope"
	case bsonInt32:
		return "int"
	case bsonTimestamp:
		return "timestamp"
	case bsonInt64:
		return "long"
	case bsonDecimal:
		return "decimal"
	case bsonMinKey:
		return "minKey"
	case bsonMaxKey:
		return "maxKey"
	}
	return fmt.Sprintf("0x%02x", t)
}
