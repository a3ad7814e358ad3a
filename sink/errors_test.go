package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// The SQLSTATE table (sqlstateClass), one row per entry: classify and
// Retryable both follow it.
func TestClassifySQLStateTable(t *testing.T) {
	cases := []struct {
		code   string
		want   errClass
		reason string
	}{
		{"40001", classRetry, "serialization"},
		{"40P01", classRetry, "deadlock"},
		{"40000", classRetry, "connection"},
		{"40003", classRetry, "connection"},
		{"57P01", classRetry, "shutdown"},
		{"57P02", classRetry, "shutdown"},
		{"57P03", classRetry, "shutdown"},
		{"25006", classRetry, "read_only"},
		{"08000", classRetry, "connection"},
		{"08006", classRetry, "connection"},
		{"53100", classRetry, "resources"},
		{"53300", classRetry, "resources"},
		{"55P03", classRetry, "timeout"},
		{"57014", classRetry, "timeout"},
		{"22P02", classEvent, ""},
		{"22001", classEvent, ""},
		{"23505", classEvent, ""},
		{"23514", classEvent, ""},
		{"54000", classEvent, ""},
		{"42P01", classFatal, ""},
		{"42703", classFatal, ""},
		{"42501", classFatal, ""},
		{"25P02", classFatal, ""},
		{"40002", classFatal, ""}, // class 40 beyond the listed codes
		{"XX000", classFatal, ""},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			err := fmt.Errorf("apply: %w", &pgconn.PgError{Code: tc.code})
			class, reason := classify(err)
			if class != tc.want || reason != tc.reason {
				t.Errorf("classify: class %d reason %q, want %d %q", class, reason, tc.want, tc.reason)
			}
			if got := Retryable(err); got != (tc.want == classRetry) {
				t.Errorf("Retryable %v, want %v", got, tc.want == classRetry)
			}
		})
	}
}

// Failures without a SQLSTATE are connection failures to the applier, and
// left to the caller by Retryable.
func TestRetryableWithoutSQLState(t *testing.T) {
	for _, err := range []error{io.ErrUnexpectedEOF, context.DeadlineExceeded, errors.New("connection refused")} {
		if class, _ := classify(err); class != classRetry {
			t.Errorf("classify(%v): class %d, want retry", err, class)
		}
		if Retryable(err) {
			t.Errorf("Retryable(%v) is true for an error without a SQLSTATE", err)
		}
	}
}
