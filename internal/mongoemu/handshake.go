package mongoemu

import (
	"crypto/rand"
	"os"
	"time"
)

const (
	maxWireVersion   = 25
	serverVersion    = "8.0.0"
	maxBSONSize      = 16 * 1024 * 1024
	maxWriteBatch    = 100000
	sessionTimeoutMn = 30
)

// processID identifies this process in topologyVersion.
var processID = func() [12]byte {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return b
}()

func oidVal(b [12]byte) Val { return Val{T: tOID, B: append([]byte(nil), b[:]...)} }

// maxHelloAwait caps the wait of an awaitable hello. The topology never
// changes, so any wait is correct; a short one bounds how long a driver
// whose monitor missed a cancellation (it marked the server unknown after a
// network error while an awaitable hello was in flight) stays without a
// selectable server. It costs one hello per client every maxHelloAwait.
const maxHelloAwait = 500 * time.Millisecond

// cmdHello answers hello/isMaster. Awaitable hello (topologyVersion plus
// maxAwaitTimeMS from a streaming monitor) waits up to maxHelloAwait and
// then replies without moreToCome, so the driver sends the next awaitable
// hello.
func cmdHello(x *cmdCtx) (*Doc, error) {
	if cl := x.body.Get("client"); cl.T == tDoc {
		if app := cl.field("application").field("name"); app.T == tString {
			x.c.appName = app.str()
		}
	}
	if tv := x.body.Get("topologyVersion"); tv.T == tDoc {
		wait, _ := x.body.Get("maxAwaitTimeMS").asInt64()
		pid := tv.field("processId")
		if wait > 0 && pid.T == tOID && string(pid.B) == string(processID[:]) {
			d := min(time.Duration(wait)*time.Millisecond, maxHelloAwait)
			if !x.c.waitIdle(d) {
				return nil, errCloseConn
			}
		}
	}
	addr := x.s.host
	ts := x.s.oplog.lastTS()
	t, i := splitTS(ts)
	now := x.s.oplog.now().UnixMilli()
	opTime := docOf("ts", vTS(t, i), "t", int64(1))
	d := docOf(
		"topologyVersion", docOf("processId", oidVal(processID), "counter", int64(0)),
		"hosts", []string{addr},
		"setName", x.s.opts.ReplicaSet,
		"setVersion", 1,
	)
	if x.name == "hello" {
		d.Append("isWritablePrimary", vBool(true))
	} else {
		d.Append("ismaster", vBool(true))
	}
	d.Append("secondary", vBool(false))
	d.Append("primary", vString(addr))
	d.Append("me", vString(addr))
	d.Append("electionId", oidVal([12]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}))
	d.Append("lastWrite", vDoc(docOf(
		"opTime", opTime,
		"lastWriteDate", vDate(now),
		"majorityOpTime", opTime.clone(),
		"majorityWriteDate", vDate(now),
	)))
	if x.body.Get("helloOk").boolean() {
		d.Append("helloOk", vBool(true))
	}
	x.saslMechs(d)
	d.Append("maxBsonObjectSize", vInt32(maxBSONSize))
	d.Append("maxMessageSizeBytes", vInt32(maxMessageSize))
	d.Append("maxWriteBatchSize", vInt32(maxWriteBatch))
	d.Append("localTime", vDate(now))
	d.Append("logicalSessionTimeoutMinutes", vInt32(sessionTimeoutMn))
	d.Append("connectionId", vInt(x.c.id))
	d.Append("minWireVersion", vInt32(0))
	d.Append("maxWireVersion", vInt32(maxWireVersion))
	d.Append("readOnly", vBool(false))
	return d, nil
}

func cmdPing(*cmdCtx) (*Doc, error) { return docOf("ok", 1.0), nil }

func cmdBuildInfo(*cmdCtx) (*Doc, error) {
	return docOf(
		"version", serverVersion,
		"gitVersion", "mongoemu",
		"modules", []Val{},
		"allocator", "system",
		"javascriptEngine", "none",
		"sysInfo", "deprecated",
		"versionArray", []Val{vInt32(8), vInt32(0), vInt32(0), vInt32(0)},
		"bits", 64,
		"debug", false,
		"maxBsonObjectSize", maxBSONSize,
		"storageEngines", []string{"inMemory"},
		"ok", 1.0,
	), nil
}

func cmdGetParameter(x *cmdCtx) (*Doc, error) {
	d := &Doc{}
	all := x.body.Get("getParameter").T == tString && x.body.Get("getParameter").str() == "*"
	if all || x.body.Get("featureCompatibilityVersion").exists() {
		d.Append("featureCompatibilityVersion", vDoc(docOf("version", "8.0")))
	}
	if all || x.body.Get("transactionLifetimeLimitSeconds").exists() {
		d.Append("transactionLifetimeLimitSeconds", vInt32(60))
	}
	if all || x.body.Get("enableTestCommands").exists() {
		d.Append("enableTestCommands", vBool(true))
	}
	if all || x.body.Get("requireApiVersion").exists() {
		d.Append("requireApiVersion", vBool(false))
	}
	d.Append("ok", vDouble(1))
	return d, nil
}

