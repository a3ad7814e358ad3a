package sink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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
	errCheckpointMoved = errors.New("apply checkpoint moved")
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

// classify maps an apply error to its class and, for retries, a bounded
// reason label. Errors that are not PostgreSQL errors come from the
// connection (refused, reset, closed, timed out) and are retried.
func classify(err error) (errClass, string) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		if errors.Is(err, context.DeadlineExceeded) {
			return classRetry, "timeout"
		}
		return classRetry, "connection"
	}
	code := pgErr.Code
	switch {
	case code == "40001":
		return classRetry, "serialization"
	case code == "40P01":
		return classRetry, "deadlock"
	case code == "40000", code == "40003": // rolled back, or outcome unknown: the checkpoint guard tells
		return classRetry, "connection"
	case code == "57P01", code == "57P02", code == "57P03":
		return classRetry, "shutdown"
	case code == "25006": // read-only: a standby, typically during a failover
		return classRetry, "read_only"
	case strings.HasPrefix(code, "08"):
		return classRetry, "connection"
	case strings.HasPrefix(code, "53"): // insufficient resources: disk full, too many connections
		return classRetry, "resources"
	case code == "55P03", code == "57014": // lock not available, statement timeout
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
