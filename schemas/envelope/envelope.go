// Package envelope defines the message the capture side publishes to the
// buffer and the apply side consumes: one envelope per source event, holding
// every row mutation that event causes. The wire format is versioned and
// documented in schemas/envelope.md.
package envelope

import (
	"encoding/json"
	"time"

	"github.com/mongopg/replicator/transform"
)

// Version is the envelope format this build writes and reads: 2, binary.
// Decode rejects any other, so an applier never misreads a newer message,
// and never reads the JSON form (version 1) of builds before the first
// release (schemas/envelope.md, Compatibility).
const Version = 2

// Kind says what an envelope carries.
type Kind string

const (
	// KindChange carries the mutations of one source change event.
	KindChange Kind = "change"
	// KindHeartbeat carries only a source time, so apply lag stays truthful
	// while a collection is idle.
	KindHeartbeat Kind = "heartbeat"
	// KindDeadLetter carries an event the capture side could not transform.
	KindDeadLetter Kind = "dead_letter"
	// KindControl carries a drop, rename, dropDatabase or invalidate event.
	KindControl Kind = "control"
)

// Envelope is one buffer message.
type Envelope struct {
	V    int  `json:"v"`
	Kind Kind `json:"kind"`
	// Collection is the configured source namespace, "db.collection".
	Collection  string                `json:"collection"`
	ClusterTime transform.ClusterTime `json:"cluster_time"`
	// Ordinal is the event's place among the consecutive change events of
	// its cluster time in change-stream order (1, 2, ...): the tie-breaker
	// of row versions inside one cluster time, which the operations of one
	// transaction share. It follows source order whatever order the buffer
	// stored the messages in. Every change envelope carries one (at least
	// 1; Decode refuses one without, see check); 0 (omitted) in the other
	// kinds.
	Ordinal  uint32    `json:"ord,omitempty"`
	WallTime time.Time `json:"wall_time,omitzero"`
	// Token is the event's resume token (_data); the message's Nats-Msg-Id
	// is derived from it (buffer.MsgID).
	Token string `json:"token,omitempty"`
	// Operation is the source operationType (insert, update, ...).
	Operation string `json:"op,omitempty"`
	// DocumentKey is the event's documentKey as canonical Extended JSON.
	DocumentKey string               `json:"document_key,omitempty"`
	Mutations   []transform.Mutation `json:"mutations,omitempty"`
	DeadLetter  *DeadLetter          `json:"dead_letter,omitempty"`
}

// DeadLetter describes an event that could not be transformed.
type DeadLetter struct {
	Error string `json:"error"`
	// Path is the document field path at fault, when known.
	Path string `json:"path,omitempty"`
	// RawEvent is the source change event as canonical Extended JSON.
	RawEvent json.RawMessage `json:"raw_event"`
}

// Encode returns the wire form of e, stamping the current format version.
func Encode(e *Envelope) ([]byte, error) { return AppendEncode(nil, e) }

// Decode parses a wire-form envelope. The result shares no memory with b.
func Decode(b []byte) (*Envelope, error) {
	return DecodeShared(append([]byte(nil), b...))
}
