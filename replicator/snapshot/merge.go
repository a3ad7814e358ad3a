package snapshot

import (
	"fmt"

	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// guardMerge writes snapshot rows, all of one version, with the streaming
// apply's own version guard: sink.Guard runs the applier's merge
// statements, so a row is written only if its stored version is not newer
// and no newer tombstone exists for its key, a written row's child rows
// are replaced with it, and a resync's sweep deletes as a delete event
// would (sweep.go).
//
// What is the snapshot's own is when the guard runs. A chunk is written in
// two steps inside its transaction: the rows are encoded as they are read
// (and staged when they outgrow memory, chunkLoad), with no lock on any
// shared table, and at the end they are merged in a few statements, or
// COPYed straight in when no key is taken, after locking the root table IN
// SHARE ROW EXCLUSIVE MODE. That mode lets readers through but conflicts
// with every writer (and with itself), so a chunk's merge and a streaming
// batch writing the same collection never interleave: a batch that already
// wrote commits before the merge starts, and a batch that writes later
// waits for the chunk's commit, then sees its rows. Without it a streaming
// delete could miss a chunk's uncommitted insert while the chunk's
// tombstone check misses the delete's uncommitted tombstone, and a deleted
// row would stay; and the two would deadlock on each other's rows. The
// lock is held only for the merge of one chunk, well under a second for
// 10,000 rows; chunks of one collection merge one at a time.
type guardMerge struct {
	tables map[string]*mergePlan // by root table name
}

// newGuardMerge prepares the statements for every mapping's tables.
func newGuardMerge(mappings []*transform.Mapping) (*guardMerge, error) {
	g := &guardMerge{tables: map[string]*mergePlan{}}
	for _, m := range mappings {
		p, err := newMergePlan(m.Namespace(), m.Tables())
		if err != nil {
			return nil, fmt.Errorf("snapshot: %s: %w", m.Namespace(), err)
		}
		g.tables[m.Table()] = p
	}
	return g, nil
}

// plan returns the statements for a mapping's root table.
func (g *guardMerge) plan(table string) (*mergePlan, error) {
	p, ok := g.tables[table]
	if !ok {
		return nil, fmt.Errorf("merge: no mapping writes table %s", table)
	}
	return p, nil
}

// mergePlan is one mapping's guard and root table lock.
type mergePlan struct {
	guard    *sink.Guard
	root     transform.TableDef
	childIdx map[string]int // descendant table → position after the root
	lock     string         // LOCK TABLE root
}

func newMergePlan(namespace string, tables []transform.TableDef) (*mergePlan, error) {
	g, err := sink.NewGuard(namespace, tables)
	if err != nil {
		return nil, err
	}
	p := &mergePlan{guard: g, root: tables[0], childIdx: map[string]int{},
		lock: "LOCK TABLE " + transform.QuoteTable(tables[0].Name) + " IN SHARE ROW EXCLUSIVE MODE"}
	for i, def := range tables[1:] {
		p.childIdx[def.Name] = i
	}
	return p, nil
}
