package transform

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Operation types of change events.
const (
	OpInsert       = "insert"
	OpUpdate       = "update"
	OpReplace      = "replace"
	OpDeleteEvent  = "delete"
	OpDrop         = "drop"
	OpRename       = "rename"
	OpDropDatabase = "dropDatabase"
	OpInvalidate   = "invalidate"
)

// Event is one change-stream event, its fields read straight from the raw
// document (byte slices alias Raw).
type Event struct {
	OperationType string
	// DB and Coll are ns.db and ns.coll (Coll is empty for dropDatabase).
	DB, Coll string
	// ToDB and ToColl are a rename's target.
	ToDB, ToColl string
	DocumentKey  bson.Raw
	// FullDocument is nil when absent or null.
	FullDocument bson.Raw
	ClusterTime  ClusterTime
	WallTime     time.Time
	// Token is the resume token's _data string.
	Token string
	// TxnNumber and LSID are set for operations inside a transaction.
	TxnNumber *int64
	LSID      bson.Raw
	// Raw is the whole event.
	Raw bson.Raw
}

// Namespace returns "db.coll".
func (e *Event) Namespace() string { return e.DB + "." + e.Coll }

// inNamespace reports whether Namespace() is ns, without building it.
func (e *Event) inNamespace(ns string) bool {
	n := len(e.DB)
	return len(ns) == n+1+len(e.Coll) && ns[:n] == e.DB && ns[n] == '.' && ns[n+1:] == e.Coll
}

var errNoOperation = errors.New("event has no operationType")

// ParseEvent reads a change-stream event document. It reads only the
// fields above; the others stay in Raw.
func ParseEvent(raw bson.Raw) (*Event, error) {
	ev := &Event{Raw: raw}
	// The strings are copied out of raw at the end, all into one arena.
	var token, db, coll, toDB, toColl []byte
	it := newDocIter(raw)
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		var err error
		switch string(k) {
		case "_id":
			if v.typ == bsonDocument {
				var tok rawValue
				if tok, err = lookup(v.data, "_data"); err == nil && tok.typ == bsonString {
					token = tok.strBytes()
				}
			}
		case "operationType":
			if v.typ == bsonString {
				ev.OperationType = internOp(v.strBytes())
			} else {
				_, err = eventString(v, "operationType")
			}
		case "ns":
			db, coll, err = eventNS(v, "ns")
		case "to":
			toDB, toColl, err = eventNS(v, "to")
		case "documentKey":
			if v.typ != bsonDocument {
				err = fmt.Errorf("documentKey is %s, not a document", typeName(v.typ))
			}
			ev.DocumentKey = bson.Raw(v.data)
		case "fullDocument":
			switch v.typ {
			case bsonDocument:
				ev.FullDocument = bson.Raw(v.data)
			case bsonNull:
			default:
				err = fmt.Errorf("fullDocument is %s, not a document", typeName(v.typ))
			}
		case "clusterTime":
			if v.typ != bsonTimestamp {
				err = fmt.Errorf("clusterTime is %s, not a timestamp", typeName(v.typ))
				break
			}
			ev.ClusterTime.T, ev.ClusterTime.I = v.timestamp()
		case "wallTime":
			if v.typ == bsonDateTime {
				ev.WallTime = time.UnixMilli(v.int64()).UTC()
			}
		case "txnNumber":
			var n int64
			switch v.typ {
			case bsonInt64:
				n = v.int64()
			case bsonInt32:
				n = int64(v.int32())
			default:
				err = fmt.Errorf("txnNumber is %s, not an integer", typeName(v.typ))
			}
			ev.TxnNumber = &n
		case "lsid":
			if v.typ == bsonDocument {
				ev.LSID = bson.Raw(v.data)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("parse event: %w", err)
		}
	}
	if it.err != nil {
		return nil, fmt.Errorf("parse event: %w", it.err)
	}
	if ev.OperationType == "" {
		return nil, fmt.Errorf("parse event: %w", errNoOperation)
	}
	a := newArena(len(token) + len(db) + len(coll) + len(toDB) + len(toColl))
	ev.Token, ev.DB, ev.Coll = a.text(token), a.text(db), a.text(coll)
	ev.ToDB, ev.ToColl = a.text(toDB), a.text(toColl)
	return ev, nil
}

// knownOps are the operation types interned by ParseEvent.
var knownOps = []string{OpInsert, OpUpdate, OpReplace, OpDeleteEvent, OpDrop, OpRename, OpDropDatabase, OpInvalidate}

// internOp returns the constant for a known operation type, so the hot
// path does not allocate it.
func internOp(b []byte) string {
	for _, op := range knownOps {
		if string(b) == op {
			return op
		}
	}
	return string(b)
}

// eventString returns a string field's bytes (aliasing the event). The
// field's path, its parts joined by dots, names it in the error.
func eventString(v rawValue, path ...string) ([]byte, error) {
	if v.typ != bsonString {
		return nil, fmt.Errorf("%s is %s, not a string", strings.Join(path, "."), typeName(v.typ))
	}
	return v.strBytes(), nil
}

func eventNS(v rawValue, field string) (db, coll []byte, err error) {
	if v.typ != bsonDocument {
		return nil, nil, fmt.Errorf("%s is %s, not a document", field, typeName(v.typ))
	}
	it := newDocIter(v.data)
	for k, f, ok := it.next(); ok; k, f, ok = it.next() {
		switch string(k) {
		case "db":
			db, err = eventString(f, field, "db")
		case "coll":
			coll, err = eventString(f, field, "coll")
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return db, coll, it.err
}
