package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/transform"
)

// spillBytes bounds the COPY text a chunk keeps in memory; past it the
// chunk's rows go to the staging tables as they are read.
const spillBytes = 32 << 20

// chunkLoad writes one chunk's rows inside the chunk's transaction.
//
// Rows are encoded to COPY text as they are read. At the end, under the
// root table lock (see guardMerge), the chunk's keys are checked: when no
// key repeats and none has a stored row or a tombstone (the usual case in
// an initial snapshot), the rows are COPYed straight into the target
// tables, which no writer can change while the lock is held. Otherwise,
// or when the chunk outgrew spillBytes, the rows go through the staging
// tables and the guarded merge.
type chunkLoad struct {
	p       *mergePlan
	root    copyText // _key, then the row's columns (the staging format)
	keys    copyText // _key, then the key columns
	kids    []copyText
	spilled bool
}

func (p *mergePlan) newLoad() *chunkLoad {
	return &chunkLoad{p: p, kids: make([]copyText, len(p.children))}
}

func (l *chunkLoad) size() int {
	n := l.root.buf.Len() + l.keys.buf.Len()
	for i := range l.kids {
		n += l.kids[i].buf.Len()
	}
	return n
}

// add encodes a batch of snapshot upserts.
func (l *chunkLoad) add(ctx context.Context, tx pgx.Tx, muts []transform.Mutation) error {
	p := l.p
	for i := range muts {
		m := &muts[i]
		if m.Op != transform.OpUpsert || m.Table != p.root.def.Name {
			return fmt.Errorf("merge: snapshot mutation %d is %s on %s, want upsert on %s", i, m.Op, m.Table, p.root.def.Name)
		}
		if len(m.Values) != len(p.root.def.Columns) {
			return fmt.Errorf("merge: %s row has %d values for %d columns", m.Table, len(m.Values), len(p.root.def.Columns))
		}
		l.root.keyArray(m.Key)
		for _, val := range m.Values {
			l.root.field(false, val)
		}
		l.root.endRow()
		l.keys.keyArray(m.Key)
		for _, k := range m.Key {
			l.keys.field(false, k)
		}
		l.keys.endRow()
		for _, cr := range m.Children {
			j, ok := p.childIdx[cr.Table]
			if !ok {
				return fmt.Errorf("merge: %s is not a child table of %s", cr.Table, p.root.def.Name)
			}
			for _, row := range cr.Rows {
				for k, val := range row {
					l.kids[j].field(k == 0, val)
				}
				l.kids[j].endRow()
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
	if err := copyRows(ctx, tx, &l.p.root, &l.root); err != nil {
		return err
	}
	for i, c := range l.p.children {
		if err := copyRows(ctx, tx, c, &l.kids[i]); err != nil {
			return err
		}
	}
	l.root.reset()
	l.keys.reset()
	for i := range l.kids {
		l.kids[i].reset()
	}
	return nil
}

// finish writes the chunk at version v, locking the root table first. It
// reports whether the rows were COPYed straight in.
func (l *chunkLoad) finish(ctx context.Context, tx pgx.Tx, v transform.Version) (direct bool, err error) {
	p := l.p
	if _, err := tx.Exec(ctx, p.lock); err != nil {
		return false, fmt.Errorf("merge: lock %s: %w", p.root.def.Name, err)
	}
	if !l.spilled && l.root.rows > 0 {
		fresh, err := l.fresh(ctx, tx)
		if err != nil {
			return false, err
		}
		if fresh {
			return true, l.copyDirect(ctx, tx, v)
		}
	}
	if err := l.spill(ctx, tx); err != nil {
		return false, err
	}
	return false, p.merge(ctx, tx, v)
}

// fresh reports whether no key of the chunk repeats or has a stored row or
// a tombstone.
func (l *chunkLoad) fresh(ctx context.Context, tx pgx.Tx) (bool, error) {
	p := l.p
	if _, err := tx.Exec(ctx, p.keysDDL); err != nil {
		return false, fmt.Errorf("merge: create key table: %w", err)
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(l.keys.buf.Bytes()), p.keysCopy); err != nil {
		return false, fmt.Errorf("merge: copy keys of %s: %w", p.root.def.Name, err)
	}
	var n int64
	if err := tx.QueryRow(ctx, p.conflict, p.root.def.Name).Scan(&n); err != nil {
		return false, fmt.Errorf("merge: check keys of %s: %w", p.root.def.Name, err)
	}
	return n == 0, nil
}

// copyDirect COPYs the buffered rows into the target tables: root rows
// without their leading _key field and with the version appended.
func (l *chunkLoad) copyDirect(ctx context.Context, tx pgx.Tx, v transform.Version) error {
	p := l.p
	suffix := "\t" + strconv.FormatUint(uint64(v.ClusterTime.T), 10) + "\t" +
		strconv.FormatUint(uint64(v.ClusterTime.I), 10) + "\t" + strconv.FormatUint(v.Seq, 10)
	src := l.root.buf.Bytes()
	out := make([]byte, 0, len(src)+l.root.rows*len(suffix))
	for len(src) > 0 {
		nl := bytes.IndexByte(src, '\n')
		line := src[:nl]
		out = append(out, line[bytes.IndexByte(line, '\t')+1:]...)
		out = append(out, suffix...)
		out = append(out, '\n')
		src = src[nl+1:]
	}
	conn := tx.Conn().PgConn()
	if _, err := conn.CopyFrom(ctx, bytes.NewReader(out), p.root.direct); err != nil {
		return fmt.Errorf("merge: copy %d rows into %s: %w", l.root.rows, p.root.def.Name, err)
	}
	for i, c := range p.children {
		if l.kids[i].rows == 0 {
			continue
		}
		if _, err := conn.CopyFrom(ctx, bytes.NewReader(l.kids[i].buf.Bytes()), c.direct); err != nil {
			return fmt.Errorf("merge: copy %d rows into %s: %w", l.kids[i].rows, c.def.Name, err)
		}
	}
	return nil
}
