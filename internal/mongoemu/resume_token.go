package mongoemu

import (
	"fmt"
	"strconv"
)

// Token kinds. An event token identifies one change event; an invalidate
// token sorts just after the event that caused the invalidation; a
// high-water-mark token sorts after every event at its cluster time and is
// used as postBatchResumeToken when a stream has no more events.
const (
	tokEvent      = 0
	tokInvalidate = 1
	tokHighWater  = 2
)

// token is a decoded resume token. Tokens order by (clusterTime, index
// within the transaction or apply group, kind).
//
// Encoding of _data (upper-case hex, so string order equals token order):
// "82" | clusterTime (16 hex digits, seconds<<32|increment) | index (8) |
// kind (2).
type token struct {
	ts   uint64
	idx  uint32
	kind uint8
}

func (t token) compare(o token) int {
	switch {
	case t.ts != o.ts:
		return cmpUint(t.ts, o.ts)
	case t.idx != o.idx:
		return cmpUint(uint64(t.idx), uint64(o.idx))
	}
	return cmpInt(int(t.kind), int(o.kind))
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func highWater(ts uint64) token { return token{ts: ts, idx: ^uint32(0), kind: tokHighWater} }

func (t token) data() string { return fmt.Sprintf("82%016X%08X%02X", t.ts, t.idx, t.kind) }

// appendTokenDoc appends the resume token document {_data: "..."}.
func (t token) doc() *Doc { return docOf("_data", t.data()) }

func parseToken(v Val) (token, error) {
	if v.T != tDoc {
		return token{}, errBadValue("resume token must be a document")
	}
	d := v.field("_data")
	if d.T != tString {
		return token{}, errBadValue("resume token _data must be a string")
	}
	s := d.str()
	if len(s) != 28 || s[:2] != "82" {
		return token{}, newErr(codeInvalidResumeToken, "malformed resume token: %s", s)
	}
	ts, err1 := strconv.ParseUint(s[2:18], 16, 64)
	idx, err2 := strconv.ParseUint(s[18:26], 16, 32)
	kind, err3 := strconv.ParseUint(s[26:28], 16, 8)
	if err1 != nil || err2 != nil || err3 != nil || kind > tokHighWater {
		return token{}, newErr(codeInvalidResumeToken, "malformed resume token: %s", s)
	}
	return token{ts: ts, idx: uint32(idx), kind: uint8(kind)}, nil
}
