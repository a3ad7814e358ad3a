package mongoemu

import (
	"bytes"
	"sync"
	"time"
)

// changeStream is an open change-stream cursor. Its position is the token
// of the last oplog entry it has scanned (or a high-water mark); getMore
// returns the events after it. Invariant: every event with a token greater
// than pos is either still in the oplog or the stream fails with
// ChangeStreamHistoryLost (286) - it never skips silently.
type changeStream struct {
	mu sync.Mutex
	s  *Server
	id int64
	ns string

	db, coll string // coll == "" for database streams
	cluster  bool

	fullDoc       string // default, updateLookup, whenAvailable, required
	fullDocBefore string // off, whenAvailable, required
	expanded      bool
	stages        []stage

	pos    token
	closed bool

	killOnce sync.Once
	killed   chan struct{} // closed by killCursors; wakes a waiting getMore
}

var allowedCSStages = map[string]bool{
	"$match": true, "$project": true, "$addFields": true, "$set": true, "$unset": true,
	"$replaceRoot": true, "$replaceWith": true, "$redact": true, "$changeStreamSplitLargeEvent": true,
}

const (
	csReadChunk      = 4096
	defaultAwaitTime = time.Second
)

func openChangeStream(x *cmdCtx, stages []Val) (*Doc, error) {
	spec := stages[0].doc().Get("$changeStream")
	if spec.T != tDoc {
		return nil, newErr(codeFailedToParse, "the $changeStream stage must be specified as an object")
	}
	sd := spec.doc()
	cs := &changeStream{s: x.s, db: x.db, fullDoc: "default", fullDocBefore: "off", killed: make(chan struct{})}
	for _, e := range sd.E {
		switch e.K {
		case "fullDocument":
			switch e.V.str() {
			case "default", "updateLookup", "whenAvailable", "required":
				cs.fullDoc = e.V.str()
			default:
				return nil, errBadValue("unknown full document option: '%s'", e.V.str())
			}
		case "fullDocumentBeforeChange":
			switch e.V.str() {
			case "off", "whenAvailable", "required":
				cs.fullDocBefore = e.V.str()
			default:
				return nil, errBadValue("unknown fullDocumentBeforeChange option: '%s'", e.V.str())
			}
		case "showExpandedEvents":
			cs.expanded = e.V.truthy()
		case "allChangesForCluster":
			cs.cluster = e.V.truthy()
		case "resumeAfter", "startAfter", "startAtOperationTime", "allowToRunOnConfigDB", "allowToRunOnSystemNS", "showSystemEvents", "showMigrationEvents", "showRawUpdateDescription":
		default:
			return nil, newErr(40415, "BSON field '$changeStream.%s' is an unknown field.", e.K)
		}
	}
	target := x.body.E[0].V
	switch {
	case target.T == tString:
		cs.coll = target.str()
		if cs.cluster {
			return nil, newErr(codeInvalidNamespace, "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database, and with no collection name; found %s.%s", x.db, cs.coll)
		}
		if isSystemColl(cs.coll) {
			return nil, newErr(codeInvalidNamespace, "$changeStream may not be opened on the internal %s.%s collection", x.db, cs.coll)
		}
		cs.ns = x.db + "." + cs.coll
	case x.db == "admin" && cs.cluster:
		cs.ns = "admin.$cmd.aggregate"
	case cs.cluster:
		return nil, newErr(codeInvalidNamespace, "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database, and with no collection name; found %s.$cmd.aggregate", x.db)
	default:
		cs.ns = x.db + ".$cmd.aggregate"
	}
	if !cs.cluster && internalDB(x.db) {
		return nil, newErr(codeInvalidNamespace, "$changeStream may not be opened on the internal %s database", x.db)
	}
	compiled, err := compilePipeline(stages[1:])
	if err != nil {
		return nil, err
	}
	for _, st := range compiled {
		if !allowedCSStages[st.name] {
			return nil, newErr(codeIllegalOperation, "%s is not permitted in a $changeStream pipeline", st.name)
		}
	}
	cs.stages = compiled

	n := 0
	for _, k := range []string{"resumeAfter", "startAfter", "startAtOperationTime"} {
		if sd.Get(k).exists() {
			n++
		}
	}
	if n > 1 {
		return nil, newErr(40674, "Only one type of resume option is allowed, but multiple were found.")
	}
	resumed := n == 1
	switch {
	case sd.Get("resumeAfter").exists():
		t, err := parseToken(sd.Get("resumeAfter"))
		if err != nil {
			return nil, err
		}
		if t.kind == tokInvalidate {
			return nil, newErr(codeInvalidResumeToken, "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate notification.")
		}
		cs.pos = t
	case sd.Get("startAfter").exists():
		t, err := parseToken(sd.Get("startAfter"))
		if err != nil {
			return nil, err
		}
		cs.pos = t
	case sd.Get("startAtOperationTime").exists():
		v := sd.Get("startAtOperationTime")
		if v.T != tTS {
			return nil, newErr(codeTypeMismatch, "startAtOperationTime must be a timestamp")
		}
		t, i := v.timestamp()
		ts := uint64(t)<<32 | uint64(i)
		if ts == 0 {
			cs.pos = token{}
		} else {
			cs.pos = highWater(ts - 1)
		}
	default:
		cs.pos = highWater(x.s.oplog.lastTS())
	}
	if resumed && x.s.oplog.historyLost(cs.pos) {
		return nil, historyLostError()
	}
	batch, err := batchSizeArg(x.body.Get("cursor").field("batchSize"), defaultBatch)
	if err != nil {
		return nil, err
	}
	var events [][]byte
	pbrt := cs.pos
	if !resumed {
		pbrt = cs.pos
	} else if batch > 0 {
		events, pbrt, _, err = cs.fill(x, batch)
		if err != nil {
			return nil, err
		}
	}
	var id int64
	if !cs.closed {
		id = x.s.cursors.add(cs)
		cs.id = id
	}
	return cursorDoc("firstBatch", events, id, cs.ns, &pbrt), nil
}

