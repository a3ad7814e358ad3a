package verify

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// RepairReport is what --repair did after the comparison.
type RepairReport struct {
	// Documents re-copied: read again and written through the guard at
	// the version of the repair (the resync's write).
	Documents int64 `json:"documents"`
	// Skipped of them: gone from MongoDB, skipped by the filter, or
	// failing to transform.
	Skipped int64 `json:"skipped"`
	// Deleted root rows no document gives (with their child rows).
	Deleted int64 `json:"deleted"`
	// Unattributed rows extra in a child table whose document cannot be
	// told (no expected parent or root row): a resync removes them.
	Unattributed int64 `json:"unattributed"`
}

// repair re-copies the documents whose rows differ (missing or
// different rows, and extra child rows under an expected parent) through
// the guarded write of a resync (snapshot.Rewrite) at a version taken now,
// and deletes the root rows no document gives as delete events at that
// version would. A change streamed meanwhile is newer and wins.
func repair(ctx context.Context, deps Deps, conn *pgxpool.Conn, st *stage, r *reader) (RepairReport, error) {
	var out RepairReport
	docs, gone, unattributed, err := repairs(ctx, conn, st)
	if err != nil {
		return out, err
	}
	out.Unattributed = unattributed
	if len(docs) == 0 && len(gone) == 0 {
		return out, nil
	}
	t0, err := capture.ClusterTime(ctx, deps.Source)
	if err != nil {
		return out, err
	}
	// The reads see every write at or before t0, so a version of t0 does
	// not claim a change they missed.
	sctx, end, err := readAfter(ctx, deps.Source, t0)
	if err != nil {
		return out, err
	}
	defer end()
	batches, err := idBatches(docs)
	if err != nil {
		return out, err
	}
	var raws []bson.Raw
	for _, ids := range batches {
		cur, err := r.coll.Find(sctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		if err != nil {
			return out, fmt.Errorf("read documents to repair: %w", err)
		}
		for cur.Next(sctx) {
			raws = append(raws, append(bson.Raw(nil), cur.Current...))
		}
		err = cur.Err()
		_ = cur.Close(context.WithoutCancel(ctx))
		if err != nil {
			return out, fmt.Errorf("read documents to repair: %w", err)
		}
	}
	var keys bytes.Buffer
	for _, k := range gone {
		for j, v := range k {
			if j > 0 {
				keys.WriteByte('\t')
			}
			sink.WriteCopyText(&keys, transform.Text(v))
		}
		keys.WriteByte('\n')
	}
	res, err := snapshot.Rewrite(ctx, deps.Writer, r.m, raws, keys.Bytes(), t0)
	if err != nil {
		return out, err
	}
	out.Documents = res.Documents
	out.Skipped = int64(len(docs)) - res.Documents
	out.Deleted = res.Deleted
	return out, nil
}

// repairs finds, in the last comparison's terms, the documents to copy
// again, the root keys (transform's text) to delete, and how many extra
// child rows have no document to copy again.
func repairs(ctx context.Context, conn *pgxpool.Conn, st *stage) (docs []string, gone [][]string, unattributed int64, err error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("repair: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	seen := map[string]bool{}
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			docs = append(docs, d)
		}
	}
	for i := range st.tables {
		q := newQueries(st, i)
		rows, err := tx.Query(ctx, q.repairs())
		if err != nil {
			return nil, nil, 0, fmt.Errorf("repair %s: %w", q.def.Name, err)
		}
		for rows.Next() {
			var (
				d   *string
				key []string
			)
			if err := rows.Scan(&d, &key); err != nil {
				rows.Close()
				return nil, nil, 0, fmt.Errorf("repair %s: %w", q.def.Name, err)
			}
			switch {
			case d != nil:
				add(*d)
			case i == 0:
				gone = append(gone, key)
			default:
				unattributed++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, 0, fmt.Errorf("repair %s: %w", q.def.Name, err)
		}
	}
	return docs, gone, unattributed, nil
}

// repairs selects, for every differing row of the table, the document to
// copy again (the expected row's, or for an extra child row the document
// of its expected parent) and, for an extra root row, its key as
// transform writes it.
func (q *queries) repairs() string {
	keyText := "NULL::text[]"
	if q.def.Root == "" {
		texts := make([]string, len(q.keyIdx))
		for n, j := range q.keyIdx {
			texts[n] = sink.KeyTextSQL("a."+col(j), q.def.Columns[j].Type)
		}
		keyText = "ARRAY[" + strings.Join(texts, ", ") + "]::text[]"
	}
	return q.with() + fmt.Sprintf(`SELECT DISTINCT coalesce(e.d, %s), CASE WHEN e.p IS NULL THEN %s END
 FROM e FULL JOIN a ON %s WHERE %s`, q.owner(), keyText, q.joinOn(), q.differ())
}

// owner is the document of an actual row a of a descendant table: the
// one whose expected parent (or root) row it hangs under; NULL for a root
// row or a row under no expected parent.
func (q *queries) owner() string {
	def := q.def
	var parent int
	var link, ref []string
	switch {
	case def.Root == "":
		return "NULL"
	case len(def.ParentLink) > 0:
		parent, link, ref = slices.IndexFunc(q.all, func(t transform.TableDef) bool { return t.Name == def.Parent }), def.ParentLink, def.ParentRef
	default:
		parent, link, ref = 0, def.RootKey, def.RootRef
		if len(ref) == 0 {
			ref = q.root.Key
		}
	}
	pdef := q.all[parent]
	conds := make([]string, len(link))
	for j := range link {
		pc := columnIndex(pdef, ref[j])
		conds[j] = fmt.Sprintf("CAST(o.%s AS %s) = a.%s", col(pc), compareType(pdef.Columns[pc].Type), col(columnIndex(def, link[j])))
	}
	return fmt.Sprintf("(SELECT o.d FROM %s o WHERE %s LIMIT 1)", expectedTable(parent), strings.Join(conds, " AND "))
}
