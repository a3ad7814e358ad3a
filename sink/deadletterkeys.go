package sink

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// OpenDeadLetter is an unresolved dead letter of one document, as
// replicator/verify needs it: without the raw event.
type OpenDeadLetter struct {
	ID int64
	// Stage is decode, transform or apply.
	Stage string
	// DocumentKey is the documentKey as canonical Extended JSON.
	DocumentKey string
	Error       string
}

// OpenDeadLetters returns the unresolved dead letters of collection that
// name a document key, oldest first, at most limit of them (0: no limit).
func OpenDeadLetters(ctx context.Context, q Querier, collection string, limit int) ([]OpenDeadLetter, error) {
	sql := `SELECT id, stage, document_key, error FROM replicator.dead_letters
WHERE collection = $1 AND resolved_at IS NULL AND document_key IS NOT NULL ORDER BY id`
	args := []any{collection}
	if limit > 0 {
		sql += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters of %s: %w", collection, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OpenDeadLetter, error) {
		var d OpenDeadLetter
		err := r.Scan(&d.ID, &d.Stage, &d.DocumentKey, &d.Error)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters of %s: %w", collection, err)
	}
	return out, nil
}
