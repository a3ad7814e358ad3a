package mongoemu

import (
	"encoding/binary"
	"sort"
	"sync"
	"time"

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

func (e *entry) computeSize() {
	// Approximates the size of the real oplog entry: the document for
	// inserts and replacements, the diff for updates; pre- and post-images
	// count only when the collection records them.
	e.size = 64 + len(e.db) + len(e.coll) + len(e.docKey) + len(e.doc) + len(e.opDesc)
	if e.images {
		e.size += len(e.pre) + len(e.post)
	}
	if e.upd != nil {
		e.size += len(e.upd.updated) + len(e.upd.removed) + len(e.upd.truncated)
	}
}

// oplog is the bounded, in-memory operation log all change streams read.
type oplog struct {
	mu        sync.Mutex
	entries   []*entry // entries[head:] are retained
	head      int
	bytes     int64
	last      uint64 // last assigned timestamp
	lost      token  // token of the newest discarded event entry; zero if none
	hasLost   bool
	maxEvents int
	maxBytes  int64
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

// nextTSLocked returns a new cluster time greater than all previous ones.
func (o *oplog) nextTSLocked() uint64 {
	sec := uint64(time.Now().Unix())
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
	wall := nowMS()
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

func (o *oplog) trimLocked() {
	n := len(o.entries) - o.head
	for n > 0 && ((o.maxEvents > 0 && n > o.maxEvents) || (o.maxBytes > 0 && o.bytes > o.maxBytes && n > 1)) {
		e := o.entries[o.head]
		o.entries[o.head] = nil
		o.head++
		n--
		o.bytes -= int64(e.size)
		if e.op != opNoop {
			// A no-op is no event: discarding it loses no change-stream
			// history, so resume points before it stay valid.
			o.lost = e.token()
			o.hasLost = true
		}
	}
	if o.head > 4096 && o.head > len(o.entries)/2 {
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
	if now := uint64(time.Now().Unix()) << 32; now > o.last {
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
func (o *oplog) snapshot() []*entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*entry(nil), o.entries[o.head:]...)
}
