package workload

import (
	"encoding/binary"
	"math/rand/v2"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// idSet is a set of document ids with O(1) random pick and removal.
type idSet struct {
	ids []any
	idx map[any]int
}

func newIDSet() *idSet { return &idSet{idx: map[any]int{}} }

func (s *idSet) len() int { return len(s.ids) }

func (s *idSet) add(id any) {
	if _, ok := s.idx[id]; ok {
		return
	}
	s.idx[id] = len(s.ids)
	s.ids = append(s.ids, id)
}

func (s *idSet) remove(id any) {
	i, ok := s.idx[id]
	if !ok {
		return
	}
	last := s.ids[len(s.ids)-1]
	s.ids[i] = last
	s.idx[last] = i
	s.ids = s.ids[:len(s.ids)-1]
	delete(s.idx, id)
}

func (s *idSet) pick(r *rand.Rand) (any, bool) {
	if len(s.ids) == 0 {
		return nil, false
	}
	return s.ids[r.IntN(len(s.ids))], true
}

// objectID is a deterministic ObjectId for a generator seed and sequence
// number: distinct generators never collide.
func objectID(seed uint64, seq int64) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[0:4], uint32(1_700_000_000+seq/1000))
	binary.BigEndian.PutUint32(id[4:8], uint32(seed))
	binary.BigEndian.PutUint32(id[8:12], uint32(seq))
	return id
}
