package sink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mongopg/replicator/checkpoints"
)

// HaltError reports that one collection stopped applying. Other
// collections go on; Run returns once every collection has halted.
type HaltError struct {
	Collection string
	// Seq is the stream sequence of the message the collection stopped
	// at (0 when not tied to one message).
	Seq  uint64
	Err  error
	Hint string // what the operator can do
}

func (e *HaltError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "collection %s halted", e.Collection)
	if e.Seq != 0 {
		fmt.Fprintf(&b, " at buffer sequence %d", e.Seq)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *HaltError) Unwrap() error { return e.Err }

var (
	// errCheckpointMoved: the checkpoint row no longer holds the position
	// this applier last committed (a commit whose outcome was lost, or an
	// operator's replay). The position is re-read before the next attempt.
	// The guarded checkpoint writes return it (package checkpoints).
	errCheckpointMoved = checkpoints.ErrMoved
	// errEpochChanged: an operator moved the checkpoint; delivery restarts
	// from the new position.
	errEpochChanged = errors.New("apply checkpoint was reset")
)

// freshError is a failure of the direct COPY of new keys (fresh.go); the
// batch is retried through the guarded merge before anything is split.
type freshError struct{ err error }

func (e *freshError) Error() string { return e.err.Error() }
func (e *freshError) Unwrap() error { return e.err }

// errClass says how the applier reacts to a failed batch.
type errClass int

const (
	// classRetry: transient; retry the same batch after a backoff.
	classRetry errClass = iota
	// classEvent: some event in the batch is at fault; split the batch to
	// isolate it.
	classEvent
	// classFatal: the collection cannot apply anything (missing table,
	// privileges, a mapping that does not fit the schema); halt it.
	classFatal
)

// retryReasons are the reason labels classify gives retries.
var retryReasons = []string{"connection", "serialization", "deadlock", "shutdown", "read_only", "resources", "timeout"}

// classify maps an apply error to its class and, for retries, a bounded
// reason label: a PostgreSQL error by its SQLSTATE (sqlstateClass). Errors
// that are not PostgreSQL errors come from the connection (refused, reset,
// closed, timed out) and are retried.
func classify(err error) (errClass, string) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		if errors.Is(err, context.DeadlineExceeded) {
			return classRetry, "timeout"
		}
		return classRetry, "connection"
	}
	return sqlstateClass(pgErr.Code)
}

// Retryable reports whether err carries a PostgreSQL error whose SQLSTATE
// is transient (sqlstateClass says retry): the transaction it rolled back
// may simply run again. It is false for an error without a SQLSTATE;
// whether such a failure (a lost connection, a timeout) is transient is
// the caller's call. The snapshot decides its PostgreSQL errors with it
// (replicator/snapshot, retryable), so both retry the same SQLSTATEs.
func Retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	class, _ := sqlstateClass(pgErr.Code)
	return class == classRetry
}

// EventError reports whether err carries a PostgreSQL error whose SQLSTATE
// puts the fault on one event's values (sqlstateClass says event: class
// 22, 23 or 54). The applier isolates such an event by splitting its batch
// (apply.go, apply); the snapshot isolates such a document by splitting its
// chunk (replicator/snapshot, isolate.go), so both isolate the same
// SQLSTATEs. A row-level security violation of the Guard's writes under a
// tenant setting is one too (tenantViolation), as in the applier.
func EventError(err error) bool {
	var tv tenantViolation
	if errors.As(err, &tv) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	class, _ := sqlstateClass(pgErr.Code)
	return class == classEvent
}

// sqlstateClass is the one table of PostgreSQL SQLSTATEs (the applier's
// classify, the snapshot's retries through Retryable and its isolation
// through EventError): the class and, for retries, the reason label.
//
//	retry: 40001 serialization_failure, 40P01 deadlock_detected,
//	       40000 transaction_rollback and 40003 statement_completion_unknown
//	       (the applier's checkpoint guard, the snapshot's chunk mark tell
//	       whether it committed),
//	       57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now,
//	       25006 read_only_sql_transaction (a standby, typically during a failover),
//	       class 08 connection exception,
//	       class 53 insufficient resources (disk full, too many connections),
//	       55P03 lock_not_available, 57014 query_canceled (statement timeout)
//	event: class 22 data exception, 23 integrity constraint violation,
//	       54 program limit exceeded (one event's values are at fault)
//	fatal: everything else (undefined table or column, privileges, ...)
func sqlstateClass(code string) (errClass, string) {
	switch {
	case code == "40001":
		return classRetry, "serialization"
	case code == "40P01":
		return classRetry, "deadlock"
	case code == "40000", code == "40003":
		return classRetry, "connection"
	case code == "57P01", code == "57P02", code == "57P03":
		return classRetry, "shutdown"
	case code == "25006":
		return classRetry, "read_only"
	case strings.HasPrefix(code, "08"):
		return classRetry, "connection"
	case strings.HasPrefix(code, "53"):
		return classRetry, "resources"
	case code == "55P03", code == "57014":
		return classRetry, "timeout"
	case strings.HasPrefix(code, "22"), strings.HasPrefix(code, "23"), strings.HasPrefix(code, "54"):
		return classEvent, ""
	}
	return classFatal, ""
}

// backoff is exponential with jitter, capped.
type backoff struct {
	next, max time.Duration
}

const firstBackoff = 50 * time.Millisecond

func newBackoff(max time.Duration) *backoff { return &backoff{next: firstBackoff, max: max} }

// wait sleeps for the next delay or until ctx ends.
func (b *backoff) wait(ctx context.Context) error {
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(2*b.next, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (b *backoff) reset() { b.next = firstBackoff }

// tenantViolation is a row-level security violation of a write under a
// tenant setting (rls.go): one document's fault, typically a document that
// moved to another tenant, whose stored row the new tenant's policy hides.
type tenantViolation struct{ error }

func (e tenantViolation) Unwrap() error { return e.error }
