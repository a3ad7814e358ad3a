package mongoemu

import (
	"encoding/binary"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Change events are assembled directly as raw BSON in the field order of
// MongoDB's event transformation: [to (rename)], [txnNumber, lsid], _id,
// operationType, clusterTime, [collectionUUID], wallTime, [fullDocument],
// ns, [documentKey], [operationDescription], [updateDescription],
// [stateBeforeChange], then fullDocumentBeforeChange and, for updates, the
// post-image fullDocument added by the later pipeline stages.

const hexDigits = "0123456789ABCDEF"

// Hot-path element appenders for constant keys (bsoncore validates every
// key, which shows up in profiles at 100k events/s).
func appendKey(dst []byte, t bsoncore.Type, key string) []byte {
	dst = append(dst, byte(t))
	dst = append(dst, key...)
	return append(dst, 0)
}

func appendStr(dst []byte, key, val string) []byte {
	dst = appendKey(dst, bsoncore.TypeString, key)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(val)+1))
	dst = append(dst, val...)
	return append(dst, 0)
}

func appendSubDoc(dst []byte, key string, doc []byte) []byte {
	return append(appendKey(dst, bsoncore.TypeEmbeddedDocument, key), doc...)
}

func appendHex(dst []byte, v uint64, digits int) []byte {
	for i := digits - 1; i >= 0; i-- {
		dst = append(dst, hexDigits[(v>>(uint(i)*4))&0xf])
	}
	return dst
}

// appendTokenElem appends _id: {_data: "..."} without allocating strings.
func appendTokenElem(dst []byte, key string, t token) []byte {
	dst = appendKey(dst, bsoncore.TypeEmbeddedDocument, key)
	// length 45 = 4 (length) + 1 (type) + 6 ("_data\0") + 4 (string length) + 29 (28 hex digits and NUL) + 1 (end)
	dst = append(dst, 45, 0, 0, 0)
	dst = appendKey(dst, bsoncore.TypeString, "_data")
	dst = append(dst, 29, 0, 0, 0, '8', '2')
	dst = appendHex(dst, t.ts, 16)
	dst = appendHex(dst, uint64(t.idx), 8)
	dst = appendHex(dst, uint64(t.kind), 2)
	return append(dst, 0, 0)
}

func appendNS(dst []byte, db, coll string) []byte {
	dst = appendKey(dst, bsoncore.TypeEmbeddedDocument, "ns")
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = appendStr(dst, "db", db)
	if coll != "" {
		dst = appendStr(dst, "coll", coll)
	}
	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// appendHead appends the fields every event starts with. As in MongoDB's
// event transformation, a rename's "to" and a transaction's txnNumber and
// lsid precede _id.
func appendHead(dst []byte, t token, op string, e *entry, expanded bool) []byte {
	if op == opRename {
		dst = appendKey(dst, bsoncore.TypeEmbeddedDocument, "to")
		start := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		dst = appendStr(dst, "db", e.toDB)
		dst = appendStr(dst, "coll", e.toColl)
		dst = append(dst, 0)
		binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	}
	if e.inTxn && op != opInvalidate {
		dst = bsoncore.AppendInt64Element(dst, "txnNumber", e.txnNumber)
		dst = bsoncore.AppendDocumentElement(dst, "lsid", e.lsid)
	}
	dst = appendTokenElem(dst, "_id", t)
	dst = appendStr(dst, "operationType", op)
	dst = appendKey(dst, bsoncore.TypeTimestamp, "clusterTime")
	dst = binary.LittleEndian.AppendUint64(dst, e.ts) // increment in the low word, seconds in the high word
	if expanded && e.uuid != nil && op != opInvalidate && !e.isView {
		dst = bsoncore.AppendBinaryElement(dst, "collectionUUID", 4, e.uuid)
	}
	dst = appendKey(dst, bsoncore.TypeDateTime, "wallTime")
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.wall))
	return dst
}

