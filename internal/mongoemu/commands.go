package mongoemu

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"
)

// cmdCtx carries one command invocation.
type cmdCtx struct {
	s    *Server
	c    *conn
	m    *message
	name string
	db   string
	body *Doc
	// txn is the open multi-document transaction this command runs in, or nil.
	txn *txn
	// retryable is set for writes carrying txnNumber outside a transaction.
	retryable bool
	// locked records how the handler holds Server.mu (0 none, 1 write,
	// 2 read) so a panicking handler can release it.
	locked int
}

func (x *cmdCtx) lock()    { x.s.mu.Lock(); x.locked = 1 }
func (x *cmdCtx) unlock()  { x.locked = 0; x.s.mu.Unlock() }
func (x *cmdCtx) rlock()   { x.s.mu.RLock(); x.locked = 2 }
func (x *cmdCtx) runlock() { x.locked = 0; x.s.mu.RUnlock() }

type handler func(x *cmdCtx) (*Doc, error)

// commands maps command names to handlers. Filled in init-free fashion by
// commandTable to keep handlers in their own files.
var commands map[string]handler

func commandTable() map[string]handler {
	return map[string]handler{
		"hello":                          cmdHello,
		"isMaster":                       cmdHello,
		"ismaster":                       cmdHello,
		"ping":                           cmdPing,
		"buildInfo":                      cmdBuildInfo,
		"buildinfo":                      cmdBuildInfo,
		"getParameter":                   cmdGetParameter,
		"endSessions":                    cmdEndSessions,
		"killSessions":                   cmdOK,
		"killAllSessions":                cmdOK,
		"refreshSessions":                cmdOK,
		"startSession":                   cmdStartSession,
		"serverStatus":                   cmdServerStatus,
		"replSetGetStatus":               cmdReplSetGetStatus,
		"hostInfo":                       cmdHostInfo,
		"getCmdLineOpts":                 cmdGetCmdLineOpts,
		"getLog":                         cmdGetLog,
		"connectionStatus":               cmdConnectionStatus,
		"whatsmyuri":                     cmdWhatsMyURI,
		"listDatabases":                  cmdListDatabases,
		"listCollections":                cmdListCollections,
		"create":                         cmdCreate,
		"collMod":                        cmdCollMod,
		"drop":                           cmdDrop,
		"dropDatabase":                   cmdDropDatabase,
		"renameCollection":               cmdRenameCollection,
		"createIndexes":                  cmdCreateIndexes,
		"dropIndexes":                    cmdDropIndexes,
		"deleteIndexes":                  cmdDropIndexes,
		"listIndexes":                    cmdListIndexes,
		"insert":                         cmdInsert,
		"update":                         cmdUpdate,
		"delete":                         cmdDelete,
		"findAndModify":                  cmdFindAndModify,
		"findandmodify":                  cmdFindAndModify,
		"find":                           cmdFind,
		"getMore":                        cmdGetMore,
		"killCursors":                    cmdKillCursors,
		"count":                          cmdCount,
		"distinct":                       cmdDistinct,
		"aggregate":                      cmdAggregate,
		"dbStats":                        cmdDBStats,
		"collStats":                      cmdCollStats,
		"commitTransaction":              cmdCommitTransaction,
		"abortTransaction":               cmdAbortTransaction,
		"configureFailPoint":             cmdConfigureFailPoint,
		"logout":                         cmdOK,
		"saslStart":                      cmdSaslStart,
		"saslContinue":                   cmdSaslContinue,
		"authenticate":                   cmdAuthenticate,
		"setFeatureCompatibilityVersion": cmdOK,
		"getDefaultRWConcern":            cmdGetDefaultRWConcern,
		"listCommands":                   cmdListCommands,
	}
}

func init() { commands = commandTable() }

func cmdOK(*cmdCtx) (*Doc, error) { return docOf("ok", 1.0), nil }

