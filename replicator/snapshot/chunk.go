package snapshot

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A bracket is a set of BSON types that MongoDB orders together. Range
// operators ($gte, $lt) only match values of the bound's bracket, so a plan
// splits each bracket on its own and covers every bracket, which makes the
// plan complete for any mix of _id types (ObjectId, numbers, strings, ...).
type bracket struct {
	name  string
	types []string // $type aliases
	// splittable brackets have a total order the server can range over.
	splittable bool
}

// brackets lists every BSON type an _id can hold (arrays cannot be _id
// values), each in exactly one bracket, in MongoDB's sort order.
var brackets = []bracket{
	{name: "minKey", types: []string{"minKey"}},
	{name: "null", types: []string{"null", "undefined"}},
	{name: "number", types: []string{"number"}, splittable: true},
	{name: "string", types: []string{"string", "symbol"}, splittable: true},
	{name: "object", types: []string{"object"}, splittable: true},
	{name: "binData", types: []string{"binData"}, splittable: true},
	{name: "objectId", types: []string{"objectId"}, splittable: true},
	{name: "bool", types: []string{"bool"}},
	{name: "date", types: []string{"date"}, splittable: true},
	{name: "timestamp", types: []string{"timestamp"}, splittable: true},
	{name: "regex", types: []string{"regex"}},
	{name: "other", types: []string{"dbPointer", "javascript", "javascriptWithScope", "maxKey"}},
}

// bracketAll is the bracket name of a chunk that covers the whole
// collection (a collection small enough for one chunk).
const bracketAll = "all"

func findBracket(name string) (bracket, bool) {
	for _, b := range brackets {
		if b.name == name {
			return b, true
		}
	}
	return bracket{}, false
}

// typeFilter is the $type argument of a bracket.
func (b bracket) typeFilter() any {
	if len(b.types) == 1 {
		return b.types[0]
	}
	a := make(bson.A, len(b.types))
	for i, t := range b.types {
		a[i] = t
	}
	return a
}

// Chunk is one _id range of one collection: the unit of reading, loading
// and checkpointing.
type Chunk struct {
	// ID numbers the chunks of one run from 0, in _id order.
	ID int
	// Bracket names the BSON type bracket the range lies in, or "all".
	Bracket string
	// Lower is the inclusive lower bound; Type 0 means open (the start of
	// the bracket).
	Lower bson.RawValue
	// Upper is the exclusive upper bound; Type 0 means open (the end of
	// the bracket).
	Upper bson.RawValue
	// Estimated is the planned number of documents.
	Estimated int64
	// Done is set once the chunk's rows have committed.
	Done bool
	// Documents is the number of documents copied (done chunks).
	Documents int64
}

func (c Chunk) String() string {
	return fmt.Sprintf("chunk %d (%s %s..%s)", c.ID, c.Bracket, boundString(c.Lower), boundString(c.Upper))
}

func boundString(v bson.RawValue) string {
	if v.Type == 0 {
		return "·"
	}
	return v.String()
}

// Filter returns the find filter selecting exactly the chunk's documents.
//
// The lower bound is $gte. The upper bound is $lt when there is a lower
// bound, and $not:{$gte} otherwise, so that the first chunk of the number
// bracket also holds NaN, which orders before every number but matches no
// range operator. Split points are never NaN (see the planner).
func (c Chunk) Filter() (bson.D, error) {
	if c.Bracket == bracketAll {
		return bson.D{}, nil
	}
	b, ok := findBracket(c.Bracket)
	if !ok {
		return nil, fmt.Errorf("chunk %d: unknown type bracket %q", c.ID, c.Bracket)
	}
	cond := bson.D{{Key: "$type", Value: b.typeFilter()}}
	if c.Lower.Type != 0 {
		cond = append(cond, bson.E{Key: "$gte", Value: c.Lower})
	}
	if c.Upper.Type != 0 {
		if c.Lower.Type != 0 {
			cond = append(cond, bson.E{Key: "$lt", Value: c.Upper})
		} else {
			cond = append(cond, bson.E{Key: "$not", Value: bson.D{{Key: "$gte", Value: c.Upper}}})
		}
	}
	return bson.D{{Key: "_id", Value: cond}}, nil
}

// encodeBound stores a bound as the BSON document {v: bound}; nil for an
// open bound.
func encodeBound(v bson.RawValue) ([]byte, error) {
	if v.Type == 0 {
		return nil, nil
	}
	b, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
	if err != nil {
		return nil, fmt.Errorf("encode bound: %w", err)
	}
	return b, nil
}

func decodeBound(b []byte) (bson.RawValue, error) {
	if b == nil {
		return bson.RawValue{}, nil
	}
	v, err := bson.Raw(b).LookupErr("v")
	if err != nil {
		return bson.RawValue{}, fmt.Errorf("decode bound: %w", err)
	}
	return v, nil
}
