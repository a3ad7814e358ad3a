package mongoemu

import (
	"encoding/binary"
	"sort"
	"sync"
	"time"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Operation kinds recorded in the oplog; they are the change-event
// operationType values.
const (
	opInsert        = "insert"
	opUpdate        = "update"
	opReplace       = "replace"
	opDelete        = "delete"
	opDrop          = "drop"
	opRename        = "rename"
	opDropDatabase  = "dropDatabase"
	opCreate        = "create"
	opCreateIndexes = "createIndexes"
	opDropIndexes   = "dropIndexes"
	opModify        = "modify"
	opInvalidate    = "invalidate"
)

// opNoop is a no-op entry (op "n" in local.oplog.rs). It takes a cluster
// time like any write but is no change event: change streams skip it.
const opNoop = "noop"

// initiateMsg is the o.msg of the no-op entry that opens a replica set's
// oplog (rs.initiate writes it).
const initiateMsg = "initiating set"

// expandedOnly lists operation types reported only with showExpandedEvents.
var expandedOnly = map[string]bool{opCreate: true, opCreateIndexes: true, opDropIndexes: true, opModify: true}

// entry is one oplog entry: one change event source.
type entry struct {
	ts   uint64 // BSON timestamp: seconds<<32 | increment
	idx  uint32 // position within a transaction sharing ts
	wall int64  // wall clock, milliseconds
	op   string
	db   string
	coll string
	uuid []byte // collection UUID (16 bytes), nil if none

	docKey []byte // {_id: ...}; nil for inserts, whose stored doc starts with _id
	doc    []byte // insert/replace: the new document; no-op: its o document
	pre    []byte // pre-image, when the collection records them
	post   []byte // post-image for updates, when the collection records them
	upd    *updateDesc

	toDB, toColl   string
	dropTargetUUID []byte
	opDesc         []byte // operationDescription for expanded DDL events
	stateBefore    []byte // stateBeforeChange for modify events
	isView         bool

	lsid      []byte
	txnNumber int64
	inTxn     bool

	// key is the canonical _id; images records whether the collection had
	// changeStreamPreAndPostImages enabled at write time. Until the entry
	// is appended, pre and post reference the old and new document (a
	// transaction commit applies post); afterwards they are kept only when
	// images is set.
	key    string
	images bool

	size int
}

func (e *entry) token() token { return token{ts: e.ts, idx: e.idx} }

// appendDocKey appends the documentKey element {_id: ...}.
func (e *entry) appendDocKey(dst []byte, key string) []byte {
	if e.docKey != nil {
		return bsoncore.AppendDocumentElement(dst, key, e.docKey)
	}
	el := bsoncore.Document(e.doc).Index(0)
	dst = append(dst, byte(bsoncore.TypeEmbeddedDocument))
	dst = append(dst, key...)
	dst = append(dst, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(el)+5))
	dst = append(dst, el...)
	return append(dst, 0)
}

// documentKey returns {_id: ...} as a document.
func (e *entry) documentKey() []byte {
	if e.docKey != nil {
		return e.docKey
	}
	d := e.appendDocKey(nil, "k")
	return d[3:]
}

// entryOverhead is the memory an entry holds besides the bytes it
// references: the entry itself and its slot in the log.
const entryOverhead = int(unsafe.Sizeof(entry{})) + int(unsafe.Sizeof((*entry)(nil)))

// computeSize sets e.size to the memory the entry keeps alive while it is
// retained: its overhead and the bytes it references (documents count even
// when a collection shares them, since the entry outlives their deletion).
// Pre- and post-images count only when the collection records them; the
// collection UUID, names and a transaction's lsid are shared and not
// counted. OplogMaxBytes bounds the sum, so it bounds the oplog's heap.
func (e *entry) computeSize() {
	e.size = entryOverhead + len(e.key) + len(e.docKey) + len(e.doc) + len(e.opDesc) + len(e.stateBefore)
	if e.images {
		e.size += len(e.pre) + len(e.post)
	}
	if u := e.upd; u != nil {
		e.size += int(unsafe.Sizeof(*u)) + len(u.updated) + len(u.removed) + len(u.truncated) + len(u.disamb)
	}
}

// oplog is the bounded, in-memory operation log all change streams read.
//
// Invariants:
//   - entries[head:] are the retained entries in timestamp order; every
//     slot before head is nil, so a discarded entry is garbage as soon as
//     no reader holds it.
//   - bytes is the sum of the retained entries' sizes. After every append,
//     at most maxEvents entries and maxBytes bytes are retained (a zero
//     bound is no bound), except that a single entry larger than maxBytes
//     is kept until the next append.
//   - Trimming is amortised O(1) per entry: the front is discarded by
//     advancing head, and the live tail is copied to a new, right-sized
//     array only once the discarded prefix is longer than both compactMin
//     and the tail, which also frees the old array. The discarded prefix
//     is therefore never longer than max(compactMin, retained entries).
type oplog struct {
	mu        sync.Mutex
	entries   []*entry // entries[head:] are retained
	head      int
	bytes     int64
	last      uint64 // last assigned timestamp
	lost      token  // token of the newest discarded event entry; zero if none
	hasLost   bool
	discarded int64 // entries discarded by truncation
	maxEvents int
	maxBytes  int64
	offset    time.Duration // the server's clock offset (Options.ClockOffset)
	notify    chan struct{} // closed and replaced on every append
}

