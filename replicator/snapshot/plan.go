package snapshot

import (
	"context"
	"fmt"
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// oversample is how many sampled _ids the planner draws per wanted chunk;
// more gives chunk sizes closer to the target.
const (
	oversample = 16
	maxSample  = 100_000
)

// plan splits a collection into chunks of about chunkSize documents.
//
// A collection at most chunkSize documents large (by the server's estimate)
// is one chunk with an empty filter. Otherwise each non-empty type bracket
// is counted, and a bracket larger than chunkSize is split at quantiles of a
// server-side $sample of its _ids, sorted by the server (so string
// collations and numeric type mixes order exactly as range queries do).
// Chunks cover every document whatever the bounds' accuracy: the first and
// last chunk of each bracket are open-ended.
func plan(ctx context.Context, coll *mongo.Collection, chunkSize int) ([]Chunk, int64, error) {
	est, err := coll.EstimatedDocumentCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("plan %s: estimate count: %w", coll.Name(), err)
	}
	if est <= int64(chunkSize) {
		return []Chunk{{ID: 0, Bracket: bracketAll, Estimated: est}}, est, nil
	}
	var chunks []Chunk
	var total int64
	for _, b := range brackets {
		n, err := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: b.typeFilter()}}}})
		if err != nil {
			return nil, 0, fmt.Errorf("plan %s: count %s _ids: %w", coll.Name(), b.name, err)
		}
		if n == 0 {
			continue
		}
		total += n
		k := int((n + int64(chunkSize) - 1) / int64(chunkSize))
		var splits []bson.RawValue
		if k > 1 && b.splittable {
			splits, err = sampleSplits(ctx, coll, b, n, k)
			if err != nil {
				return nil, 0, err
			}
		}
		per := n / int64(len(splits)+1)
		lower := bson.RawValue{}
		for _, s := range splits {
			chunks = append(chunks, Chunk{ID: len(chunks), Bracket: b.name, Lower: lower, Upper: s, Estimated: per})
			lower = s
		}
		chunks = append(chunks, Chunk{ID: len(chunks), Bracket: b.name, Lower: lower, Estimated: n - per*int64(len(splits))})
	}
	if len(chunks) == 0 {
		// Emptied between the estimate and the counts.
		chunks = []Chunk{{ID: 0, Bracket: bracketAll}}
	}
	return chunks, total, nil
}

// sampleSplits returns up to k-1 distinct split points for bracket b, in
// server sort order, never NaN.
func sampleSplits(ctx context.Context, coll *mongo.Collection, b bracket, n int64, k int) ([]bson.RawValue, error) {
	size := min(int64(k)*oversample, maxSample, n)
	pipeline := mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: b.typeFilter()}}}}}},
		{{Key: "$sample", Value: bson.D{{Key: "size", Value: size}}}},
		{{Key: "$project", Value: bson.D{{Key: "_id", Value: 1}}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
	}
	cur, err := coll.Aggregate(ctx, pipeline, options.Aggregate().SetAllowDiskUse(true))
	if err != nil {
		return nil, fmt.Errorf("plan %s: sample %s _ids: %w", coll.Name(), b.name, err)
	}
	defer cur.Close(ctx)
	var ids []bson.RawValue
	for cur.Next(ctx) {
		v, err := cur.Current.LookupErr("_id")
		if err != nil {
			return nil, fmt.Errorf("plan %s: sampled document without _id: %w", coll.Name(), err)
		}
		if isNaN(v) {
			continue
		}
		ids = append(ids, bson.RawValue{Type: v.Type, Value: append([]byte(nil), v.Value...)})
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("plan %s: sample %s _ids: %w", coll.Name(), b.name, err)
	}
	return quantiles(ids, k), nil
}

// quantiles picks k-1 evenly spaced values of sorted ids, skipping repeats.
func quantiles(ids []bson.RawValue, k int) []bson.RawValue {
	var out []bson.RawValue
	for i := 1; i < k; i++ {
		j := i * len(ids) / k
		if j == 0 || j >= len(ids) {
			continue
		}
		v := ids[j]
		if len(out) > 0 && out[len(out)-1].Equal(v) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// isNaN reports whether v is a floating-point or decimal NaN, which range
// operators never match and so cannot be a split point.
func isNaN(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeDouble:
		f, ok := v.DoubleOK()
		return ok && math.IsNaN(f)
	case bson.TypeDecimal128:
		d, ok := v.Decimal128OK()
		return ok && d.IsNaN()
	}
	return false
}
