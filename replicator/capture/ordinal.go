package capture

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/transform"
)

// ordinals numbers change events inside one cluster time in change-stream
// order: the first event of a cluster time gets 1, the next event with the
// same cluster time 2, and so on; an event of another cluster time starts
// again at 1. The number is the tie-breaker of row versions inside one
// cluster time, which the operations of one transaction share (invariant
// 3), so it follows source order, not the order the buffer stores the
// messages in: a publish retried after later ones succeeded lands after
// them in the buffer but still carries its own ordinal.
//
// The numbering is deterministic across restarts: it starts from the
// position capture (re)opens the stream after (buffer.Position.Ordinal,
// the ordinal of the event at its token), so events read again after a
// crash inside a transaction get the ordinals, and envelopes, they had,
// and the same Nats-Msg-Id deduplicates them.
//
// The pipeline's reader stage owns one (pipeline.go): it is the single
// goroutine that sees the events in stream order before the workers
// encode them.
type ordinals struct {
	ct transform.ClusterTime
	n  uint32
}

// ordinalsAfter starts the numbering after pos.
func ordinalsAfter(pos buffer.Position) ordinals {
	return ordinals{ct: pos.ClusterTime, n: pos.Ordinal}
}

// next returns the ordinal of the next event, read from the stream.
func (o *ordinals) next(raw bson.Raw) uint32 {
	var ct transform.ClusterTime
	if t, i, ok := raw.Lookup("clusterTime").TimestampOK(); ok {
		ct = transform.ClusterTime{T: t, I: i}
	}
	if ct != o.ct {
		o.ct, o.n = ct, 0
	}
	o.n++
	return o.n
}

// caughtUp moves past an empty getMore's postBatchResumeToken (its _data,
// possibly empty) and returns the ordinal of the position it becomes
// (stream.go, caughtUp): 0 when the token is past the last event's cluster
// time, else the last event's ordinal, so that an event of that cluster
// time read after it (the token of an event the $match filtered out,
// inside a transaction) numbers on from there, restart or not.
func (o *ordinals) caughtUp(data string) uint32 {
	if ct, ok := buffer.ClusterTimeOfToken(data); ok && o.ct.Before(ct) {
		o.ct, o.n = ct, 0
	}
	return o.n
}
