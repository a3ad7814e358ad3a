package verify

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// The staging tables, temporary tables of the one connection a
// verification compares on:
//
//   - pg_temp.verify_e<i> holds the expected rows of the mapping's i-th
//     table: every mapped column as text (c0, c1, … in TableDef.Columns
//     order) and d, the document the row comes from ({_id: …} as canonical
//     Extended JSON). verify_e0, the root table's, also holds ts and inc,
//     the cluster time before the document was read (every write at or
//     before it is in what the read saw), and idn, the document's identity
//     when the root is keyed by it.
//   - pg_temp.verify_x holds the root keys (k0, k1, … in key order, as
//     transform writes them) whose rows are left out of the comparison,
//     with their document d and the reason: a dead letter, a transform
//     error, or a change while it was being verified (in flight).
//
// Rows are written in COPY's text format, as sink.Guard takes them, and
// cast to the column types only when compared.
const (
	excludedTable = "pg_temp.verify_x"
	// sampleTable holds, when a sample is compared, the root keys of the
	// sampled documents (staged or left out).
	sampleTable = "pg_temp.verify_s"
	// Reasons in verify_x.
	reasonDeadLetter = "dead_letter"
	reasonTransform  = "transform_error"
	reasonInFlight   = "in_flight"
)

func expectedTable(i int) string { return fmt.Sprintf("pg_temp.verify_e%d", i) }

func col(j int) string { return fmt.Sprintf("c%d", j) }
func key(j int) string { return fmt.Sprintf("k%d", j) }

// stage owns the staging tables of one connection.
type stage struct {
	conn   *pgxpool.Conn
	tables []transform.TableDef
	index  map[string]int // table name → position
	sample bool
}

func newStage(ctx context.Context, conn *pgxpool.Conn, tables []transform.TableDef) (*stage, error) {
	s := &stage{conn: conn, tables: tables, index: map[string]int{}}
	var ddl []string
	for i, t := range tables {
		s.index[t.Name] = i
		cols := make([]string, len(t.Columns))
		for j := range t.Columns {
			cols[j] = col(j) + " text"
		}
		cols = append(cols, "d text")
		if i == 0 {
			cols = append(cols, "ts bigint", "inc bigint", "idn text")
		}
		ddl = append(ddl, fmt.Sprintf("DROP TABLE IF EXISTS %[1]s; CREATE TEMP TABLE %[1]s (%[2]s)", expectedTable(i), strings.Join(cols, ", ")))
	}
	ddl = append(ddl, fmt.Sprintf("DROP TABLE IF EXISTS %[1]s; CREATE TEMP TABLE %[1]s (%[2]s)", excludedTable, s.excludedDDL()))
	if _, err := conn.Exec(ctx, strings.Join(ddl, "; ")); err != nil {
		return nil, fmt.Errorf("create staging tables: %w", err)
	}
	return s, nil
}

// keyColumns are the root key columns of verify_x and verify_s, k0, k1,
// … each followed by suffix, joined by commas.
func (s *stage) keyColumns(suffix string) string { return keyColumns(len(s.tables[0].Key), suffix) }

func keyColumns(n int, suffix string) string {
	keys := make([]string, n)
	for j := range keys {
		keys[j] = key(j) + suffix
	}
	return strings.Join(keys, ", ")
}

// stagedKey are the root key columns of verify_e0 under alias (as
// transform wrote them), in key order; named: each AS k0, k1, ….
func stagedKey(root transform.TableDef, alias string, named bool) string {
	out := make([]string, len(root.Key))
	for j, k := range root.Key {
		out[j] = alias + col(columnIndex(root, k))
		if named {
			out[j] += " AS " + key(j)
		}
	}
	return strings.Join(out, ", ")
}

// The columns of verify_x and of verify_s: on the staging session
// (newStage, analyze) and on the second session (second).
func (s *stage) excludedDDL() string { return s.keyColumns(" text") + ", d text, reason text NOT NULL" }
func (s *stage) sampleDDL() string   { return s.keyColumns(" text") }

// batch is a worker's rows on their way into the staging tables: COPY
// text per table, the excluded keys, and what the documents were.
type batch struct {
	bufs []bytes.Buffer
	keys bytes.Buffer
	// unmatched: a sampled tenant no document was found for.
	unmatched []string
	// docs read (not counted again for re-read documents), skipped by
	// the filter, and the documents left out.
	docs, skipped    int64
	transformErrors  []DocumentReport
	deadLettered     []DocumentReport
	transformErrorsN int64
	deadLetteredN    int64
}