// handle runs one request and returns the reply body.
func (c *conn) handle(m *message) (*Doc, error) {
	s := c.s
	body := m.body
	if len(body.E) == 0 {
		return c.finish(nil, newErr(codeFailedToParse, "empty command"), nil), nil
	}
	name := body.E[0].K
	db := body.Get("$db").str()
	if m.legacy || db == "" {
		db = "admin"
	}
	x := &cmdCtx{s: s, c: c, m: m, name: name, db: db, body: body}
	start := time.Now()
	reply, err := c.dispatch(x)
	if errors.Is(err, errCloseConn) {
		return nil, err
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("command", "conn", c.id, "db", db, "cmd", name, "dur", time.Since(start), "err", err)
	}
	return c.finish(x, err, reply), nil
}

func (c *conn) dispatch(x *cmdCtx) (reply *Doc, err error) {
	defer func() {
		// A bug in one command must not take down every test using the
		// server: report it as an InternalError.
		if p := recover(); p != nil {
			switch x.locked {
			case 1:
				x.unlock()
			case 2:
				x.runlock()
			}
			x.s.log.Error("command panicked", "cmd", x.name, "panic", p, "stack", string(debug.Stack()))
			reply, err = nil, newErr(1, "internal error in %s: %v", x.name, p)
		}
	}()
	h, ok := commands[x.name]
	if !ok {
		return nil, newErr(codeCommandNotFound, "no such command: '%s'", x.name)
	}
	if err := x.requireAuth(); err != nil {
		return nil, err
	}
	if x.body.Get("txnNumber").exists() && !x.body.Get("autocommit").exists() {
		x.retryable = true
	}
	if fp := x.s.fail.check(x); fp != nil {
		if reply, err, handled := fp.apply(x, h); handled {
			return reply, err
		}
	}
	if err := x.s.sessions.attach(x); err != nil {
		return nil, err
	}
	reply, err = h(x)
	if err != nil && x.txn != nil {
		x.s.sessions.abortOnError(x, err)
	}
	return reply, err
}

// finish appends ok/$clusterTime/operationTime to the reply.
func (c *conn) finish(x *cmdCtx, err error, reply *Doc) *Doc {
	if err != nil {
		ce := asCmdError(err)
		if x != nil {
			x.s.addErrorLabels(x, ce)
		}
		reply = errorReply(ce)
	} else if reply == nil {
		reply = docOf("ok", 1.0)
	} else if reply.index("ok") < 0 {
		reply.Append("ok", vDouble(1))
	}
	ts := c.s.oplog.lastTS()
	t, i := splitTS(ts)
	sig := docOf("hash", Val{T: tBinary, B: append([]byte{20, 0, 0, 0, 0}, make([]byte, 20)...)}, "keyId", int64(0))
	reply.Append("$clusterTime", vDoc(docOf("clusterTime", vTS(t, i), "signature", sig)))
	reply.Append("operationTime", vTS(t, i))
	return reply
}

// addErrorLabels adds the labels MongoDB attaches to errors by context.
func (s *Server) addErrorLabels(x *cmdCtx, ce *cmdError) {
	if ce.Labels != nil {
		return
	}
	if x.txn != nil || x.body.Get("startTransaction").boolean() || x.name == "commitTransaction" {
		switch ce.Code {
		case codeNoSuchTransaction, codeWriteConflict:
			ce.Labels = []string{"TransientTransactionError"}
		}
	}
	if x.retryable && retryableWriteCodes[ce.Code] {
		ce.Labels = append(ce.Labels, "RetryableWriteError")
	}
}

// collName returns the string value of the command's first field.
func (x *cmdCtx) collName() string { return x.body.E[0].V.str() }

func (x *cmdCtx) ns() string { return x.db + "." + x.collName() }

func validCollName(name string) error {
	if name == "" || strings.ContainsRune(name, 0) || strings.HasPrefix(name, ".") || strings.Contains(name, "$") {
		return newErr(codeInvalidNamespace, "Invalid collection name: %s", name)
	}
	return nil
}

// intArg reads a numeric field as int64 with a default.
func intArg(d *Doc, k string, def int64) int64 {
	v := d.Get(k)
	if n, ok := v.asInt64(); ok {
		return n
	}
	return def
}
