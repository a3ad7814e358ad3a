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

	"github.com/mongopg/replicator/schemas/envelope"
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
func markInFlight(ctx context.Context, tx pgx.Tx, root transform.TableDef, start transform.ClusterTime, sample bool) (int64, error) {
	if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE reason = '%s'", excludedTable, reasonInFlight)); err != nil {
		return 0, fmt.Errorf("in-flight keys: %w", err)
	}
	keys := stagedKey(root, "e.", false)    // key columns of verify_e0, as transform wrote them
	join := make([]string, len(root.Key))   // verify_e0 row e matches table row t
	pgText := make([]string, len(root.Key)) // t's key as transform writes it (timestamps)
	versionOf := func(col string) string {  // a row_versions rv key (in col) matches t's, by value
		match := make([]string, len(root.Key))
		for j, k := range root.Key {
			match[j] = fmt.Sprintf("t.%s = CAST(rv.%s[%d] AS %s)", ident(k), col, j+1, root.Columns[columnIndex(root, k)].Type)
		}
		return strings.Join(match, " AND ")
	}
	for j, k := range root.Key {
		ci := columnIndex(root, k)
		join[j] = fmt.Sprintf("t.%s = CAST(e.%s AS %s)", ident(k), col(ci), root.Columns[ci].Type)
		pgText[j] = sink.KeyTextSQL("t."+ident(k), root.Columns[ci].Type)
	}
	// Row versions are keyed as transform writes keys (or, for a root
	// keyed by identity, by the document's _id key text, with the row's
	// key in target_key). For a staged document, its staged text is that
	// key; for a table row, the key is matched by value, as a double or a
	// numeric(p,s) key prints otherwise in PostgreSQL than in transform.
	byKey, tombKey, rowVersion := "rv.key = ARRAY["+keys+"]::text[]", "ARRAY["+keys+"]::text[]", versionOf("key")
	if root.IdentityKey {
		byKey, tombKey, rowVersion = "rv.key = ARRAY[e.idn]", "ARRAY[e.idn]", versionOf("target_key")
	}
	version := fmt.Sprintf("(t.%s, t.%s)", ident(transform.VersionTSColumn), ident(transform.VersionIncColumn))
	stagedJoin, tableJoin := "", ""
	if root.ExternalVersions {
		version = "(rv.cluster_ts, rv.cluster_inc)"
		stagedJoin = " JOIN replicator.row_versions rv ON rv.table_name = $1 AND " + byKey
		tableJoin = " JOIN replicator.row_versions rv ON rv.table_name = $1 AND " + rowVersion
	}
	table := tableIdent(root.Name)
	parts := []string{
		// a document whose row is newer than its read (by its identity,
		// a document whose row moved to another key after its read)
		fmt.Sprintf("SELECT %s, e.d FROM %s e JOIN %s t ON %s%s WHERE %s > (e.ts, e.inc)",
			keys, expectedTable(0), table, strings.Join(join, " AND "), stagedJoin, version),
		// a document deleted after its read (its tombstone is keyed like
		// its version row)
		fmt.Sprintf("SELECT %s, e.d FROM %s e JOIN replicator.tombstones tb ON tb.table_name = $1 AND tb.key = %s WHERE (tb.cluster_ts, tb.cluster_inc) > (e.ts, e.inc)",
			keys, expectedTable(0), tombKey),
	}
	if !sample {
		// a row of no document read, written after the first read (a
		// sample compares only the rows of the documents it read)
		parts = append(parts, fmt.Sprintf("SELECT %s, NULL FROM %s t%s WHERE %s > ($2::int8, $3::int8) AND NOT EXISTS (SELECT 1 FROM %s e WHERE %s)",
			strings.Join(pgText, ", "), table, tableJoin, version, expectedTable(0), strings.Join(join, " AND ")))
	}
	if root.IdentityKey {
		// a document whose version row is newer than its read, wherever
		// its row now is
		parts = append(parts, fmt.Sprintf("SELECT %s, e.d FROM %s e JOIN replicator.row_versions rv ON rv.table_name = $1 AND rv.key = ARRAY[e.idn] WHERE (rv.cluster_ts, rv.cluster_inc) > (e.ts, e.inc)",
			keys, expectedTable(0)))
	}
	q := fmt.Sprintf("INSERT INTO %s (%s, d, reason) SELECT *, '%s' FROM (%s) f",
		excludedTable, keyColumns(len(root.Key), ""), reasonInFlight, strings.Join(parts, " UNION "))
	args := []any{root.Name}
	if !sample {
		args = append(args, int64(start.T), int64(start.I))
	}
	tag, err := tx.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("in-flight keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// inFlight lists the in-flight keys: their count and the first limit.
func inFlight(ctx context.Context, conn *pgxpool.Conn, root transform.TableDef, limit int) (KeyList, error) {
	l := KeyList{Keys: []KeyReport{}}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT ARRAY[%s]::text[], d, count(*) OVER () FROM %s WHERE reason = '%s' ORDER BY 1, 2 LIMIT $1",
		keyColumns(len(root.Key), ""), excludedTable, reasonInFlight), limit)
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

// slowestCheckpoint reads the apply checkpoints of the units $1 (a
// collection, or its configured partitions, envelope.Partition.Unit): the
// number of rows, their sequences' sum (which moves when any of them
// moves) and the earliest cluster time. Rows of another partition layout
// are not among them.
const slowestCheckpoint = `SELECT count(*), coalesce(sum(stream_seq), 0)::bigint,
  (array_agg(cluster_ts ORDER BY cluster_ts NULLS FIRST, cluster_inc NULLS FIRST))[1],
  (array_agg(cluster_inc ORDER BY cluster_ts NULLS FIRST, cluster_inc NULLS FIRST))[1]
FROM replicator.apply_checkpoints WHERE collection = ANY($1)`

// waitApplied waits until the apply checkpoints of units (a collection,
// or each of its partitions) have passed ct: every change of the
// collection up to ct is in PostgreSQL. It returns an error wrapping
// ErrNotApplying when no checkpoint exists, when they stand still (no
// replicator applies the collection) or when timeout passes.
func waitApplied(ctx context.Context, pool *pgxpool.Pool, units []string, ct transform.ClusterTime, timeout time.Duration) error {
	ns := units[0]
	if len(units) > 1 {
		ns, _ = envelope.ParseUnit(ns)
	}
	deadline := time.Now().Add(timeout)
	stall := min(stallTimeout, timeout)
	var (
		last     [3]int64
		lastMove = time.Now()
	)
	for {
		var cur [3]int64
		var ts, inc *int64
		var rows int
		err := pool.QueryRow(ctx, slowestCheckpoint, units).Scan(&rows, &cur[0], &ts, &inc)
		var pgErr *pgconn.PgError
		switch {
		case err == nil && rows == 0, errors.Is(err, pgx.ErrNoRows) || errors.As(err, &pgErr) && pgErr.Code == "42P01":
			return fmt.Errorf("%w: %s has no apply checkpoint", ErrNotApplying, ns)
		case err != nil:
			return fmt.Errorf("apply checkpoint of %s: %w", ns, err)
		}
		if ts != nil && inc != nil {
			cur[1], cur[2] = *ts, *inc
			// Strictly past: a batch may end inside the transaction of ct.
			if ct.Before(transform.ClusterTime{T: uint32(*ts), I: uint32(*inc)}) {
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
