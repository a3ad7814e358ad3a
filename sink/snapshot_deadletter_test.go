package sink

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/transform"
)

// EventError follows the SQLSTATE table: exactly the codes classify
// isolates as one event's fault, never an error without a SQLSTATE.
func TestClassifyEventError(t *testing.T) {
	for _, code := range []string{"22P02", "22001", "23503", "23505", "23514", "54000",
		"40001", "40P01", "08006", "53300", "57014", "42P01", "42703", "XX000"} {
		err := fmt.Errorf("merge: %w", &pgconn.PgError{Code: code})
		class, _ := classify(err)
		if got := EventError(err); got != (class == classEvent) {
			t.Errorf("%s: EventError %v, classify says class %d", code, got, class)
		}
	}
	if EventError(errors.New("connection refused")) || EventError(nil) {
		t.Error("EventError is true for an error without a SQLSTATE")
	}
}

// A snapshot's apply dead letter: stage apply, reason snapshot, the
// message with PostgreSQL's detail, the SQLSTATE, table.column as the
// field path when PostgreSQL names a column, no stream sequence, the
// snapshot's cluster time. An unresolved twin (the same document failing
// the same way, at another T0) is not written again; once resolved, it is.
func TestWriteSnapshotApplyDeadLetter(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Postgres(t)
	if err := schemas.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	cause := fmt.Errorf("merge: %w", &pgconn.PgError{Severity: "ERROR", Code: "23502", Message: `null value in column "n" violates not-null constraint`,
		Detail: "Failing row contains (1, null).", TableName: "items", ColumnName: "n"})
	doc := []byte(`{"_id": "a", "n": null}`)
	write := func(t0 uint32) {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteSnapshotApplyDeadLetter(ctx, tx, "shop.items", `{"_id":"a"}`, cause, doc, nil, transform.ClusterTime{T: t0, I: 3}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	write(1700000000)
	var (
		stage, reason, msg, path, sqlstate, key string
		noSeq                                   bool
		ts, inc                                 int64
	)
	if err := pool.QueryRow(ctx, `SELECT stage, reason, error, field_path, sqlstate, document_key, stream_seq IS NULL, cluster_ts, cluster_inc
FROM replicator.dead_letters`).Scan(&stage, &reason, &msg, &path, &sqlstate, &key, &noSeq, &ts, &inc); err != nil {
		t.Fatal(err)
	}
	wantMsg := `ERROR: null value in column "n" violates not-null constraint (SQLSTATE 23502): Failing row contains (1, null).`
	if stage != "apply" || reason != "snapshot" || msg != wantMsg || path != "items.n" || sqlstate != "23502" || key != `{"_id":"a"}` {
		t.Errorf("stage %q reason %q error %q field_path %q sqlstate %q document_key %q", stage, reason, msg, path, sqlstate, key)
	}
	if !noSeq || ts != 1700000000 || inc != 3 {
		t.Errorf("stream_seq NULL %v, cluster time %d.%d", noSeq, ts, inc)
	}
	write(1700000100) // a later resync meets the same document
	count := func() (n int) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM replicator.dead_letters`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("%d dead letters after the same document failed again, want 1", n)
	}
	if err := ResolveDeadLetter(ctx, pool, 1, "fixed"); err != nil {
		t.Fatal(err)
	}
	write(1700000200)
	if n := count(); n != 2 {
		t.Fatalf("%d dead letters after the resolved one failed again, want 2", n)
	}
}