func newBatch(n int) *batch { return &batch{bufs: make([]bytes.Buffer, n)} }

func (b *batch) empty() bool {
	return b.docs == 0 && b.skipped == 0 && b.transformErrorsN == 0 && b.deadLetteredN == 0 && b.keys.Len() == 0 &&
		len(b.unmatched) == 0 && b.bufs[0].Len() == 0 // descendant rows come with root rows
}

// rows adds an upsert's rows: the root row (with its document, read time
// and identity) and every descendant row.
func (s *stage) rows(b *batch, mut *transform.Mutation, d string, read transform.ClusterTime) {
	buf := &b.bufs[0]
	line(buf, mut.Values)
	buf.WriteByte('\t')
	sink.WriteCopyText(buf, transform.Text(d))
	fmt.Fprintf(buf, "\t%d\t%d\t", read.T, read.I)
	if mut.Identity != "" {
		sink.WriteCopyText(buf, transform.Text(mut.Identity))
	} else {
		buf.WriteString(`\N`)
	}
	buf.WriteByte('\n')
	for _, ch := range mut.Children {
		i, ok := s.index[ch.Table]
		if !ok {
			continue // Tables() lists every table a mutation names
		}
		for _, r := range ch.Rows {
			line(&b.bufs[i], r)
			b.bufs[i].WriteByte('\t')
			sink.WriteCopyText(&b.bufs[i], transform.Text(d))
			b.bufs[i].WriteByte('\n')
		}
	}
}

// excluded adds a root key (nil when the mapping cannot tell it) whose
// rows are left out of the comparison.
func (s *stage) excluded(b *batch, key []transform.Value, d, reason string) {
	if key == nil {
		key = make([]transform.Value, len(s.tables[0].Key))
	}
	line(&b.keys, key)
	b.keys.WriteByte('\t')
	sink.WriteCopyText(&b.keys, transform.Text(d))
	b.keys.WriteByte('\t')
	b.keys.WriteString(reason)
	b.keys.WriteByte('\n')
}

// line writes vs as the first columns of a COPY text line, without its
// end.
func line(b *bytes.Buffer, vs []transform.Value) {
	for j, v := range vs {
		if j > 0 {
			b.WriteByte('\t')
		}
		sink.WriteCopyText(b, v)
	}
}

// copyBatch copies a batch's rows into the staging tables.
func (s *stage) copyBatch(ctx context.Context, b *batch) error {
	pg := s.conn.Conn().PgConn()
	for i := range b.bufs {
		if b.bufs[i].Len() == 0 {
			continue
		}
		cols := make([]string, len(s.tables[i].Columns), len(s.tables[i].Columns)+4)
		for j := range cols {
			cols[j] = col(j)
		}
		cols = append(cols, "d")
		if i == 0 {
			cols = append(cols, "ts", "inc", "idn")
		}
		q := fmt.Sprintf("COPY %s (%s) FROM STDIN", expectedTable(i), strings.Join(cols, ", "))
		if _, err := pg.CopyFrom(ctx, bytes.NewReader(b.bufs[i].Bytes()), q); err != nil {
			return fmt.Errorf("stage expected rows of %s: %w", s.tables[i].Name, err)
		}
	}
	if b.keys.Len() > 0 {
		q := fmt.Sprintf("COPY %s (%s, d, reason) FROM STDIN", excludedTable, s.keyColumns(""))
		if _, err := pg.CopyFrom(ctx, bytes.NewReader(b.keys.Bytes()), q); err != nil {
			return fmt.Errorf("stage excluded keys of %s: %w", s.tables[0].Name, err)
		}
	}
	return nil
}

// forget removes the staged rows and excluded keys of the documents in
// verify_x with the given reason, before they are read again, and
// returns those documents.
func (s *stage) forget(ctx context.Context, reason string) ([]string, error) {
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT d FROM %s WHERE reason = $1 AND d IS NOT NULL ORDER BY d", excludedTable), reason)
	if err != nil {
		return nil, fmt.Errorf("documents to read again: %w", err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("documents to read again: %w", err)
	}
	b := &pgx.Batch{}
	for i := range s.tables {
		b.Queue(fmt.Sprintf("DELETE FROM %s WHERE d = ANY($1)", expectedTable(i)), docs)
	}
	b.Queue(fmt.Sprintf("DELETE FROM %s WHERE d = ANY($1)", excludedTable), docs)
	if err := s.conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("forget documents to read again: %w", err)
	}
	return docs, nil
}