// newOplog returns an oplog that holds, like a freshly initiated replica
// set's, one no-op entry {msg: "initiating set"}. Its cluster time is taken
// now, before any write, so the oldest retained entry precedes every later
// event until truncation discards it (it is the first to go, as on a real
// server). Data lives in memory only: a restarted server starts a new
// oplog with a new initiation entry, like a new replica set.
func newOplog(maxEvents int, maxBytes int64) *oplog {
	o := &oplog{maxEvents: maxEvents, maxBytes: maxBytes, notify: make(chan struct{})}
	msg := bsoncore.NewDocumentBuilder().AppendString("msg", initiateMsg).Build()
	o.append([]*entry{{op: opNoop, doc: msg}}, false)
	return o
}

func splitTS(ts uint64) (uint32, uint32) { return uint32(ts >> 32), uint32(ts) }

// now is the server's clock.
func (o *oplog) now() time.Time { return time.Now().Add(o.offset) }

// nextTSLocked returns a new cluster time greater than all previous ones.
func (o *oplog) nextTSLocked() uint64 {
	sec := uint64(o.now().Unix())
	if last := o.last >> 32; sec <= last {
		o.last++
	} else {
		o.last = sec<<32 | 1
	}
	return o.last
}

// lastTS returns the newest cluster time (never zero: the initiation
// entry has one).
func (o *oplog) lastTS() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

// append assigns timestamps to entries and wakes waiting change streams.
// When shared is true all entries get one timestamp (a transaction commit)
// and increasing idx.
func (o *oplog) append(es []*entry, shared bool) {
	if len(es) == 0 {
		return
	}
	o.mu.Lock()
	wall := o.now().UnixMilli()
	var ts uint64
	for i, e := range es {
		if !shared || i == 0 {
			ts = o.nextTSLocked()
		}
		e.ts = ts
		if shared {
			e.idx = uint32(i)
		}
		e.wall = wall
		if !e.images {
			// Only collections with changeStreamPreAndPostImages keep
			// images; dropping the references bounds memory to what a
			// real oplog would hold.
			e.pre, e.post = nil, nil
		}
		e.computeSize()
		o.bytes += int64(e.size)
	}
	o.entries = append(o.entries, es...)
	o.trimLocked()
	ch := o.notify
	o.notify = make(chan struct{})
	o.mu.Unlock()
	close(ch)
}

// compactMin is the discarded prefix below which trimLocked never copies.
const compactMin = 4096

// trimLocked discards the oldest entries beyond the bounds. Caller holds
// o.mu.
func (o *oplog) trimLocked() {
	n := len(o.entries) - o.head
	for n > 0 && ((o.maxEvents > 0 && n > o.maxEvents) || (o.maxBytes > 0 && o.bytes > o.maxBytes && n > 1)) {
		e := o.entries[o.head]
		o.entries[o.head] = nil
		o.head++
		n--
		o.bytes -= int64(e.size)
		o.discarded++
		if e.op != opNoop {
			// A no-op is no event: discarding it loses no change-stream
			// history, so resume points before it stay valid.
			o.lost = e.token()
			o.hasLost = true
		}
	}
	if o.head > compactMin && o.head > len(o.entries)-o.head {
		o.entries = append([]*entry(nil), o.entries[o.head:]...)
		o.head = 0
	}
}

// wakeAll releases every waiter (used on Close).
func (o *oplog) wakeAll() {
	o.mu.Lock()
	ch := o.notify
	o.notify = make(chan struct{})
	o.mu.Unlock()
	close(ch)
}

// historyLost reports whether entries after position p have been discarded.
func (o *oplog) historyLost(p token) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hasLost && o.lost.compare(p) > 0
}

// read returns up to max entries with token > p, the newest timestamp, a
// channel closed on the next append, and whether history after p was lost.
//
// Like a primary's periodic no-op writer, read advances the cluster time to
// the current second (increment 0) when nothing was written, so the
// postBatchResumeToken of idle streams keeps moving and lag reads ~0.
func (o *oplog) read(p token, max int) (out []*entry, last uint64, wait <-chan struct{}, lost bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if now := uint64(o.now().Unix()) << 32; now > o.last {
		o.last = now
	}
	if o.hasLost && o.lost.compare(p) > 0 {
		return nil, o.last, o.notify, true
	}
	live := o.entries[o.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].token().compare(p) > 0 })
	end := len(live)
	if max > 0 && i+max < end {
		end = i + max
	}
	out = append(out, live[i:end]...)
	return out, o.last, o.notify, false
}

// stats returns the oldest and newest retained timestamps and the count.
func (o *oplog) stats() (first, last uint64, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	live := o.entries[o.head:]
	if len(live) > 0 {
		first = live[0].ts
	}
	return first, o.last, len(live)
}

// snapshot returns the retained entries (shared, read-only).
func (o *oplog) snapshot() []*entry { return o.window(0, 0, false) }

// window returns the retained entries (shared, read-only) in natural
// order, or newest first, after skipping skip of them and at most limit
// (0: all). It copies only the entries it returns.
func (o *oplog) window(skip, limit int64, newest bool) []*entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	live := o.entries[o.head:]
	n := int64(len(live))
	if skip >= n {
		return nil
	}
	count := n - skip
	if limit > 0 && limit < count {
		count = limit
	}
	out := make([]*entry, count)
	if !newest {
		copy(out, live[skip:skip+count])
		return out
	}
	for i := range out {
		out[i] = live[n-1-skip-int64(i)]
	}
	return out
}