func buildInvalidate(t token, e *entry) []byte {
	dst := make([]byte, 0, 128)
	idx, dst := bsoncore.AppendDocumentStart(dst)
	dst = appendHead(dst, t, opInvalidate, e, false)
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

// appendEvent appends the change event for e to buf after applying the
// user pipeline; buf is unchanged when the pipeline filtered it out.
func (cs *changeStream) appendEvent(x *cmdCtx, buf []byte, e *entry) ([]byte, error) {
	t := e.token()
	start := len(buf)
	idx, dst := bsoncore.AppendDocumentStart(buf)
	dst = appendHead(dst, t, e.op, e, cs.expanded)
	switch e.op {
	case opInsert, opReplace:
		dst = appendSubDoc(dst, "fullDocument", e.doc)
		dst = appendNS(dst, e.db, e.coll)
		dst = e.appendDocKey(dst, "documentKey")
	case opUpdate, opDelete:
		dst = appendNS(dst, e.db, e.coll)
		dst = e.appendDocKey(dst, "documentKey")
		if e.upd != nil {
			dst = e.upd.appendTo(dst, cs.expanded)
		}
	case opDrop:
		dst = appendNS(dst, e.db, e.coll)
	case opRename:
		dst = appendNS(dst, e.db, e.coll)
		if cs.expanded {
			dst = appendSubDoc(dst, "operationDescription", e.opDesc)
		}
	case opDropDatabase:
		dst = appendNS(dst, e.db, "")
	case opCreate, opCreateIndexes, opDropIndexes, opModify:
		dst = appendNS(dst, e.db, e.coll)
		dst = appendSubDoc(dst, "operationDescription", e.opDesc)
		if e.stateBefore != nil {
			dst = appendSubDoc(dst, "stateBeforeChange", e.stateBefore)
		}
	}
	// The pre-image stage runs before the post-image stage, so a looked-up
	// fullDocument of an update comes last.
	var err error
	if e.op == opUpdate || e.op == opReplace || e.op == opDelete {
		if dst, err = cs.appendPreImage(dst, e); err != nil {
			return buf[:start], err
		}
	}
	if e.op == opUpdate {
		if dst, err = cs.appendPostImage(x, dst, e); err != nil {
			return buf[:start], err
		}
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	if n := len(dst) - start; n > maxBSONSize && len(cs.stages) == 0 {
		return buf[:start], eventTooLarge(n)
	}
	if len(cs.stages) == 0 {
		return dst, nil
	}
	ev, err := cs.applyStages(dst[start:], t)
	if err != nil {
		return buf[:start], err
	}
	if len(ev) > maxBSONSize {
		return buf[:start], eventTooLarge(len(ev))
	}
	return append(dst[:start], ev...), nil
}

// eventTooLarge is MongoDB's error for a change event above 16 MiB (the
// emulator does not implement $changeStreamSplitLargeEvent).
func eventTooLarge(n int) error {
	return newErr(10334, "Executor error during getMore :: caused by :: BSONObj size: %d (0x%X) is invalid. Size must be between 0 and 16793600(16MB)", n, n)
}

func (cs *changeStream) appendPostImage(x *cmdCtx, dst []byte, e *entry) ([]byte, error) {
	switch cs.fullDoc {
	case "updateLookup":
		x.s.mu.RLock()
		var cur []byte
		if c := x.s.getColl(e.db, e.coll); c != nil && string(c.uuid) == string(e.uuid) {
			cur = c.get(e.key)
		}
		x.s.mu.RUnlock()
		if cur == nil {
			return bsoncore.AppendNullElement(dst, "fullDocument"), nil
		}
		return bsoncore.AppendDocumentElement(dst, "fullDocument", cur), nil
	case "whenAvailable", "required":
		if e.images && e.post != nil {
			return bsoncore.AppendDocumentElement(dst, "fullDocument", e.post), nil
		}
		if cs.fullDoc == "required" {
			return nil, newErr(codeNoMatchingDocument, "Change stream was configured to require a post-image for all update, delete and replace events, but the post-image was not found for event: %s", e.token().data())
		}
		return bsoncore.AppendNullElement(dst, "fullDocument"), nil
	}
	return dst, nil
}

func (cs *changeStream) appendPreImage(dst []byte, e *entry) ([]byte, error) {
	switch cs.fullDocBefore {
	case "whenAvailable", "required":
		if e.images && e.pre != nil {
			return bsoncore.AppendDocumentElement(dst, "fullDocumentBeforeChange", e.pre), nil
		}
		if cs.fullDocBefore == "required" {
			return nil, newErr(codeNoMatchingDocument, "Change stream was configured to require a pre-image for all update, delete and replace events, but the pre-image was not found for event: %s", e.token().data())
		}
		return bsoncore.AppendNullElement(dst, "fullDocumentBeforeChange"), nil
	}
	return dst, nil
}
