package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// Re-checking while sync runs (ARCHITECTURE.md, "Verification").
//
// A document is read at some point after ts, the majority cluster time
// taken just before its read: the read sees every write at or before ts.
// Once the applier's checkpoint has passed the cluster time taken after
// the read, every change the read saw has been applied. If the document's
// root row then holds a version at or before ts (or has no newer
// tombstone), nothing changed it between that version and the read, so
// PostgreSQL must hold exactly what was read: a difference is real. A
// version after ts means the document changed around its read: its rows
// are left out of the comparison as in flight and the document is read
// again in the next round. A row in PostgreSQL whose document was not read
// at all is judged against the cluster time before the first read.

// markInFlight replaces the in-flight keys in verify_x: the root keys
// whose version is newer than their document's read (or, for rows of no
// document read, than start). It returns how many there are.
func markInFlight(ctx context.Context, conn pgx.Tx, root transform.TableDef, start transform.ClusterTime) (int64, error) {
	if _, err := conn.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE reason = '%s'", excludedTable, reasonInFlight)); err != nil {
		return 0, fmt.Errorf("in-flight keys: %w", err)
	}
	staged := make([]string, len(root.Key)) // key columns of verify_e0, as transform wrote them
	join := make([]string, len(root.Key))   // verify_e0 row e matches table row t
	pgText := make([]string, len(root.Key)) // t's key as transform writes it
	for j, k := range root.Key {
		ci := columnIndex(root, k)
		staged[j] = "e." + col(ci)
		join[j] = fmt.Sprintf("t.%s = CAST(e.%s AS %s)", ident(k), col(ci), root.Columns[ci].Type)
		pgText[j] = sink.KeyTextSQL("t."+ident(k), root.Columns[ci].Type)
	}
	// version of the table row t, and what to join for it
	version, versionJoin := fmt.Sprintf("(t.%s, t.%s)", ident(transform.VersionTSColumn), ident(transform.VersionIncColumn)), ""
	if root.ExternalVersions {
		by := "key"
		if root.IdentityKey {
			by = "target_key"
		}
		version = "(rv.cluster_ts, rv.cluster_inc)"
		versionJoin = fmt.Sprintf(" JOIN replicator.row_versions rv ON rv.table_name = $1 AND rv.%s = ARRAY[%s]::text[]", by, strings.Join(pgText, ", "))
	}
	table := tableIdent(root.Name)
	keys := strings.Join(staged, ", ")
	parts := []string{
		// a document whose row is newer than its read
		fmt.Sprintf("SELECT %s, e.d FROM %s e JOIN %s t ON %s%s WHERE %s > (e.ts, e.inc)",
			keys, expectedTable(0), table, strings.Join(join, " AND "), versionJoin, version),
		// a document whose key was deleted after its read
		fmt.Sprintf("SELECT %s, e.d FROM %s e JOIN replicator.tombstones tb ON tb.table_name = $1 AND tb.key = ARRAY[%s]::text[] WHERE (tb.cluster_ts, tb.cluster_inc) > (e.ts, e.inc)",
			keys, expectedTable(0), keys),
		// a row of no document read, written after the first read
		fmt.Sprintf("SELECT %s, NULL FROM %s t%s WHERE %s > ($2::int8, $3::int8) AND NOT EXISTS (SELECT 1 FROM %s e WHERE %s)",
			strings.Join(pgText, ", "), table, versionJoin, version, expectedTable(0), strings.Join(join, " AND ")),
	}
	if root.IdentityKey {
		// a document whose row moved to another key after its read
		parts = append(parts, fmt.Sprintf("SELECT %s, e.d FROM %s e JOIN replicator.row_versions rv ON rv.table_name = $1 AND rv.key = ARRAY[e.idn] WHERE (rv.cluster_ts, rv.cluster_inc) > (e.ts, e.inc)",
			keys, expectedTable(0)))
	}
	q := fmt.Sprintf("INSERT INTO %s (%s, d, reason) SELECT *, '%s' FROM (%s) f",
		excludedTable, strings.Join(keyColumnsOf(len(root.Key)), ", "), reasonInFlight, strings.Join(parts, " UNION "))
	tag, err := conn.Exec(ctx, q, root.Name, int64(start.T), int64(start.I))
	if err != nil {
		return 0, fmt.Errorf("in-flight keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

func keyColumnsOf(n int) []string {
	out := make([]string, n)
	for j := range out {
		out[j] = key(j)
	}
	return out
}

// inFlight lists the in-flight keys: their count and the first limit.
func inFlight(ctx context.Context, conn *pgxpool.Conn, root transform.TableDef, limit int) (KeyList, error) {
	l := KeyList{Keys: []KeyReport{}}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT ARRAY[%s]::text[], d, count(*) OVER () FROM %s WHERE reason = '%s' ORDER BY 1, 2 LIMIT $1",
		strings.Join(keyColumnsOf(len(root.Key)), ", "), excludedTable, reasonInFlight), limit)
	if err != nil {
		return l, fmt.Errorf("in-flight keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			vals []*string
			d    *string
		)
		if err := rows.Scan(&vals, &d, &l.Count); err != nil {
			return l, fmt.Errorf("in-flight keys: %w", err)
		}
		k := KeyReport{}
		if d != nil {
			k.DocumentKey = *d
		}
		for j, v := range vals {
			k.Key = append(k.Key, KeyValue{Column: root.Key[j], Value: v})
		}
		l.Keys = append(l.Keys, k)
	}
	return l, rows.Err()
}

