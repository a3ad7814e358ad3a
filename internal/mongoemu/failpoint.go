package mongoemu

import (
	"sync"
	"time"
)

// failpoints implements configureFailPoint for "failCommand" (as in
// MongoDB's test commands) and "failGetMoreAfterCursorCheckout".
type failpoints struct {
	mu     sync.Mutex
	byName map[string]*failpoint
}

type failpoint struct {
	name   string
	always bool
	times  int // remaining activations when !always
	skip   int // activations to skip first

	commands        map[string]bool
	errorCode       int32
	hasErrorCode    bool
	errorLabels     []string
	hasErrorLabels  bool
	closeConnection bool
	blockConnection bool
	blockTime       time.Duration
	writeConcernErr *Doc
	appName         string
}

func newFailpoints() *failpoints { return &failpoints{byName: map[string]*failpoint{}} }

func cmdConfigureFailPoint(x *cmdCtx) (*Doc, error) {
	if x.db != "admin" {
		return nil, newErr(13, "configureFailPoint may only be run against the admin database.")
	}
	name := x.body.Get("configureFailPoint").str()
	switch name {
	case "failCommand", "failGetMoreAfterCursorCheckout":
	default:
		return nil, errBadValue("Cannot find failpoint: %s", name)
	}
	fp := &failpoint{name: name, commands: map[string]bool{}}
	mode := x.body.Get("mode")
	switch {
	case mode.T == tString && mode.str() == "off":
		x.s.fail.mu.Lock()
		delete(x.s.fail.byName, name)
		x.s.fail.mu.Unlock()
		return docOf("count", 0, "ok", 1.0), nil
	case mode.T == tString && mode.str() == "alwaysOn":
		fp.always = true
	case mode.T == tDoc && mode.field("times").exists():
		n, _ := mode.field("times").asInt64()
		fp.times = int(n)
	case mode.T == tDoc && mode.field("skip").exists():
		n, _ := mode.field("skip").asInt64()
		fp.skip, fp.always = int(n), true
	case mode.T == tDoc && mode.field("activationProbability").exists():
		fp.always = true
	default:
		return nil, errBadValue("'mode' must be one of 'off', 'alwaysOn', 'times', and 'skip'")
	}
	data := x.body.Get("data")
	for _, c := range data.field("failCommands").elems() {
		fp.commands[c.str()] = true
	}
	if name == "failGetMoreAfterCursorCheckout" {
		fp.commands["getMore"] = true
	}
	if v := data.field("errorCode"); v.exists() {
		n, _ := v.asInt64()
		fp.errorCode, fp.hasErrorCode = int32(n), true
	}
	if v := data.field("errorLabels"); v.T == tArray {
		fp.hasErrorLabels = true
		fp.errorLabels = []string{}
		for _, l := range v.elems() {
			fp.errorLabels = append(fp.errorLabels, l.str())
		}
	}
	fp.closeConnection = data.field("closeConnection").truthy()
	fp.blockConnection = data.field("blockConnection").truthy()
	if ms, ok := data.field("blockTimeMS").asInt64(); ok {
		fp.blockTime = time.Duration(ms) * time.Millisecond
	}
	if w := data.field("writeConcernError"); w.T == tDoc {
		fp.writeConcernErr = w.doc()
	}
	fp.appName = data.field("appName").str()
	x.s.fail.mu.Lock()
	x.s.fail.byName[name] = fp
	x.s.fail.mu.Unlock()
	return docOf("count", 0, "ok", 1.0), nil
}

// check returns the failpoint that fires for this command, consuming one
// activation, or nil.
func (f *failpoints) check(x *cmdCtx) *failpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.byName) == 0 {
		return nil
	}
	for name, fp := range f.byName {
		if !fp.commands[x.name] || x.name == "configureFailPoint" {
			continue
		}
		if name == "failGetMoreAfterCursorCheckout" {
			id, _ := x.body.Get("getMore").asInt64()
			if x.s.cursors.get(id) == nil {
				continue
			}
		}
		if fp.appName != "" && fp.appName != x.c.appName {
			continue
		}
		if fp.skip > 0 {
			fp.skip--
			continue
		}
		if !fp.always {
			if fp.times <= 0 {
				delete(f.byName, name)
				continue
			}
			fp.times--
			if fp.times == 0 {
				delete(f.byName, name)
			}
		}
		return fp
	}
	return nil
}

// apply executes the failpoint; handled is false when the command should
// run normally (block only).
func (fp *failpoint) apply(x *cmdCtx, h handler) (*Doc, error, bool) {
	if fp.blockConnection && fp.blockTime > 0 {
		t := time.NewTimer(fp.blockTime)
		select {
		case <-t.C:
		case <-x.s.done:
			t.Stop()
			return nil, errCloseConn, true
		}
	}
	if fp.closeConnection {
		return nil, errCloseConn, true
	}
	if fp.hasErrorCode {
		ce := &cmdError{Code: fp.errorCode, Msg: "Failing command via '" + fp.name + "' failpoint"}
		if fp.name == "failGetMoreAfterCursorCheckout" {
			ce.Msg = "Failing command due to 'failGetMoreAfterCursorCheckout' failpoint"
			if resumableChangeStreamCodes[fp.errorCode] {
				if _, ok := x.s.cursors.get(intArg(x.body, "getMore", 0)).(*changeStream); ok {
					ce.Labels = []string{"ResumableChangeStreamError"}
				}
			}
		}
		if fp.hasErrorLabels {
			ce.Labels = fp.errorLabels
		}
		return nil, ce, true
	}
	if fp.writeConcernErr != nil {
		if err := x.s.sessions.attach(x); err != nil {
			return nil, err, true
		}
		reply, err := h(x)
		if err != nil {
			return nil, err, true
		}
		reply.Append("writeConcernError", vDoc(fp.writeConcernErr))
		return reply, nil, true
	}
	return nil, nil, false
}
