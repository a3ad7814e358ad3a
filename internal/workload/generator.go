package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Options tune a Generator.
type Options struct {
	// Seed makes the operation sequence reproducible.
	Seed uint64
	// InsertOnly issues only inserts (throughput benchmarks).
	InsertOnly bool
	// InsertBatch > 1 inserts that many documents per command.
	InsertBatch int
	// NoTransactions leaves out multi-document transactions.
	NoTransactions bool
	// InitialDocs is how many documents per collection to insert before
	// mixing in updates and deletes (default 50).
	InitialDocs int
	// MaxDocs bounds the documents per collection this generator keeps
	// (0: DefaultMaxDocs; negative: no bound; never below InitialDocs plus
	// one insert batch). At the bound an insert or re-insert deletes a
	// random document instead, like a retention purge, and a transaction's
	// new run replaces an old run in the same transaction. InsertOnly
	// ignores it.
	MaxDocs int
}

// DefaultMaxDocs is Options.MaxDocs's default. The mix adds about a
// quarter of a document per operation on a collection, so the collections
// reach it after 35,000 to 90,000 operations (three to eight minutes at the
// demo's default rate) and stay there.
const DefaultMaxDocs = 5000

// Stats counts what a Generator did.
type Stats struct {
	// Events is the number of change events the operations caused.
	Events int64
	// Ops counts operations by kind.
	Ops map[string]int64
}

// Generator issues the workload against one MongoDB. Run and Step are for
// one goroutine; Stats may be called from any. Use one Generator per
// goroutine (distinct seeds give distinct document ids).
type Generator struct {
	opts Options
	ns   Namespaces
	cols [3]*mongo.Collection
	cl   *mongo.Client
	rnd  *rand.Rand
	seq  int64

	// live holds the ids of each collection's documents, deleted the ids
	// that may be re-inserted. Unless InsertOnly, live[c] never exceeds
	// maxDocs and deleted[c] never exceeds it either (0: no bound), so a
	// long run reaches a steady state: the data set, the generator's
	// memory and the documents' arrays (replaces and deletes reset them)
	// stop growing.
	live    [3]*idSet
	deleted [3]*idSet
	maxDocs int

	mu    sync.Mutex
	stats Stats
}

// Collection indexes.
const (
	cAdv = iota
	cVex
	cRun
)

// New returns a generator for the collections in ns.
func New(client *mongo.Client, ns Namespaces, opts Options) *Generator {
	if opts.InitialDocs == 0 {
		opts.InitialDocs = 50
	}
	g := &Generator{opts: opts, ns: ns, cl: client, rnd: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		stats: Stats{Ops: map[string]int64{}}}
	switch {
	case opts.MaxDocs == 0:
		g.maxDocs = DefaultMaxDocs
	case opts.MaxDocs > 0:
		g.maxDocs = opts.MaxDocs
	}
	if g.maxDocs > 0 {
		// The initial fill never passes the bound.
		g.maxDocs = max(g.maxDocs, opts.InitialDocs+max(1, opts.InsertBatch)-1)
	}
	for i, n := range ns.list() {
		db, coll, _ := strings.Cut(n, ".")
		g.cols[i] = client.Database(db).Collection(coll)
		g.live[i], g.deleted[i] = newIDSet(), newIDSet()
	}
	return g
}

// Stats returns a copy of the counters.
func (g *Generator) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := Stats{Events: g.stats.Events, Ops: map[string]int64{}}
	for k, v := range g.stats.Ops {
		s.Ops[k] = v
	}
	return s
}

func (g *Generator) count(op string, events int) {
	g.mu.Lock()
	g.stats.Ops[op]++
	g.stats.Events += int64(events)
	g.mu.Unlock()
}

// Run issues operations until ctx ends or the operations caused at least
// events change events (0: no limit). rate bounds operations per second
// (0: as fast as the server answers).
func (g *Generator) Run(ctx context.Context, rate float64, events int64) error {
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	next := time.Now()
	for events <= 0 || g.Stats().Events < events {
		if err := ctx.Err(); err != nil {
			return nil
		}
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return nil
				}
			} else if d < -time.Second {
				next = time.Now() // fell behind; do not burst
			}
		}
		if err := g.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// Step issues one operation.
func (g *Generator) Step(ctx context.Context) error {
	c := g.rnd.IntN(3)
	if g.opts.InsertOnly || g.live[c].len() < g.opts.InitialDocs {
		return g.insert(ctx, c)
	}
	switch p := g.rnd.IntN(100); {
	case p < 30:
		return g.grow(ctx, c, g.insert)
	case p < 70:
		return g.update(ctx, c)
	case p < 78:
		return g.replace(ctx, c)
	case p < 88:
		return g.delete(ctx, c)
	case p < 94:
		return g.grow(ctx, c, g.reinsert)
	case !g.opts.NoTransactions:
		return g.transaction(ctx)
	default:
		return g.update(ctx, c)
	}
}

// grow runs add, an operation that adds a document to collection c, unless
// c is at its bound: then it deletes a random document instead.
func (g *Generator) grow(ctx context.Context, c int, add func(context.Context, int) error) error {
	if g.full(c, max(1, g.opts.InsertBatch)) {
		return g.delete(ctx, c)
	}
	return add(ctx, c)
}

// full reports whether adding n documents to collection c would pass the
// bound.
func (g *Generator) full(c, n int) bool {
	return g.maxDocs > 0 && g.live[c].len()+n > g.maxDocs
}

// retire records that document id of collection c was deleted. Past the
// bound, a random deleted id is forgotten (it is never re-inserted).
func (g *Generator) retire(c int, id any) {
	g.live[c].remove(id)
	g.deleted[c].add(id)
	if g.maxDocs > 0 && g.deleted[c].len() > g.maxDocs {
		old, _ := g.deleted[c].pick(g.rnd)
		g.deleted[c].remove(old)
	}
}

func (g *Generator) newID(c int) any {
	g.seq++
	switch c {
	case cAdv:
		return fmt.Sprintf("GHSA-%04x-%04x-%04x", g.opts.Seed&0xffff, g.seq&0xffff, g.seq>>16&0xffff)
	case cVex:
		return objectID(g.opts.Seed, g.seq)
	}
	return fmt.Sprintf("run-%d-%010d", g.opts.Seed, g.seq)
}
