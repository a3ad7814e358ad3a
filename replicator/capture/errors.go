package capture

import (
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// MongoDB error codes capture classifies.
const (
	codeChangeStreamFatal       = 280 // resume token not found (older servers)
	codeChangeStreamHistoryLost = 286
	codeInvalidResumeToken      = 260
	codeUnauthorized            = 13
	codeAuthenticationFailed    = 18
)

// ErrStopped is wrapped by every error that stops a stream on purpose and
// needs an operator (invariant 5). errors.As with *StopError gives details.
var ErrStopped = errors.New("capture stopped")

// StopError says why capture stopped and how to recover.
type StopError struct {
	// Collection is the affected namespace ("" for the whole source).
	Collection string
	// What happened, in words.
	Reason string
	// Recovery is the command that recovers.
	Recovery string
}

func (e *StopError) Error() string {
	s := "capture stopped"
	if e.Collection != "" {
		s += " for " + e.Collection
	}
	return fmt.Sprintf("%s: %s; to recover run: %s", s, e.Reason, e.Recovery)
}

func (e *StopError) Unwrap() error { return ErrStopped }

// historyLost reports whether err says the resume point is no longer in
// the oplog: ChangeStreamHistoryLost, or the ChangeStreamFatalError older
// servers return for it ("the resume point may no longer be in the oplog",
// "the resume token was not found"). Other fatal change-stream errors are
// not history loss and must not trigger a resync.
func historyLost(err error) bool {
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return false
	}
	if se.HasErrorCode(codeChangeStreamHistoryLost) {
		return true
	}
	if !se.HasErrorCode(codeChangeStreamFatal) {
		return false
	}
	msg := strings.ToLower(se.Error())
	return strings.Contains(msg, "no longer be in the oplog") || strings.Contains(msg, "resume token was not found")
}

// permanent reports whether reopening the stream cannot help.
func permanent(err error) bool {
	var se mongo.ServerError
	if errors.As(err, &se) {
		return se.HasErrorCode(codeInvalidResumeToken) || se.HasErrorCode(codeUnauthorized) ||
			se.HasErrorCode(codeAuthenticationFailed)
	}
	return false
}

func resyncAll() string { return "replicator resync --all" }

func resyncAllAfterOplogResize() string {
	return "enlarge the source's oplog (replSetResizeOplog) or speed up the copy, then replicator resync --all"
}

func resyncCollection(ns string) string { return "replicator resync --collection " + ns }