func cmdStartSession(*cmdCtx) (*Doc, error) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return docOf("id", docOf("id", Val{T: tBinary, B: binPayload(4, id[:])}),
		"timeoutMinutes", sessionTimeoutMn, "ok", 1.0), nil
}

func binPayload(subtype byte, b []byte) []byte {
	out := make([]byte, 0, 5+len(b))
	n := len(b)
	out = append(out, byte(n), byte(n>>8), byte(n>>16), byte(n>>24), subtype)
	return append(out, b...)
}

func cmdServerStatus(x *cmdCtx) (*Doc, error) {
	host, _ := os.Hostname()
	x.s.connMu.Lock()
	nconn := len(x.s.conns)
	x.s.connMu.Unlock()
	first, last, n := x.s.oplog.stats()
	ft, fi := splitTS(first)
	lt, li := splitTS(last)
	return docOf(
		"host", host,
		"version", serverVersion,
		"process", "mongoemu",
		"pid", int64(os.Getpid()),
		"uptime", float64(time.Since(x.s.started).Seconds()),
		"uptimeMillis", time.Since(x.s.started).Milliseconds(),
		"localTime", vDate(x.s.oplog.now().UnixMilli()),
		"connections", docOf("current", nconn, "available", 1000000, "totalCreated", x.s.connID.Load()),
		"repl", docOf("setName", x.s.opts.ReplicaSet, "isWritablePrimary", true, "primary", x.s.host, "me", x.s.host),
		"oplog", docOf("earliestOptime", vTS(ft, fi), "latestOptime", vTS(lt, li), "entries", n),
		"ok", 1.0,
	), nil
}

func cmdReplSetGetStatus(x *cmdCtx) (*Doc, error) {
	ts := x.s.oplog.lastTS()
	t, i := splitTS(ts)
	opTime := docOf("ts", vTS(t, i), "t", int64(1))
	member := docOf(
		"_id", 0,
		"name", x.s.host,
		"health", 1.0,
		"state", 1,
		"stateStr", "PRIMARY",
		"uptime", int(time.Since(x.s.started).Seconds()),
		"optime", opTime,
		"optimeDate", vDate(int64(t)*1000),
		"self", true,
	)
	return docOf(
		"set", x.s.opts.ReplicaSet,
		"date", vDate(nowMS()),
		"myState", 1,
		"term", int64(1),
		"heartbeatIntervalMillis", int64(2000),
		"optimes", docOf("lastCommittedOpTime", opTime, "appliedOpTime", opTime.clone(), "durableOpTime", opTime.clone()),
		"members", []Val{vDoc(member)},
		"ok", 1.0,
	), nil
}

func cmdHostInfo(*cmdCtx) (*Doc, error) {
	host, _ := os.Hostname()
	return docOf("system", docOf("hostname", host, "cpuAddrSize", 64), "os", docOf("type", "Linux"), "ok", 1.0), nil
}

func cmdGetCmdLineOpts(x *cmdCtx) (*Doc, error) {
	return docOf("argv", []string{"mongoemu"}, "parsed", docOf("replication", docOf("replSet", x.s.opts.ReplicaSet)), "ok", 1.0), nil
}

func cmdGetLog(*cmdCtx) (*Doc, error) {
	return docOf("totalLinesWritten", 0, "log", []Val{}, "ok", 1.0), nil
}

func cmdConnectionStatus(*cmdCtx) (*Doc, error) {
	return docOf("authInfo", docOf("authenticatedUsers", []Val{}, "authenticatedUserRoles", []Val{}), "ok", 1.0), nil
}

func cmdWhatsMyURI(x *cmdCtx) (*Doc, error) {
	return docOf("you", x.c.nc.RemoteAddr().String(), "ok", 1.0), nil
}

func cmdGetDefaultRWConcern(*cmdCtx) (*Doc, error) {
	return docOf("defaultReadConcern", docOf("level", "local"),
		"defaultWriteConcern", docOf("w", "majority", "wtimeout", 0),
		"defaultReadConcernSource", "implicit", "defaultWriteConcernSource", "implicit", "ok", 1.0), nil
}

func cmdListCommands(*cmdCtx) (*Doc, error) {
	cmds := &Doc{}
	for name := range commands {
		cmds.Append(name, vDoc(docOf("help", "")))
	}
	return docOf("commands", cmds, "ok", 1.0), nil
}