// markDocuments leaves the staged documents docs out of the comparison
// with reason.
func (s *stage) markDocuments(ctx context.Context, docs []string, reason string) error {
	// A document read again that no longer exists has no staged row: it
	// is listed without its key.
	q := fmt.Sprintf("INSERT INTO %s (%s, d, reason) SELECT %s, r.d, $2 FROM unnest($1::text[]) r(d) LEFT JOIN %s e ON e.d = r.d",
		excludedTable, s.keyColumns(""), stagedKey(s.tables[0], "e.", false), expectedTable(0))
	if _, err := s.conn.Exec(ctx, q, docs, reason); err != nil {
		return fmt.Errorf("leave documents out: %w", err)
	}
	return nil
}

// second opens a transaction on another session of pool in the exported
// snapshot of tx, with copies of verify_x (and verify_s) as tx sees them,
// for the actual side's queries (queries.actual). release ends it and
// drops the copies before the session goes back to the pool.
func (s *stage) second(ctx context.Context, pool *pgxpool.Pool, tx pgx.Tx, snapshot string) (pgx.Tx, func(), error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("compare: second session: %w", err)
	}
	type copied struct{ table, ddl, cols string }
	copies := []copied{{excludedTable, s.excludedDDL(), s.keyColumns("") + ", d, reason"}}
	if s.sample {
		copies = append(copies, copied{sampleTable, s.sampleDDL(), s.keyColumns("")})
	}
	var names []string
	for _, cp := range copies {
		names = append(names, cp.table)
	}
	var tx2 pgx.Tx
	release := func() {
		bg := context.WithoutCancel(ctx)
		if tx2 != nil {
			_ = tx2.Rollback(bg)
		}
		_, _ = c.Exec(bg, "DROP TABLE IF EXISTS "+strings.Join(names, ", "))
		c.Release()
	}
	fail := func(err error) (pgx.Tx, func(), error) {
		release()
		return nil, nil, fmt.Errorf("compare: second session: %w", err)
	}
	var ddl []string
	for _, cp := range copies {
		ddl = append(ddl, fmt.Sprintf("DROP TABLE IF EXISTS %[1]s; CREATE TEMP TABLE %[1]s (%[2]s)", cp.table, cp.ddl))
	}
	if _, err := c.Exec(ctx, strings.Join(ddl, "; ")); err != nil {
		return fail(err)
	}
	if tx2, err = c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}); err != nil {
		return fail(err)
	}
	if _, err := tx2.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+snapshot+"'"); err != nil {
		return fail(err)
	}
	for _, cp := range copies {
		var buf bytes.Buffer
		if _, err := tx.Conn().PgConn().CopyTo(ctx, &buf, fmt.Sprintf("COPY (SELECT %s FROM %s) TO STDOUT", cp.cols, cp.table)); err != nil {
			return fail(err)
		}
		if _, err := tx2.Conn().PgConn().CopyFrom(ctx, &buf, fmt.Sprintf("COPY %s (%s) FROM STDIN", cp.table, cp.cols)); err != nil {
			return fail(err)
		}
	}
	return tx2, release, nil
}

// analyze gives the planner the staging tables' sizes; for a sample it
// first collects the sampled root keys.
func (s *stage) analyze(ctx context.Context) error {
	names := []string{excludedTable}
	if s.sample {
		q := fmt.Sprintf("DROP TABLE IF EXISTS %[1]s; CREATE TEMP TABLE %[1]s AS SELECT %[2]s FROM %[3]s UNION SELECT %[4]s FROM %[5]s",
			sampleTable, stagedKey(s.tables[0], "", true), expectedTable(0), s.keyColumns(""), excludedTable)
		if _, err := s.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("sampled keys: %w", err)
		}
		names = append(names, sampleTable)
	}
	for i := range s.tables {
		names = append(names, expectedTable(i))
	}
	if _, err := s.conn.Exec(ctx, "ANALYZE "+strings.Join(names, ", ")); err != nil {
		return fmt.Errorf("analyze staging tables: %w", err)
	}
	return nil
}

// drop removes the staging tables from the connection, which goes back to
// the pool.
func (s *stage) drop(ctx context.Context) {
	names := []string{excludedTable, sampleTable}
	for i := range s.tables {
		names = append(names, expectedTable(i))
	}
	_, _ = s.conn.Exec(ctx, "DROP TABLE IF EXISTS "+strings.Join(names, ", "))
}
