package workload

import (
	"context"
	"fmt"
	"math/rand/v2"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func (g *Generator) doc(c int, id any) bson.D {
	switch c {
	case cAdv:
		return advisory(g.rnd, id.(string))
	case cVex:
		return statement(g.rnd, id.(bson.ObjectID))
	}
	return run(g.rnd, id.(string))
}

func (g *Generator) insert(ctx context.Context, c int) error {
	n := max(1, g.opts.InsertBatch)
	docs := make([]any, n)
	ids := make([]any, n)
	for i := range n {
		ids[i] = g.newID(c)
		docs[i] = g.doc(c, ids[i])
	}
	var err error
	if n == 1 {
		_, err = g.cols[c].InsertOne(ctx, docs[0])
	} else {
		_, err = g.cols[c].InsertMany(ctx, docs)
	}
	if err != nil {
		return fmt.Errorf("workload insert: %w", err)
	}
	for _, id := range ids {
		g.live[c].add(id)
	}
	g.count("insert", n)
	return nil
}

// update applies one of the collection's update shapes: $set, $unset,
// $inc, array growth and shrinkage.
func (g *Generator) update(ctx context.Context, c int) error {
	id, ok := g.live[c].pick(g.rnd)
	if !ok {
		return g.insert(ctx, c)
	}
	u, op := g.updateDoc(c)
	res, err := g.cols[c].UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, u)
	if err != nil {
		return fmt.Errorf("workload update: %w", err)
	}
	g.count(op, int(res.ModifiedCount))
	return nil
}

func (g *Generator) updateDoc(c int) (bson.D, string) {
	r := g.rnd
	set := func(kv ...bson.E) bson.D { return bson.D{{Key: "$set", Value: bson.D(kv)}} }
	switch c {
	case cAdv:
		switch r.IntN(6) {
		case 0:
			return set(bson.E{Key: "severity", Value: pick(r, severities)}, bson.E{Key: "modified", Value: date(r)}), "update_set"
		case 1:
			return bson.D{{Key: "$inc", Value: bson.D{{Key: "revision", Value: int64(1)}}}, {Key: "$set", Value: bson.D{{Key: "metrics.cvss", Value: decimal(r, 10, 1)}}}}, "update_inc"
		case 2:
			return bson.D{{Key: "$unset", Value: bson.D{{Key: "summary", Value: ""}}}, {Key: "$set", Value: bson.D{{Key: "modified", Value: date(r)}}}}, "update_unset"
		case 3, 4:
			return bson.D{{Key: "$push", Value: bson.D{{Key: "affected", Value: affected(r)}}}}, "update_push"
		default:
			return bson.D{{Key: "$pop", Value: bson.D{{Key: "affected", Value: popEnd(r)}}}, {Key: "$inc", Value: bson.D{{Key: "revision", Value: int64(1)}}}}, "update_pop"
		}
	case cVex:
		switch r.IntN(5) {
		case 0:
			return bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: pick(r, vexStatus)}}}, {Key: "$inc", Value: bson.D{{Key: "version", Value: int64(1)}}}}, "update_inc"
		case 1:
			return bson.D{{Key: "$unset", Value: bson.D{{Key: "justification", Value: ""}}}, {Key: "$inc", Value: bson.D{{Key: "version", Value: int64(1)}}}}, "update_unset"
		case 2:
			return bson.D{{Key: "$push", Value: bson.D{{Key: "products", Value: product(r)}}}}, "update_push"
		case 3:
			return bson.D{{Key: "$pop", Value: bson.D{{Key: "products", Value: popEnd(r)}}}, {Key: "$inc", Value: bson.D{{Key: "version", Value: int64(1)}}}}, "update_pop"
		default:
			return set(bson.E{Key: "justification", Value: "component_not_present"}, bson.E{Key: "timestamp", Value: date(r)}), "update_set"
		}
	}
	switch r.IntN(4) {
	case 0:
		return set(bson.E{Key: "state", Value: pick(r, runStates)}, bson.E{Key: "finishedAt", Value: date(r)}), "update_set"
	case 1:
		return bson.D{{Key: "$inc", Value: bson.D{{Key: "stats.completed", Value: int64(1 + r.IntN(100))}, {Key: "stats.queued", Value: int32(-1)}}}}, "update_inc"
	case 2:
		return bson.D{{Key: "$unset", Value: bson.D{{Key: "finishedAt", Value: ""}}}, {Key: "$set", Value: bson.D{{Key: "state", Value: "running"}}}}, "update_unset"
	default:
		return set(bson.E{Key: "cost", Value: decimal(r, 1000, 6)}, bson.E{Key: "stats.durationMs", Value: r.Float64() * 1e5}), "update_set"
	}
}