func historyLostError() *cmdError {
	return &cmdError{Code: codeChangeStreamHistoryLost,
		Msg:    "Resume of change stream was not possible, as the resume point may no longer be in the oplog.",
		Labels: []string{"NonResumableChangeStreamError"}}
}

// kill marks the cursor killed without waiting for a getMore in progress.
func (cs *changeStream) kill() {
	cs.killOnce.Do(func() { close(cs.killed) })
}

// matches reports whether an oplog entry belongs to this stream's scope.
func (cs *changeStream) matches(e *entry) bool {
	if e.op == opNoop || expandedOnly[e.op] && !cs.expanded {
		return false
	}
	if e.coll != "" && isSystemColl(e.coll) {
		return false
	}
	switch {
	case cs.cluster:
		return !internalDB(e.db)
	case cs.coll == "":
		return e.db == cs.db
	}
	return e.db == cs.db && e.coll == cs.coll && e.op != opDropDatabase
}

// invalidates reports whether e ends this stream.
func (cs *changeStream) invalidates(e *entry) bool {
	switch {
	case cs.cluster:
		return false
	case cs.coll == "":
		return e.op == opDropDatabase
	}
	return e.op == opDrop || e.op == opRename
}

// fill collects up to max events (0 = up to the batch byte limit) after
// pos. It returns the events, the postBatchResumeToken and a channel that
// is closed when new entries arrive.
func (cs *changeStream) fill(x *cmdCtx, max int) ([][]byte, token, <-chan struct{}, error) {
	var buf []byte
	var ends []int
	events := func() [][]byte {
		out := make([][]byte, len(ends))
		start := 0
		for i, end := range ends {
			out[i] = buf[start:end:end]
			start = end
		}
		return out
	}
	pbrt := cs.pos
	for {
		es, last, wait, lost := cs.s.oplog.read(cs.pos, csReadChunk)
		if lost {
			return nil, pbrt, wait, historyLostError()
		}
		if buf == nil && len(es) > 0 {
			buf = make([]byte, 0, 256*len(es))
		}
		for _, e := range es {
			if !cs.matches(e) {
				cs.pos = e.token()
				pbrt = cs.pos
				continue
			}
			n := len(buf)
			var err error
			if buf, err = cs.appendEvent(x, buf, e); err != nil {
				return nil, pbrt, wait, err
			}
			if len(buf) > n {
				ends = append(ends, len(buf))
			}
			cs.pos = e.token()
			pbrt = cs.pos
			if cs.invalidates(e) {
				inv := token{ts: e.ts, idx: e.idx, kind: tokInvalidate}
				iev, err := cs.applyStages(buildInvalidate(inv, e), inv)
				if err != nil {
					return nil, pbrt, wait, err
				}
				if iev != nil {
					buf = append(buf, iev...)
					ends = append(ends, len(buf))
				}
				cs.pos, pbrt = inv, inv
				cs.closed = true
				return events(), pbrt, wait, nil
			}
			if (max > 0 && len(ends) >= max) || len(buf) >= maxBatchBytes-(1<<20) {
				return events(), pbrt, wait, nil
			}
		}
		if len(es) < csReadChunk {
			hw := highWater(last)
			if hw.compare(cs.pos) > 0 {
				cs.pos = hw
			}
			return events(), cs.pos, wait, nil
		}
	}
}

// applyStages runs the user pipeline on one event and enforces that the
// resume token (_id) is left unmodified.
func (cs *changeStream) applyStages(ev []byte, t token) ([]byte, error) {
	if len(cs.stages) == 0 {
		return ev, nil
	}
	out, err := runPipeline(cs.stages, []Val{vRawDoc(ev)})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	id := out[0].field("_id")
	if id.T != tDoc || !bytes.Equal(id.raw(), t.doc().Bytes()) {
		return nil, &cmdError{Code: codeChangeStreamFatal,
			Msg:    "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. Modifying the _id field of an event makes it impossible to resume the stream from that point. Only transformations that retain the unmodified _id field are allowed.",
			Labels: []string{"NonResumableChangeStreamError"}}
	}
	return out[0].raw(), nil
}

func (cs *changeStream) getMore(x *cmdCtx, n int) (*Doc, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	select {
	case <-cs.killed:
		cs.closed = true
	default:
	}
	if cs.closed {
		x.s.cursors.remove(cs.id)
		return nil, newErr(codeCursorNotFound, "cursor id %d not found", cs.id)
	}
	wait := defaultAwaitTime
	if ms, ok := x.body.Get("maxTimeMS").asInt64(); ok && ms > 0 {
		wait = time.Duration(ms) * time.Millisecond
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		events, pbrt, ch, err := cs.fill(x, n)
		if err != nil {
			cs.closed = true
			x.s.cursors.remove(cs.id)
			return nil, err
		}
		if len(events) > 0 || cs.closed {
			id := cs.id
			if cs.closed {
				x.s.cursors.remove(cs.id)
				id = 0
			}
			return cursorDoc("nextBatch", events, id, cs.ns, &pbrt), nil
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		}
		select {
		case <-ch:
		case <-timer.C:
			return cursorDoc("nextBatch", nil, cs.id, cs.ns, &pbrt), nil
		case <-cs.killed:
			cs.closed = true
			return nil, newErr(237, "cursor id %d was killed", cs.id)
		case <-x.s.done:
			return nil, errCloseConn
		}
	}
}
