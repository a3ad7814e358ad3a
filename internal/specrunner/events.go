package specrunner

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// commandEvent is one observed command monitoring event.
type commandEvent struct {
	Type               string // commandStartedEvent, commandSucceededEvent, commandFailedEvent
	CommandName        string
	DatabaseName       string
	Command            bson.Raw // started only
	Reply              bson.Raw // succeeded only
	Failure            error    // failed only
	ServiceID          *bson.ObjectID
	ServerConnectionID *int64
}

// sensitiveCommands are the commands whose events are never observed
// (Command Logging and Monitoring spec, "Security"); hello and legacy
// hello are sensitive only when they carry speculativeAuthenticate.
var sensitiveCommands = map[string]bool{
	"authenticate": true, "saslstart": true, "saslcontinue": true, "getnonce": true,
	"createuser": true, "updateuser": true, "copydbgetnonce": true, "copydbsaslstart": true, "copydb": true,
}

func isSensitive(name string, cmd bson.Raw) bool {
	name = strings.ToLower(name)
	if sensitiveCommands[name] {
		return true
	}
	if name == "hello" || name == "ismaster" {
		// The driver redacts sensitive hellos to an empty document.
		if len(cmd) <= 5 {
			return true
		}
		if _, err := cmd.LookupErr("speculativeAuthenticate"); err == nil {
			return true
		}
	}
	return false
}

func (c *clientEntity) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if !c.observeSensitive && isSensitive(e.CommandName, e.Command) {
				c.sensitiveReqs[e.RequestID] = true
				return
			}
			c.record(commandEvent{
				Type: "commandStartedEvent", CommandName: e.CommandName, DatabaseName: e.DatabaseName,
				Command: cloneRaw(e.Command), ServiceID: e.ServiceID, ServerConnectionID: e.ServerConnectionID,
			})
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.sensitiveReqs[e.RequestID] {
				delete(c.sensitiveReqs, e.RequestID)
				return
			}
			c.record(commandEvent{
				Type: "commandSucceededEvent", CommandName: e.CommandName, DatabaseName: e.DatabaseName,
				Reply: cloneRaw(e.Reply), ServiceID: e.ServiceID, ServerConnectionID: e.ServerConnectionID,
			})
		},
		Failed: func(_ context.Context, e *event.CommandFailedEvent) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.sensitiveReqs[e.RequestID] {
				delete(c.sensitiveReqs, e.RequestID)
				return
			}
			c.record(commandEvent{
				Type: "commandFailedEvent", CommandName: e.CommandName, DatabaseName: e.DatabaseName,
				Failure: e.Failure, ServiceID: e.ServiceID, ServerConnectionID: e.ServerConnectionID,
			})
		},
	}
}

// record appends ev if the client is listening and observes it. The
// caller holds c.mu.
func (c *clientEntity) record(ev commandEvent) {
	if !c.listening || !c.observe[ev.Type] {
		return
	}
	name := strings.ToLower(ev.CommandName)
	// configureFailPoint is run by failPoint operations and never observed.
	if c.ignore[name] || name == "configurefailpoint" {
		return
	}
	c.events = append(c.events, ev)
}

func (c *clientEntity) setListening(on bool) {
	c.mu.Lock()
	c.listening = on
	c.mu.Unlock()
}

func (c *clientEntity) observed() []commandEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]commandEvent(nil), c.events...)
}

func cloneRaw(r bson.Raw) bson.Raw {
	if r == nil {
		return nil
	}
	return append(bson.Raw(nil), r...)
}

