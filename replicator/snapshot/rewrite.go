package snapshot

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/transform"
)

// Rewritten is what Rewrite did.
type Rewritten struct {
	// Documents whose rows were written (the guard still skips a row a
	// newer version holds); Skipped of them the filter skips or fail to
	// transform, which are not written.
	Documents, Skipped int64
	// Deleted is how many root rows of the keys to delete were removed.
	Deleted int64
}

// rewriteSeq orders a rewrite after every event of its cluster time: the
// documents were read after t0, so they hold what those events wrote, and
// a row one of them wrote last (at t0 itself) must not block the repair.
const rewriteSeq = math.MaxUint32

// Rewrite writes the rows of docs through the guard at version (t0,
// rewriteSeq), as a resync chunk would, and deletes, as delete events at
// that version would, the root rows keyed by gone (one line per key, its columns in
// TableDef.Key order as transform writes them) that are older: in one
// transaction, under the root table lock of a chunk's merge. docs must
// have been read with majority reads after t0 was taken (capture
// ClusterTime), so a later change wins over what they hold. verify
// --repair re-copies the documents that differ with it.
func Rewrite(ctx context.Context, pool *pgxpool.Pool, m *transform.Mapping, docs []bson.Raw, gone []byte, t0 transform.ClusterTime) (Rewritten, error) {
	var out Rewritten
	p, err := newMergePlan(m.Namespace(), m.Tables())
	if err != nil {
		return out, err
	}
	v := transform.Version{ClusterTime: t0, Seq: rewriteSeq}
	muts := make([]transform.Mutation, 0, len(docs))
	for _, doc := range docs {
		mut, err := m.SnapshotRow(doc, t0)
		var te *transform.Error
		switch {
		case errors.Is(err, transform.ErrSkipped) || errors.As(err, &te):
			out.Skipped++
			continue
		case err != nil:
			return out, err
		}
		muts = append(muts, mut)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return out, fmt.Errorf("rewrite %s: %w", m.Namespace(), err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	ld := p.newLoad(v)
	if err := ld.add(ctx, tx, muts); err != nil {
		return out, fmt.Errorf("rewrite %s: %w", m.Namespace(), err)
	}
	// finish takes the root table lock first, also with no rows.
	if _, err := ld.finish(ctx, tx); err != nil {
		return out, fmt.Errorf("rewrite %s: %w", m.Namespace(), err)
	}
	if len(gone) > 0 {
		if out.Deleted, err = p.guard.DeleteKeys(ctx, tx, gone, v); err != nil {
			return out, fmt.Errorf("rewrite %s: %w", m.Namespace(), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return out, fmt.Errorf("rewrite %s: %w", m.Namespace(), err)
	}
	out.Documents = int64(len(muts))
	return out, nil
}
