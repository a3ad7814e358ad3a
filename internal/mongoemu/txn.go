package mongoemu

import (
	"bytes"
	"sync"
)

// Transactions buffer their writes: the first access to a collection inside
// a transaction takes a private copy of it (documents are immutable and
// shared, so this costs one map copy); reads and writes in the transaction
// use the copies, so the transaction sees its own writes and nobody else
// does. commitTransaction re-applies the recorded operations to the real
// collections and appends all of them to the oplog atomically with one
// shared cluster time. There is no snapshot isolation or write-conflict
// detection: the last committer wins per document.

type txnState int

const (
	txnActive txnState = iota
	txnCommitted
	txnAborted
)

type txn struct {
	lsid      []byte // raw lsid document
	number    int64
	state     txnState
	colls     map[string]*collection // ns -> private copy (nil: dropped/absent)
	ops       []*entry
	createdAt int64
}

type session struct {
	mu  sync.Mutex
	txn *txn
}

// sessionRegistry holds the sessions commands have named, by lsid. Each
// keeps at most its latest transaction, whose lsid is a private copy (never
// a slice of the request that started it, which would pin that message).
// endSessions removes sessions; drivers pool and reuse theirs, so the
// registry grows with the sessions clients hold, not with the writes.
type sessionRegistry struct {
	mu       sync.Mutex
	sessions map[string]*session
}

func newSessionRegistry() *sessionRegistry {
	return &sessionRegistry{sessions: make(map[string]*session)}
}

func (r *sessionRegistry) get(lsid Val) *session {
	key := string(lsid.field("id").raw())
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sessions[key]
	if s == nil {
		s = &session{}
		r.sessions[key] = s
	}
	return s
}

// end forgets the session lsid names.
func (r *sessionRegistry) end(lsid Val) {
	key := string(lsid.field("id").raw())
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sessions, key)
}

// cmdEndSessions forgets the listed sessions; a transaction still open on
// one is abandoned (aborted), as on a real server.
func cmdEndSessions(x *cmdCtx) (*Doc, error) {
	for _, lsid := range x.body.Get("endSessions").elems() {
		x.s.sessions.end(lsid)
	}
	return docOf("ok", 1.0), nil
}

// attach resolves the transaction a command belongs to.
func (r *sessionRegistry) attach(x *cmdCtx) error {
	lsid := x.body.Get("lsid")
	tn := x.body.Get("txnNumber")
	if !lsid.exists() || !tn.exists() {
		return nil
	}
	n, _ := tn.asInt64()
	ac := x.body.Get("autocommit")
	if !ac.exists() {
		x.retryable = true
		return nil
	}
	if ac.truthy() {
		return newErr(codeInvalidOptions, "autocommit must be false")
	}
	sess := r.get(lsid)
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if x.body.Get("startTransaction").boolean() {
		if sess.txn != nil && sess.txn.number > n {
			return newErr(225, "Cannot start transaction %d on session because a newer transaction %d has already started", n, sess.txn.number)
		}
		if sess.txn != nil && sess.txn.number == n && sess.txn.state != txnAborted {
			return newErr(codeConflictingUpdateOps, "Given transaction number %d does not match any in-progress transactions", n)
		}
		sess.txn = &txn{lsid: bytes.Clone(lsid.raw()), number: n, colls: map[string]*collection{}, createdAt: nowMS()}
		x.txn = sess.txn
		return nil
	}
	t := sess.txn
	if t == nil || t.number != n {
		return &cmdError{Code: codeNoSuchTransaction, Msg: "Transaction with { txnNumber: " + itoa(int(n)) + " } has been aborted.", Labels: []string{"TransientTransactionError"}}
	}
	switch x.name {
	case "commitTransaction", "abortTransaction":
		x.txn = t
		return nil
	}
	if t.state != txnActive {
		if t.state == txnCommitted {
			return newErr(codeTransactionCommitted, "Transaction %d has been committed.", n)
		}
		return &cmdError{Code: codeNoSuchTransaction, Msg: "Transaction with { txnNumber: " + itoa(int(n)) + " } has been aborted.", Labels: []string{"TransientTransactionError"}}
	}
	x.txn = t
	return nil
}

// abortOnError aborts the transaction after a failed operation, as MongoDB
// does for most errors inside a transaction.
func (r *sessionRegistry) abortOnError(x *cmdCtx, err error) {
	if x.name == "commitTransaction" || x.name == "abortTransaction" {
		return
	}
	x.txn.state = txnAborted
	x.txn.colls, x.txn.ops = nil, nil
}

// txnColl returns the transaction's copy of a collection, taking it on
// first use. Caller holds s.mu.
func (x *cmdCtx) txnColl(db, name string) *collection {
	ns := db + "." + name
	if c, ok := x.txn.colls[ns]; ok {
		return c
	}
	var c *collection
	if real := x.s.getColl(db, name); real != nil {
		c = real.clone()
	}
	x.txn.colls[ns] = c
	return c
}

func cmdCommitTransaction(x *cmdCtx) (*Doc, error) {
	if x.db != "admin" {
		return nil, newErr(13, "commitTransaction may only be run against the admin database.")
	}
	t := x.txn
	if t == nil {
		return nil, &cmdError{Code: codeNoSuchTransaction, Msg: "Transaction has been aborted.", Labels: []string{"TransientTransactionError"}}
	}
	switch t.state {
	case txnCommitted:
		return docOf("ok", 1.0), nil
	case txnAborted:
		return nil, &cmdError{Code: codeNoSuchTransaction, Msg: "Transaction with { txnNumber: " + itoa(int(t.number)) + " } has been aborted.", Labels: []string{"TransientTransactionError"}}
	}
	s := x.s
	x.lock()
	var out []*entry
	for _, e := range t.ops {
		c := s.getColl(e.db, e.coll)
		if c == nil {
			var ce *entry
			c, ce = s.createCollLocked(e.db, e.coll, nil)
			if e.op != opCreate {
				ce.lsid, ce.txnNumber, ce.inTxn = t.lsid, t.number, true
				out = append(out, ce)
			}
		}
		switch e.op {
		case opCreate:
			c.uuid = e.uuid
		case opInsert, opUpdate, opReplace:
			if e.op == opInsert {
				c.replaceRow(e.key, e.doc)
			} else {
				c.replaceRow(e.key, e.post)
			}
		case opDelete:
			c.deleteRow(e.key)
		}
		e.uuid = c.uuid
		e.lsid, e.txnNumber, e.inTxn = t.lsid, t.number, true
		out = append(out, e)
	}
	s.oplog.append(out, true)
	x.unlock()
	t.state = txnCommitted
	t.colls, t.ops = nil, nil
	return docOf("ok", 1.0), nil
}

func cmdAbortTransaction(x *cmdCtx) (*Doc, error) {
	t := x.txn
	if t == nil || t.state == txnAborted {
		return nil, &cmdError{Code: codeNoSuchTransaction, Msg: "Transaction has been aborted.", Labels: []string{"TransientTransactionError"}}
	}
	if t.state == txnCommitted {
		return nil, newErr(codeTransactionCommitted, "Transaction %d has been committed.", t.number)
	}
	t.state = txnAborted
	t.colls, t.ops = nil, nil
	return docOf("ok", 1.0), nil
}
