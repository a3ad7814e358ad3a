package snapshot

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/sink"
)

// retryable reports whether a chunk that failed with err may simply be
// copied again: its transaction rolled back, so nothing of it is stored.
// A PostgreSQL error is decided by its SQLSTATE in the sink's table
// (sink.Retryable), so the snapshot retries exactly what the applier
// retries (a deadlock with a concurrent streaming batch, for one); the
// checks after it are for failures without a SQLSTATE: the connection to
// PostgreSQL, MongoDB and the network.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return sink.Retryable(err)
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) && (se.HasErrorLabel("RetryableReadError") || se.HasErrorLabel("ResumableChangeStreamError")) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// pgDetail is the DETAIL of a PostgreSQL error ("" for other errors), which
// for a deadlock names the waiting processes.
func pgDetail(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Detail
	}
	return ""
}

// foreignKey reports whether err is a foreign-key violation (SQLSTATE
// 23503), which a snapshot may cause by its load order: a chunk of a child
// collection copied before the chunk of its parent collection that holds
// the referenced rows. Such a chunk is deferred and retried (snapshot.go,
// retryDeferred) before anything is dead-lettered for it.
func foreignKey(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// errDeferred means a chunk failed on a foreign key while the run may still
// write the referenced rows: its transaction rolled back, and it is copied
// again once the other chunks have been (Snapshot.Run).
var errDeferred = errors.New("chunk deferred: a foreign key's referenced row is missing")

// HaltError reports that one collection's snapshot or resync stopped at a
// document, because the collection says on_error: halt and the document
// cannot be transformed or written. Nothing of the chunk holding it
// committed; the collection's other chunks are not copied, and its run
// stays unfinished, so running it again resumes there. Other collections
// go on (Snapshot.Run), and `replicator run` keeps running
// (Coordinator.Run).
type HaltError struct {
	Collection string
	Kind       string // KindSnapshot or KindResync
	// DocumentKey is the document's key as canonical extended JSON.
	DocumentKey string
	Err         error
}

func (e *HaltError) Error() string {
	again := "restart `replicator run` or run `replicator snapshot` again"
	if e.Kind == KindResync {
		again = "run `replicator resync --collection " + e.Collection + "` again (or restart `replicator run`)"
	}
	return fmt.Sprintf("%s of %s halted at document %s: %v; on_error is halt: fix the document in MongoDB or the "+
		"target table (or set on_error: dead_letter), then %s: it resumes with the chunks not done",
		e.Kind, e.Collection, e.DocumentKey, e.Err, again)
}

func (e *HaltError) Unwrap() error { return e.Err }

// onlyHalts reports whether err is one *HaltError or a join of them only.
func onlyHalts(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyHalts(e) {
				return false
			}
		}
		return len(j.Unwrap()) > 0
	}
	_, ok := err.(*HaltError)
	return ok
}

// sqlstate is the SQLSTATE of a PostgreSQL error ("" for other errors).
func sqlstate(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
