package verify

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/sink"
)

// deadLetters maps a document key ({_id: …} as canonical Extended JSON)
// to the ids of its unresolved dead letters.
type deadLetters map[string][]int64

func (d deadLetters) ids(key string) []int64 { return d[key] }

// openDeadLetters reads the collection's unresolved dead letters. A target
// without the metadata schema has none. A dead letter of a sharded
// collection names its document by the whole documentKey (shard key
// fields too); it is indexed by its _id alone, as verify reads documents.
func openDeadLetters(ctx context.Context, q sink.Querier, ns string) (deadLetters, error) {
	dls, err := sink.OpenDeadLetters(ctx, q, ns, 0)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return deadLetters{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := deadLetters{}
	for _, d := range dls {
		key := idKey(d.DocumentKey)
		out[key] = append(out[key], d.ID)
	}
	return out, nil
}

// idKey returns {_id: …} of an Extended JSON documentKey as canonical
// Extended JSON, or key itself when it has no readable _id.
func idKey(key string) string {
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(key), true, &doc); err != nil {
		return key
	}
	id, err := doc.LookupErr("_id")
	if err != nil {
		return key
	}
	_, js, err := documentKey(id)
	if err != nil {
		return key
	}
	return js
}
