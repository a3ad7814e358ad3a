package capture

import (
	"encoding/binary"
	"encoding/hex"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// keyJSON renders the common documentKeys, {_id: <string>} and
// {_id: <ObjectId>}, as canonical Extended JSON without the driver's
// reflective encoder; ok is false for any other document (extJSON then
// renders it). The bytes are exactly bson.MarshalExtJSON(doc, true, false)'s.
func keyJSON(doc bson.Raw) (string, bool) {
	const head = 4 + 1 + len("_id\x00") // length, type, key
	if len(doc) < head+1 || int(binary.LittleEndian.Uint32(doc)) != len(doc) ||
		string(doc[5:head]) != "_id\x00" || doc[len(doc)-1] != 0 {
		return "", false
	}
	val := doc[head : len(doc)-1]
	switch bson.Type(doc[4]) {
	case bson.TypeObjectID:
		if len(val) != 12 {
			return "", false
		}
		b := make([]byte, 0, len(`{"_id":{"$oid":""}}`)+24)
		b = append(b, `{"_id":{"$oid":"`...)
		b = hex.AppendEncode(b, val)
		b = append(b, `"}}`...)
		return string(b), true
	case bson.TypeString:
		if len(val) < 5 {
			return "", false
		}
		n := int(int32(binary.LittleEndian.Uint32(val)))
		if n < 1 || 4+n != len(val) || val[len(val)-1] != 0 {
			return "", false
		}
		s := val[4 : len(val)-1]
		b := make([]byte, 0, len(`{"_id":""}`)+len(s)+8)
		b = append(b, `{"_id":`...)
		b = appendExtJSONString(b, s)
		b = append(b, '}')
		return string(b), true
	}
	return "", false
}

// appendExtJSONString writes s as the driver's Extended JSON writer does
// without HTML escaping: control characters escaped, invalid UTF-8 as
// \ufffd, U+2028 and U+2029 escaped.
func appendExtJSONString(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