// stallTimeout is how long an applier checkpoint may stand still below
// the cluster time waited for before no replicator is taken to be
// applying the collection. A running capture moves it at least every
// heartbeat while the source's clock moves (an idle replica set's
// primary writes a no-op every 10 s).
const stallTimeout = 30 * time.Second

// ErrNotApplying: the wait for the applier ended without it passing the
// cluster time; the error's message says why.
var ErrNotApplying = errors.New("the applier did not catch up")

// waitApplied waits until ns's apply checkpoint has passed ct: every
// change of ns up to ct is in PostgreSQL. It returns an error wrapping
// ErrNotApplying when no checkpoint exists, when it stands still (no
// replicator applies ns) or when timeout passes.
func waitApplied(ctx context.Context, pool *pgxpool.Pool, ns string, ct transform.ClusterTime, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	stall := min(stallTimeout, timeout)
	var (
		last     [3]int64
		lastMove = time.Now()
	)
	for {
		var cur [3]int64
		var ts, inc *int64
		err := pool.QueryRow(ctx, `SELECT stream_seq, cluster_ts, cluster_inc FROM replicator.apply_checkpoints WHERE collection = $1`, ns).Scan(&cur[0], &ts, &inc)
		var pgErr *pgconn.PgError
		switch {
		case errors.Is(err, pgx.ErrNoRows) || errors.As(err, &pgErr) && pgErr.Code == "42P01":
			return fmt.Errorf("%w: %s has no apply checkpoint", ErrNotApplying, ns)
		case err != nil:
			return fmt.Errorf("apply checkpoint of %s: %w", ns, err)
		}
		if ts != nil && inc != nil {
			cur[1], cur[2] = *ts, *inc
			if !(transform.ClusterTime{T: uint32(*ts), I: uint32(*inc)}).Before(ct) {
				return nil
			}
		}
		now := time.Now()
		if cur != last {
			last, lastMove = cur, now
		}
		at := fmt.Sprintf("the apply checkpoint of %s is at cluster time %d.%d, before the read at %d.%d", ns, cur[1], cur[2], ct.T, ct.I)
		if now.Sub(lastMove) >= stall {
			return fmt.Errorf("%w: %s and has not moved for %s: is a replicator applying it?", ErrNotApplying, at, stall)
		}
		if now.After(deadline) {
			return fmt.Errorf("%w: %s after %s", ErrNotApplying, at, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
