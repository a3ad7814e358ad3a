package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
