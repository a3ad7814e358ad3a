package snapshot

import (
	"context"
	"errors"
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
