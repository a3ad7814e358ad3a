package snapshot

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Plan splits coll into _id-range chunks of about chunkSize documents,
// exactly as a snapshot plans them (plan): each BSON type bracket of _id
// on its own, the chunks covering every document. Chunk.Filter selects a
// chunk's documents. replicator/verify reads collections in these ranges.
// It also returns the counted (or, for one chunk, estimated) documents.
func Plan(ctx context.Context, coll *mongo.Collection, chunkSize int) ([]Chunk, int64, error) {
	return plan(ctx, coll, chunkSize)
}
