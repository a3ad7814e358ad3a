package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// A chunk failing with a PostgreSQL error is retried exactly when the
// applier would retry that SQLSTATE (sink.Retryable owns the table).
func TestRetryablePostgresErrorsMatchSink(t *testing.T) {
	codes := []string{
		// retried by both
		"40001", "40P01", "40000", "40003", "57P01", "57P02", "57P03", "25006",
		"08000", "08006", "53100", "53300", "55P03", "57014",
		// an event's fault, or fatal: never retried
		"22P02", "23505", "54000", "42P01", "42501", "40002", "XX000",
	}
	for _, code := range codes {
		err := fmt.Errorf("snapshot chunk: %w", &pgconn.PgError{Code: code})
		if got, want := retryable(err), sink.Retryable(err); got != want {
			t.Errorf("%s: snapshot retries %v, sink %v", code, got, want)
		}
	}
	if retryable(fmt.Errorf("copy: %w", context.Canceled)) {
		t.Error("a canceled chunk is retried")
	}
	if !retryable(&net.OpError{Op: "read", Err: errors.New("connection reset")}) {
		t.Error("a network error is not retried")
	}
}

// A document the mapping cannot transform is dead-lettered with stage
// transform, reason snapshot, the snapshot's T0 and no stream sequence; its
// raw form is canonical extended JSON, or the BSON bytes when the JSON has
// \u0000 (jsonb refuses it).
func TestSnapshotDeadLetterRow(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Postgres(t)
	if err := schemas.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	t0 := transform.ClusterTime{T: 1700000000, I: 9}
	cases := []struct {
		name string
		doc  bson.D
		json bool
	}{
		{"json", bson.D{{Key: "_id", Value: int64(1)}, {Key: "n", Value: "x"}}, true},
		{"nul", bson.D{{Key: "_id", Value: int64(2)}, {Key: "n", Value: "a\x00b"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := bson.Marshal(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf(`{"_id":{"$numberLong":"%d"}}`, tc.doc[0].Value)
			te := &transform.Error{Collection: "db.c", DocumentKey: key, Path: "n", Err: errors.New("not a number")}
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := deadLetter(ctx, tx, te, doc, t0); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			var ext *string // the expected raw_event
			if tc.json {
				js, err := bson.MarshalExtJSON(bson.Raw(doc), true, false)
				if err != nil {
					t.Fatal(err)
				}
				s := string(js)
				ext = &s
			}
			var (
				stage, reason, msg, path, gotKey string
				jsonMatches, noSeq, noSQLState   bool
				hasJSON                          bool
				rawBytes                         []byte
				ts, inc                          int64
			)
			err = pool.QueryRow(ctx, `SELECT stage, reason, error, field_path, document_key, raw_event IS NOT NULL,
coalesce(raw_event = $2::jsonb, false), raw_bytes, stream_seq IS NULL, sqlstate IS NULL, cluster_ts, cluster_inc
FROM replicator.dead_letters WHERE document_key = $1`, key, ext).
				Scan(&stage, &reason, &msg, &path, &gotKey, &hasJSON, &jsonMatches, &rawBytes, &noSeq, &noSQLState, &ts, &inc)
			if err != nil {
				t.Fatal(err)
			}
			if stage != "transform" || reason != "snapshot" || msg != "not a number" || path != "n" || gotKey != key {
				t.Errorf("stage %q reason %q error %q field_path %q document_key %q", stage, reason, msg, path, gotKey)
			}
			if !noSeq || !noSQLState || ts != int64(t0.T) || inc != int64(t0.I) {
				t.Errorf("stream_seq NULL %v, sqlstate NULL %v, cluster time %d.%d", noSeq, noSQLState, ts, inc)
			}
			if tc.json && (!jsonMatches || rawBytes != nil) {
				t.Errorf("raw_event is the extended JSON: %v, raw_bytes %v", jsonMatches, rawBytes)
			}
			if !tc.json && (hasJSON || !bytes.Equal(rawBytes, doc)) {
				t.Errorf("raw_event set %v, raw_bytes %v, want the BSON document only", hasJSON, rawBytes)
			}
		})
	}
}
