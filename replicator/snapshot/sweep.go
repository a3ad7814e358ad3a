package snapshot

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/transform"
)

// sweep removes, after a resync copied every chunk, the rows of the
// collection whose version is older than the resync's T0: neither the
// resync (which wrote every document it read at (T0, 0), or found a newer
// row) nor streaming since T0 wrote them, so their documents no longer
// exist in the source. Their child rows go with them, and each leaves a
// tombstone at (T0, 0) so an older buffered event cannot bring it back.
//
// It runs as one statement under the root table lock of the load (see
// guardMerge): streaming writes of the collection wait for it, so none can
// slip a stale row in between the delete and its tombstone. Readers are
// not blocked.
func (s *Snapshot) sweep(ctx context.Context, j *job) (int64, error) {
	q, err := sweepSQL(j.m.Tables())
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", j.m.Namespace(), err)
	}
	p, err := s.merger.plan(j.m.Table())
	if err != nil {
		return 0, err
	}
	var n int64
	t0 := j.run.T0
	err = pgx.BeginFunc(ctx, s.deps.Target, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, p.lock); err != nil {
			return err
		}
		return tx.QueryRow(ctx, q, int64(t0.T), int64(t0.I), j.m.Table()).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", j.m.Namespace(), err)
	}
	return n, nil
}

// sweepSQL builds the sweep statement. $1, $2: T0; $3: root table name.
func sweepSQL(tables []transform.TableDef) (string, error) {
	root := tables[0]
	ident, err := quoteTable(root.Name)
	if err != nil {
		return "", err
	}
	ts, inc, seq := pgx.Identifier{transform.VersionTSColumn}.Sanitize(), pgx.Identifier{transform.VersionIncColumn}.Sanitize(), pgx.Identifier{transform.VersionSeqColumn}.Sanitize()
	keyText := make([]string, len(root.Key))
	for i, k := range root.Key {
		keyText[i] = "g." + pgx.Identifier{k}.Sanitize() + "::text"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `WITH gone AS (
  DELETE FROM %s t WHERE (t.%s, t.%s, t.%s) < ($1::bigint, $2::bigint, 0::bigint)
  RETURNING %s
), tomb AS (
  INSERT INTO %s AS x (table_name, key, cluster_ts, cluster_inc, seq)
  SELECT $3, ARRAY[%s], $1::bigint, $2::bigint, 0 FROM gone g
  ON CONFLICT (table_name, key) DO UPDATE
     SET cluster_ts = EXCLUDED.cluster_ts, cluster_inc = EXCLUDED.cluster_inc, seq = EXCLUDED.seq, deleted_at = now()
   WHERE (x.cluster_ts, x.cluster_inc, x.seq) < (EXCLUDED.cluster_ts, EXCLUDED.cluster_inc, EXCLUDED.seq)
)`, ident, ts, inc, seq, quoteCols(root.Key, "t."), tombstoneTable, strings.Join(keyText, ", "))
	for i, def := range tables[1:] {
		cident, err := quoteTable(def.Name)
		if err != nil {
			return "", err
		}
		var on []string
		for k, rk := range def.RootKey {
			on = append(on, "c."+pgx.Identifier{rk}.Sanitize()+" = g."+pgx.Identifier{root.Key[k]}.Sanitize())
		}
		fmt.Fprintf(&b, ", kids%d AS (\n  DELETE FROM %s c USING gone g WHERE %s\n)", i, cident, strings.Join(on, " AND "))
	}
	b.WriteString("\nSELECT count(*) FROM gone")
	return b.String(), nil
}
