package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mongopg/replicator/transform"
)

// DeadLetter is one row of replicator.dead_letters: an event that could
// not be decoded, transformed or applied, kept with its raw form and error.
type DeadLetter struct {
	ID         int64
	Collection string
	// Stage is decode, transform or apply.
	Stage  string
	Reason string
	Error  string
	// FieldPath, SQLState and DocumentKey are empty when unknown.
	FieldPath   string
	SQLState    string
	DocumentKey string
	// RawEvent is the source event (transform stage) or the buffer
	// envelope, as JSON; RawBytes holds it when it is not valid JSON.
	RawEvent   []byte
	RawBytes   []byte
	StreamSeq  uint64
	CreatedAt  time.Time
	ResolvedAt time.Time // zero while unresolved
	Note       string
}

// Querier runs queries; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// DeadLetterFilter selects dead letters for ListDeadLetters.
type DeadLetterFilter struct {
	Collection string // "" for all
	Resolved   bool   // include resolved ones
	Limit      int    // 0: 100
}

// ErrNoDeadLetter: no dead letter has that id.
var ErrNoDeadLetter = errors.New("no such dead letter")

const deadLetterCols = `id, collection, stage, reason, error, coalesce(field_path, ''), coalesce(sqlstate, ''),
coalesce(document_key, ''), raw_event::text, raw_bytes, coalesce(stream_seq, 0), created_at, resolved_at, coalesce(resolved_note, '')`

func scanDeadLetter(r pgx.Row) (DeadLetter, error) {
	var (
		d        DeadLetter
		raw      *string
		seq      int64
		resolved *time.Time
	)
	if err := r.Scan(&d.ID, &d.Collection, &d.Stage, &d.Reason, &d.Error, &d.FieldPath, &d.SQLState, &d.DocumentKey,
		&raw, &d.RawBytes, &seq, &d.CreatedAt, &resolved, &d.Note); err != nil {
		return DeadLetter{}, err
	}
	if raw != nil {
		d.RawEvent = []byte(*raw)
	}
	d.StreamSeq = uint64(seq)
	if resolved != nil {
		d.ResolvedAt = *resolved
	}
	return d, nil
}

