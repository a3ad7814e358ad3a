package verify

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// stage holds the expected rows on their way into temporary tables of one
// connection: pg_temp.verify_e<i> for the mapping's i-th table (every
// column as text, c0, c1, … in TableDef.Columns order) and pg_temp.verify_x
// for the root keys left out of the comparison (k0, k1, … in key order).
// Rows are written in COPY's text format, as sink.Guard takes them, and
// cast to the column types only when compared.
type stage struct {
	conn   *pgxpool.Conn
	tables []transform.TableDef
	index  map[string]int // table name → position
	bufs   []bytes.Buffer // rows of each table not copied yet
	keys   bytes.Buffer   // excluded root keys not copied yet
}

func expectedTable(i int) string { return fmt.Sprintf("pg_temp.verify_e%d", i) }

const excludedTable = "pg_temp.verify_x"

func col(j int) string { return fmt.Sprintf("c%d", j) }
func key(j int) string { return fmt.Sprintf("k%d", j) }

func newStage(ctx context.Context, conn *pgxpool.Conn, tables []transform.TableDef) (*stage, error) {
	s := &stage{conn: conn, tables: tables, index: map[string]int{}, bufs: make([]bytes.Buffer, len(tables))}
	var ddl []string
	for i, t := range tables {
		s.index[t.Name] = i
		cols := make([]string, len(t.Columns))
		for j := range t.Columns {
			cols[j] = col(j) + " text"
		}
		ddl = append(ddl, fmt.Sprintf("DROP TABLE IF EXISTS %[1]s; CREATE TEMP TABLE %[1]s (%[2]s)", expectedTable(i), strings.Join(cols, ", ")))
	}
	keys := make([]string, len(tables[0].Key))
	for j := range keys {
		keys[j] = key(j) + " text"
	}
	ddl = append(ddl, fmt.Sprintf("DROP TABLE IF EXISTS %[1]s; CREATE TEMP TABLE %[1]s (%[2]s)", excludedTable, strings.Join(keys, ", ")))
	if _, err := conn.Exec(ctx, strings.Join(ddl, "; ")); err != nil {
		return nil, fmt.Errorf("create staging tables: %w", err)
	}
	return s, nil
}

// rows adds an upsert's rows: the root row and every descendant row.
func (s *stage) rows(mut *transform.Mutation) {
	line(&s.bufs[0], mut.Values)
	for _, ch := range mut.Children {
		i, ok := s.index[ch.Table]
		if !ok {
			continue // Tables() lists every table a mutation names
		}
		for _, r := range ch.Rows {
			line(&s.bufs[i], r)
		}
	}
}

// excluded adds a root key whose rows are left out of the comparison.
func (s *stage) excluded(key []transform.Value) { line(&s.keys, key) }

func line(b *bytes.Buffer, vs []transform.Value) {
	for j, v := range vs {
		if j > 0 {
			b.WriteByte('\t')
		}
		sink.WriteCopyText(b, v)
	}
	b.WriteByte('\n')
}

// flush copies the rows held in memory into the staging tables.
func (s *stage) flush(ctx context.Context) error {
	pg := s.conn.Conn().PgConn()
	for i := range s.bufs {
		if s.bufs[i].Len() == 0 {
			continue
		}
		cols := make([]string, len(s.tables[i].Columns))
		for j := range cols {
			cols[j] = col(j)
		}
		q := fmt.Sprintf("COPY %s (%s) FROM STDIN", expectedTable(i), strings.Join(cols, ", "))
		if _, err := pg.CopyFrom(ctx, bytes.NewReader(s.bufs[i].Bytes()), q); err != nil {
			return fmt.Errorf("stage expected rows of %s: %w", s.tables[i].Name, err)
		}
		s.bufs[i].Reset()
	}
	if s.keys.Len() > 0 {
		keys := make([]string, len(s.tables[0].Key))
		for j := range keys {
			keys[j] = key(j)
		}
		q := fmt.Sprintf("COPY %s (%s) FROM STDIN", excludedTable, strings.Join(keys, ", "))
		if _, err := pg.CopyFrom(ctx, bytes.NewReader(s.keys.Bytes()), q); err != nil {
			return fmt.Errorf("stage excluded keys of %s: %w", s.tables[0].Name, err)
		}
		s.keys.Reset()
	}
	return nil
}

// drop removes the staging tables from the connection, which goes back to
// the pool.
func (s *stage) drop(ctx context.Context) {
	names := []string{excludedTable}
	for i := range s.tables {
		names = append(names, expectedTable(i))
	}
	_, _ = s.conn.Exec(ctx, "DROP TABLE IF EXISTS "+strings.Join(names, ", "))
}
