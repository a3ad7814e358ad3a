package replicator

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/sink"
)

// UnresolvedDeadLetters counts the unresolved dead letters of each of
// collections (replicator.dead_letters rows without resolved_at, every
// stage); a collection without any maps to 0.
func UnresolvedDeadLetters(ctx context.Context, q sink.Querier, collections []string) (map[string]int64, error) {
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