// ListDeadLetters returns dead letters, oldest first.
func ListDeadLetters(ctx context.Context, q Querier, f DeadLetterFilter) ([]DeadLetter, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := q.Query(ctx, `SELECT `+deadLetterCols+` FROM replicator.dead_letters
WHERE ($1 = '' OR collection = $1) AND ($2 OR resolved_at IS NULL) ORDER BY id LIMIT $3`, f.Collection, f.Resolved, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) { return scanDeadLetter(r) })
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// GetDeadLetter returns one dead letter or ErrNoDeadLetter.
func GetDeadLetter(ctx context.Context, q Querier, id int64) (DeadLetter, error) {
	d, err := scanDeadLetter(q.QueryRow(ctx, `SELECT `+deadLetterCols+` FROM replicator.dead_letters WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, ErrNoDeadLetter)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, err)
	}
	return d, nil
}

// ResolveDeadLetter marks a dead letter resolved with a note; resolved
// dead letters no longer count toward dead_letter_threshold. Resolving it
// again only updates the note.
func ResolveDeadLetter(ctx context.Context, q Querier, id int64, note string) error {
	tag, err := q.Exec(ctx, `UPDATE replicator.dead_letters SET resolved_at = coalesce(resolved_at, now()), resolved_note = $2 WHERE id = $1`, id, note)
	if err != nil {
		return fmt.Errorf("resolve dead letter %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("resolve dead letter %d: %w", id, ErrNoDeadLetter)
	}
	return nil
}

// insertUnlessTwin writes a dead letter to replicator.dead_letters unless
// an unresolved twin exists: a dead letter of the same collection, stage,
// reason, error, document key and raw event or bytes, and, for an event
// from the buffer, of the same cluster time. Its arguments come from
// deadLetter.args. The two statements below close its condition.
const insertUnlessTwin = `INSERT INTO replicator.dead_letters
(collection, stage, reason, error, field_path, sqlstate, document_key, raw_event, raw_bytes, stream_seq, cluster_ts, cluster_inc)
SELECT $1::text, $2::text, $3::text, $4::text, nullif($5::text, ''), nullif($6::text, ''), nullif($7::text, ''), $8::jsonb,
  $9::bytea, $10::bigint, $11::bigint, $12::bigint
WHERE NOT EXISTS (SELECT 1 FROM replicator.dead_letters
  WHERE collection = $1 AND resolved_at IS NULL AND stage = $2 AND reason = $3 AND error = $4
    AND document_key IS NOT DISTINCT FROM nullif($7, '') AND raw_event IS NOT DISTINCT FROM $8::jsonb
    AND raw_bytes IS NOT DISTINCT FROM $9`

// insertEventDeadLetter writes the dead letter of an event from the buffer;
// the applier queues it in its batch (apply.go, queueRecords). It writes
// nothing when an unresolved dead letter of the same event already exists
// (insertUnlessTwin, with the cluster time): the raw event or bytes of a
// decoded event hold its envelope with its ordinal (and for a transform
// dead letter the change event with its resume token), so only the same
// event matches. The same event reaches the applier again after a replay,
// after a crash in the middle of isolating a failing event, and after a
// capture restart that cut its batch messages elsewhere (stored under a
// new sequence); its dead letter is recorded, and counted toward
// dead_letter_threshold, once. A resolved dead letter does not match: an
// event that fails again after its dead letter was resolved is recorded
// again. The lookup goes through the index of unresolved dead letters by
// collection and cluster time (migration 0040); an event's cluster time is
// never NULL (0 for one that did not decode).
const insertEventDeadLetter = insertUnlessTwin + `
    AND cluster_ts = $11 AND cluster_inc = $12)`

// insertSnapshotDeadLetter writes a snapshot's dead letter in its chunk's
// transaction (WriteSnapshotDeadLetter, WriteSnapshotApplyDeadLetter),
// unless an unresolved twin exists whatever its cluster time: a later
// snapshot or resync meeting the same document failing the same way
// leaves the open one as it is.
const insertSnapshotDeadLetter = insertUnlessTwin + `)`

// reasonSnapshot is the reason of a document a snapshot or resync could
// not transform (stage transform) or write (stage apply).
const reasonSnapshot = "snapshot"

// args returns insertUnlessTwin's arguments for d in collection ns. seq is
// the stream_seq value: int64(d.seq) for an event from the buffer, nil
// (NULL) for one no buffer message carried. Text columns are made storable
// (clean); empty field path, SQLSTATE and document key are stored as NULL.
func (d *deadLetter) args(ns string, seq any) []any {
	var raw *string
	if d.rawEvent != nil {
		s := string(d.rawEvent)
		raw = &s
	}
	return []any{ns, d.stage, d.reason, clean(d.err), clean(d.path), d.sqlstate, clean(d.documentKey),
		raw, d.rawBytes, seq, int64(d.clusterTS), int64(d.clusterIn)}
}

// WriteSnapshotDeadLetter records, with q (the snapshot chunk's
// transaction, so the dead letter commits with the chunk and exactly
// once), a source document the mapping could not transform: stage
// transform, reason snapshot, te's collection, error, field path and
// document key, no stream sequence, and cluster time t0 (the snapshot's).
// rawEvent is the document as canonical extended JSON; when jsonb cannot
// hold that (it has \u0000), rawEvent is nil and rawBytes holds the BSON
// document.
//
// An unresolved dead letter identical but for its cluster time (same
// collection, stage, reason, error, document key and raw document) is not
// written again: a later snapshot or resync that meets the same document
// failing the same way leaves the open one as it is (writeSnapshot).
func WriteSnapshotDeadLetter(ctx context.Context, q Querier, te *transform.Error, rawEvent, rawBytes []byte, t0 transform.ClusterTime) error {
	d := deadLetter{stage: stageTransform, reason: reasonSnapshot, err: te.Err.Error(), path: te.Path,
		documentKey: te.DocumentKey, rawEvent: rawEvent, rawBytes: rawBytes, clusterTS: t0.T, clusterIn: t0.I}
	return d.writeSnapshot(ctx, q, te.Collection)
}

// WriteSnapshotApplyDeadLetter records, with q (the snapshot chunk's
// transaction, so the dead letter commits with the chunk and exactly
// once), a source document of collection whose rows PostgreSQL refused on
// their own (cause is an EventError: a CHECK, UNIQUE or foreign-key
// violation, a value out of range): stage apply, reason snapshot, the
// error's message (with PostgreSQL's DETAIL, which names the key), its
// SQLSTATE and, when PostgreSQL names one, its table.column as the field
// path; documentKey, no stream sequence, cluster time t0. rawEvent and
// rawBytes are as for WriteSnapshotDeadLetter, and so is the rule against
// writing an unresolved one twice.
func WriteSnapshotApplyDeadLetter(ctx context.Context, q Querier, collection, documentKey string, cause error,
	rawEvent, rawBytes []byte, t0 transform.ClusterTime) error {
	d := deadLetter{stage: stageApply, reason: reasonSnapshot, err: cause.Error(), documentKey: documentKey,
		rawEvent: rawEvent, rawBytes: rawBytes, clusterTS: t0.T, clusterIn: t0.I}
	var pgErr *pgconn.PgError
	if errors.As(cause, &pgErr) {
		d.err, d.sqlstate = pgErr.Error(), pgErr.Code
		if pgErr.Detail != "" {
			d.err += ": " + pgErr.Detail
		}
		if pgErr.TableName != "" && pgErr.ColumnName != "" {
			d.path = pgErr.TableName + "." + pgErr.ColumnName
		}
	}
	return d.writeSnapshot(ctx, q, collection)
}

// writeSnapshot writes d, a snapshot's dead letter of collection ns, with
// q (insertSnapshotDeadLetter).
func (d *deadLetter) writeSnapshot(ctx context.Context, q Querier, ns string) error {
	if _, err := q.Exec(ctx, insertSnapshotDeadLetter, d.args(ns, nil)...); err != nil {
		return fmt.Errorf("dead-letter %s: %w", d.documentKey, err)
	}
	return nil
}

// countUnresolved counts a collection's unresolved dead letters, the ones
// dead_letter_threshold counts.
const countUnresolved = `SELECT count(*) FROM replicator.dead_letters WHERE collection = $1 AND resolved_at IS NULL`

// queueUnresolved queues into b the count of collection ns's unresolved
// dead letters; *n holds it once b ran. The applier queues it after a
// batch's new dead letters, in the batch's transaction (apply.go, commit),
// and runs it alone when a session starts (consumer.go, checkThreshold).
func queueUnresolved(b *pgx.Batch, ns string, n *int) {
	b.Queue(countUnresolved, ns).QueryRow(func(r pgx.Row) error { return r.Scan(n) })
}

// thresholdHalt returns the halt for n unresolved dead letters when they
// reach the collection's dead_letter_threshold (never when it is 0), else
// nil. seq is the buffer sequence it halts at (0 when none).
func (c *collection) thresholdHalt(n int, seq uint64) error {
	limit := c.cfg.DeadLetterThreshold
	if limit <= 0 || n < limit {
		return nil
	}
	return &HaltError{Collection: c.cfg.Namespace, Seq: seq,
		Err:  fmt.Errorf("%d unresolved dead letters reach dead_letter_threshold %d", n, limit),
		Hint: "inspect them with `replicator dlq list`, resolve them with `replicator dlq resolve`, then restart"}
}

// UnresolvedDeadLetters counts the unresolved dead letters of each of
// collections (replicator.dead_letters rows without resolved_at, every
// stage); a collection without any maps to 0.
func UnresolvedDeadLetters(ctx context.Context, q Querier, collections []string) (map[string]int64, error) {
	out := make(map[string]int64, len(collections))
	for _, ns := range collections {
		out[ns] = 0
	}
	rows, err := q.Query(ctx, `SELECT collection, count(*) FROM replicator.dead_letters
WHERE resolved_at IS NULL AND collection = ANY($1) GROUP BY collection`, collections)
	if err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	type count struct {
		Collection string
		N          int64
	}
	counts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[count])
	if err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	for _, c := range counts {
		out[c.Collection] = c.N
	}
	return out, nil
}
