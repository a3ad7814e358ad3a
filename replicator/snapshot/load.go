package snapshot

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/transform"
)

// spillBytes bounds the COPY text a chunk keeps in memory; past it the
// chunk's rows go to the staging tables as they are read. A variable so
// tests can exercise spilling.
var spillBytes = 32 << 20

// chunkLoad writes one chunk's rows, all at the snapshot's version, inside
// the chunk's transaction.
//
// Rows are encoded to COPY text as they are read. At the end, under the
// root table lock (see guardMerge), the chunk's keys are checked: when no
// key repeats and none has a stored row or a tombstone (the usual case in
// an initial snapshot), the rows are COPYed straight into the target
// tables, which no writer can change while the lock is held. Otherwise,
// or when the chunk outgrew spillBytes, the rows go through the staging
// tables and the guarded merge (sink.Guard).
type chunkLoad struct {
	p       *mergePlan
	v       transform.Version
	rows    []copyText // per table, root first: each row's columns
	keys    copyText   // each root row's key columns
	spilled bool
}

func (p *mergePlan) newLoad(v transform.Version) *chunkLoad {
	return &chunkLoad{p: p, v: v, rows: make([]copyText, 1+len(p.childIdx))}
}

func (l *chunkLoad) size() int {
	n := l.keys.buf.Len()
	for i := range l.rows {
		n += l.rows[i].buf.Len()
	}
	return n
}

// bufs returns the encoded rows per table, root first.
func (l *chunkLoad) bufs() [][]byte {
	out := make([][]byte, len(l.rows))
	for i := range l.rows {
		out[i] = l.rows[i].buf.Bytes()
	}
	return out
}

// add encodes a batch of snapshot upserts.
func (l *chunkLoad) add(ctx context.Context, tx pgx.Tx, muts []transform.Mutation) error {
	p := l.p
	for i := range muts {
		m := &muts[i]
		if m.Op != transform.OpUpsert || m.Table != p.root.Name {
			return fmt.Errorf("merge: snapshot mutation %d is %s on %s, want upsert on %s", i, m.Op, m.Table, p.root.Name)
		}
		if len(m.Values) != len(p.root.Columns) {
			return fmt.Errorf("merge: %s row has %d values for %d columns", m.Table, len(m.Values), len(p.root.Columns))
		}
		for k, val := range m.Values {
			l.rows[0].field(k == 0, val)
		}
		if p.root.IdentityKey {
			// The guard stages the document's identity after the columns.
			l.rows[0].field(false, transform.Text(m.Identity))
		}
		l.rows[0].endRow()
		for k, val := range m.Key {
			l.keys.field(k == 0, val)
		}
		l.keys.endRow()
		for _, cr := range m.Children {
			j, ok := p.childIdx[cr.Table]
			if !ok {
				return fmt.Errorf("merge: %s is not a child table of %s", cr.Table, p.root.Name)
			}
			for _, row := range cr.Rows {
				for k, val := range row {
					l.rows[1+j].field(k == 0, val)
				}
				l.rows[1+j].endRow()
			}
		}
	}
	if l.size() > spillBytes {
		return l.spill(ctx, tx)
	}
	return nil
}

// spill moves the buffered rows into the staging tables.
func (l *chunkLoad) spill(ctx context.Context, tx pgx.Tx) error {
	l.spilled = true
	if err := l.p.guard.Stage(ctx, tx, l.bufs(), l.v); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	for i := range l.rows {
		l.rows[i].reset()
	}
	l.keys.reset()
	return nil
}

// finish writes the chunk, locking the root table first. It reports
// whether the rows were COPYed straight in.
func (l *chunkLoad) finish(ctx context.Context, tx pgx.Tx) (direct bool, err error) {
	p := l.p
	if _, err := tx.Exec(ctx, p.lock); err != nil {
		return false, fmt.Errorf("merge: lock %s: %w", p.root.Name, err)
	}
	if !l.spilled {
		if l.rows[0].rows == 0 {
			return false, nil
		}
		fresh, err := p.guard.Fresh(ctx, tx, l.keys.buf.Bytes())
		if err != nil {
			return false, fmt.Errorf("merge: %w", err)
		}
		if fresh {
			if err := p.guard.Insert(ctx, tx, l.bufs(), l.v); err != nil {
				return false, fmt.Errorf("merge: %w", err)
			}
			return true, nil
		}
	}
	if err := l.spill(ctx, tx); err != nil {
		return false, err
	}
	if err := p.guard.Merge(ctx, tx); err != nil {
		return false, fmt.Errorf("merge: %w", err)
	}
	return false, nil
}
