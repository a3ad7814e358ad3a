package transform

import (
	"encoding/hex"
	"fmt"
)

// uuidOrder is the byte order of legacy UUIDs (binary subtype 3).
type uuidOrder uint8

const (
	uuidStandard uuidOrder = iota
	uuidJavaLegacy
	uuidCSharpLegacy
	uuidPythonLegacy
)

var uuidOrders = map[string]uuidOrder{
	"": uuidStandard, "standard": uuidStandard, "java_legacy": uuidJavaLegacy,
	"csharp_legacy": uuidCSharpLegacy, "python_legacy": uuidPythonLegacy,
}

func appendUUID(b []byte, t colType, v rawValue, order uuidOrder) ([]byte, error) {
	switch v.typ {
	case bsonBinary:
		st, data := v.binary()
		if st != 3 && st != 4 {
			return nil, fmt.Errorf("binary subtype %d is not a UUID (subtype 3 or 4)", st)
		}
		if len(data) != 16 {
			return nil, fmt.Errorf("UUID binary has %d bytes, want 16", len(data))
		}
		var u [16]byte
		copy(u[:], data)
		if st == 3 {
			reorderLegacy(&u, order)
		}
		return appendUUIDText(b, u), nil
	case bsonString:
		u, ok := parseUUID(v.strBytes())
		if !ok {
			return nil, fmt.Errorf("string %q is not a UUID", truncate(v.str(), 60))
		}
		return appendUUIDText(b, u), nil
	}
	return nil, errType{v.typ, t}
}

// reorderLegacy turns a legacy (subtype 3) UUID into standard byte order.
func reorderLegacy(u *[16]byte, order uuidOrder) {
	rev := func(b []byte) {
		for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
	}
	switch order {
	case uuidJavaLegacy:
		rev(u[0:8])
		rev(u[8:16])
	case uuidCSharpLegacy:
		rev(u[0:4])
		rev(u[4:6])
		rev(u[6:8])
	}
}

// appendUUIDText appends u in canonical 8-4-4-4-12 form.
func appendUUIDText(b []byte, u [16]byte) []byte {
	b = hex.AppendEncode(b, u[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[8:10])
	b = append(b, '-')
	return hex.AppendEncode(b, u[10:])
}

// parseUUID accepts 8-4-4-4-12 or 32 hex digits, either case.
func parseUUID(s []byte) ([16]byte, bool) {
	var u [16]byte
	var h [32]byte
	n := 0
	switch len(s) {
	case 36:
		for i, c := range s {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if c != '-' {
					return u, false
				}
				continue
			}
			h[n] = c
			n++
		}
	case 32:
		copy(h[:], s)
	default:
		return u, false
	}
	if _, err := hex.Decode(u[:], h[:]); err != nil {
		return u, false
	}
	return u, true
}
