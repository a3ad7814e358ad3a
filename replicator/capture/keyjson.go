package capture

import (
	"encoding/binary"
	"encoding/hex"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/schemas/envelope"
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
		b = envelope.AppendJSONString(b, string(s), false)
		b = append(b, '}')
		return string(b), true
	}
	return "", false
}