// verifyEvents checks one expectedEventsForClient object.
func verifyEvents(e *entities, exp ExpectedEvents) error {
	if exp.EventType != "" && exp.EventType != "command" {
		return fmt.Errorf("expectEvents eventType %q is not supported by this runner", exp.EventType)
	}
	c, err := e.client(exp.Client)
	if err != nil {
		return fmt.Errorf("expectEvents: %w", err)
	}
	actual := c.observed()
	if len(actual) < len(exp.Events) || (!exp.IgnoreExtraEvents && len(actual) != len(exp.Events)) {
		return fmt.Errorf("client %s: expected %d events%s, observed %d:\n%s", exp.Client, len(exp.Events),
			map[bool]string{true: " (or more)"}[exp.IgnoreExtraEvents], len(actual), formatEvents(actual))
	}
	m := matcher{entities: e}
	for i, want := range exp.Events {
		if err := matchEvent(m, want, actual[i]); err != nil {
			return fmt.Errorf("client %s: event %d: %w\nobserved events:\n%s", exp.Client, i, err, formatEvents(actual))
		}
	}
	return nil
}

func matchEvent(m matcher, want bson.Raw, got commandEvent) error {
	elems, err := want.Elements()
	if err != nil || len(elems) != 1 {
		return fmt.Errorf("expected event must have exactly one key")
	}
	typ := elems[0].Key()
	body, ok := elems[0].Value().DocumentOK()
	if !ok {
		return fmt.Errorf("expected %s is not a document", typ)
	}
	var allowed []string
	switch typ {
	case "commandStartedEvent":
		allowed = []string{"command", "commandName", "databaseName", "hasServiceId", "hasServerConnectionId"}
	case "commandSucceededEvent":
		allowed = []string{"reply", "commandName", "databaseName", "hasServiceId", "hasServerConnectionId"}
	case "commandFailedEvent":
		allowed = []string{"commandName", "databaseName", "hasServiceId", "hasServerConnectionId"}
	default:
		return fmt.Errorf("expected event type %q is not supported by this runner", typ)
	}
	if err := checkKeys(body, typ, allowed); err != nil {
		return err
	}
	if got.Type != typ {
		return fmt.Errorf("expected %s, observed %s (%s)", typ, got.Type, got.CommandName)
	}
	if v, ok := body.Lookup("commandName").StringValueOK(); ok && v != got.CommandName {
		return fmt.Errorf("commandName: expected %q, observed %q", v, got.CommandName)
	}
	if v, ok := body.Lookup("databaseName").StringValueOK(); ok && v != got.DatabaseName {
		return fmt.Errorf("databaseName: expected %q, observed %q", v, got.DatabaseName)
	}
	if v, err := body.LookupErr("command"); err == nil {
		if err := m.match("command", v, docValue(got.Command), true); err != nil {
			return fmt.Errorf("%s %s: %w", typ, got.CommandName, err)
		}
	}
	if v, err := body.LookupErr("reply"); err == nil {
		if err := m.match("reply", v, docValue(got.Reply), true); err != nil {
			return fmt.Errorf("%s %s: %w", typ, got.CommandName, err)
		}
	}
	if b, ok := body.Lookup("hasServiceId").BooleanOK(); ok {
		has := got.ServiceID != nil && !got.ServiceID.IsZero()
		if has != b {
			return fmt.Errorf("hasServiceId: expected %v, observed %v", b, has)
		}
	}
	if b, ok := body.Lookup("hasServerConnectionId").BooleanOK(); ok {
		has := got.ServerConnectionID != nil && *got.ServerConnectionID > 0
		if has != b {
			return fmt.Errorf("hasServerConnectionId: expected %v, observed %v", b, has)
		}
	}
	return nil
}

func formatEvents(evs []commandEvent) string {
	var b strings.Builder
	for i, ev := range evs {
		fmt.Fprintf(&b, "  [%d] %s %s db=%s", i, ev.Type, ev.CommandName, ev.DatabaseName)
		switch {
		case ev.Command != nil:
			fmt.Fprintf(&b, " %s", relaxedDoc(ev.Command))
		case ev.Failure != nil:
			fmt.Fprintf(&b, " failure=%v", ev.Failure)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func relaxedDoc(d bson.Raw) string {
	out, err := bson.MarshalExtJSON(d, false, false)
	if err != nil {
		return d.String()
	}
	return string(out)
}