func popEnd(r *rand.Rand) int32 {
	if r.IntN(2) == 0 {
		return -1
	}
	return 1
}

func (g *Generator) replace(ctx context.Context, c int) error {
	id, ok := g.live[c].pick(g.rnd)
	if !ok {
		return g.insert(ctx, c)
	}
	res, err := g.cols[c].ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, g.doc(c, id))
	if err != nil {
		return fmt.Errorf("workload replace: %w", err)
	}
	g.count("replace", int(res.ModifiedCount))
	return nil
}

func (g *Generator) delete(ctx context.Context, c int) error {
	id, ok := g.live[c].pick(g.rnd)
	if !ok {
		return g.insert(ctx, c)
	}
	res, err := g.cols[c].DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("workload delete: %w", err)
	}
	g.retire(c, id)
	g.count("delete", int(res.DeletedCount))
	return nil
}

// reinsert brings a deleted id back (the tombstone must not stop it).
func (g *Generator) reinsert(ctx context.Context, c int) error {
	id, ok := g.deleted[c].pick(g.rnd)
	if !ok {
		return g.update(ctx, c)
	}
	if _, err := g.cols[c].InsertOne(ctx, g.doc(c, id)); err != nil {
		return fmt.Errorf("workload re-insert: %w", err)
	}
	g.deleted[c].remove(id)
	g.live[c].add(id)
	g.count("reinsert", 1)
	return nil
}

// transaction inserts a scheduler run and updates an advisory (and, half
// the time, deletes a VEX statement) atomically. When the runs are at their
// bound it also deletes an old run, so the new one takes its place.
func (g *Generator) transaction(ctx context.Context) error {
	runID := g.newID(cRun)
	runDoc := g.doc(cRun, runID)
	advID, ok := g.live[cAdv].pick(g.rnd)
	if !ok {
		return g.insert(ctx, cAdv)
	}
	adv, _ := g.updateDoc(cAdv)
	vexID, delVex := g.live[cVex].pick(g.rnd)
	delVex = delVex && g.rnd.IntN(2) == 0
	var oldRun any
	delRun := g.full(cRun, 1)
	if delRun {
		oldRun, delRun = g.live[cRun].pick(g.rnd)
	}
	sess, err := g.cl.StartSession()
	if err != nil {
		return fmt.Errorf("workload transaction: %w", err)
	}
	defer sess.EndSession(ctx)
	events := 0
	_, err = sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
		events = 0
		if _, err := g.cols[cRun].InsertOne(sc, runDoc); err != nil {
			return nil, err
		}
		res, err := g.cols[cAdv].UpdateOne(sc, bson.D{{Key: "_id", Value: advID}}, adv)
		if err != nil {
			return nil, err
		}
		events = 1 + int(res.ModifiedCount)
		if delVex {
			res, err := g.cols[cVex].DeleteOne(sc, bson.D{{Key: "_id", Value: vexID}})
			if err != nil {
				return nil, err
			}
			events += int(res.DeletedCount)
		}
		if delRun {
			res, err := g.cols[cRun].DeleteOne(sc, bson.D{{Key: "_id", Value: oldRun}})
			if err != nil {
				return nil, err
			}
			events += int(res.DeletedCount)
		}
		return nil, nil
	}, options.Transaction())
	if err != nil {
		return fmt.Errorf("workload transaction: %w", err)
	}
	g.live[cRun].add(runID)
	if delVex {
		g.retire(cVex, vexID)
	}
	if delRun {
		g.retire(cRun, oldRun)
	}
	g.count("transaction", events)
	return nil
}
