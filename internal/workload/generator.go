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
}

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

	live    [3]*idSet
	deleted [3]*idSet

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
		return g.insert(ctx, c)
	case p < 70:
		return g.update(ctx, c)
	case p < 78:
		return g.replace(ctx, c)
	case p < 88:
		return g.delete(ctx, c)
	case p < 94:
		return g.reinsert(ctx, c)
	case !g.opts.NoTransactions:
		return g.transaction(ctx)
	default:
		return g.update(ctx, c)
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
