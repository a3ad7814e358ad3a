package sink

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mongopg/replicator/transform"
)

// relations are one collection's staged inputs.
type relations struct {
	up, del *relation
	child   []*relation
}

func newRelations(ns string, ts *tableSet) *relations {
	r := &relations{
		up:  newRelation(ns, "up", ts.root, allCols(ts.root)),
		del: newRelation(ns, "del", ts.root, ts.root.idIdx),
	}
	for i, d := range ts.desc {
		r.child = append(r.child, newRelation(ns, fmt.Sprintf("ch%d", i), d, allCols(d)))
	}
	return r
}

// source turns a relation's rows into a FROM item aliased s.
type source interface {
	// from returns the FROM item for rows of rel, carrying at least the
	// columns cols (positions in rel's table), and the statement arguments.
	from(rel *relation, rows []row, cols []int) (string, []any)
}

// arraySource passes rows as one array parameter per column, expanded by
// unnest: no staging round trips, so it suits small batches, and the
// statement text is stable, so pgx prepares it once per connection.
type arraySource struct{}

func (arraySource) from(rel *relation, rows []row, cols []int) (string, []any) {
	var b strings.Builder
	b.WriteString("unnest(")
	args := make([]any, 0, len(cols)+3)
	names := make([]string, 0, len(cols)+3)
	for n, ci := range cols {
		pos := relPos(rel, ci)
		col := make([]pgtype.Text, len(rows))
		for i, r := range rows {
			v := r.vals[pos]
			col[i] = pgtype.Text{String: v.Text, Valid: v.Valid}
		}
		args = append(args, col)
		fmt.Fprintf(&b, "$%d::text[], ", n+1)
		names = append(names, colName(ci))
	}
	ts, inc, seq := make([]int64, len(rows)), make([]int64, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		ts[i], inc[i], seq[i] = int64(r.ver.ClusterTime.T), int64(r.ver.ClusterTime.I), int64(r.ver.Seq)
	}
	n := len(cols)
	fmt.Fprintf(&b, "$%d::int8[], $%d::int8[], $%d::int8[]) AS s(%s, v_ts, v_inc, v_seq)", n+1, n+2, n+3, strings.Join(names, ", "))
	return b.String(), append(args, ts, inc, seq)
}

// relPos is the position of table column ci among rel's columns.
func relPos(rel *relation, ci int) int {
	for p, c := range rel.cols {
		if c == ci {
			return p
		}
	}
	panic(fmt.Sprintf("sink: column %d not staged in %s", ci, rel.temp))
}

// copySource reads staging tables filled by stageCopy, and the deletes
// (keys only) from arrays: a staging table has no statistics, and the
// planner takes one of a few pages for ten pages of rows (about 1,000
// keys), so a batch with a few dozen deletes was joined to the target
// table by a hash join over all of its rows, a full scan per batch. From
// arrays it knows how many keys there are and probes the key index.
// Guard (guard.go) stages its own relations and has no rels.
type copySource struct{ rels *relations }

func (c copySource) from(rel *relation, rows []row, cols []int) (string, []any) {
	if c.rels != nil && rel == c.rels.del {
		return arraySource{}.from(rel, rows, cols)
	}
	return "pg_temp." + rel.temp + " AS s", nil
}

// stageCopy creates the staging tables (once per connection; their rows
// vanish at commit) and COPYs every non-empty relation into its table but
// the deletes (copySource). It returns the tables it analyzed, which the
// caller marks as done on the connection once the transaction committed
// (analyzeTemp).
func stageCopy(ctx context.Context, tx pgx.Tx, rels *relations, p *batchPlan) ([]string, error) {
	type job struct {
		rel  *relation
		rows []row
	}
	jobs := []job{{rels.up, rootRows(p.upserts, false)}}
	for i, rel := range rels.child {
		jobs = append(jobs, job{rel, p.children[i]})
	}
	var ddl, analyzed []string
	done := tx.Conn().PgConn().CustomData()
	for _, j := range jobs {
		if len(j.rows) > 0 {
			ddl = append(ddl, j.rel.createTemp())
			if done[j.rel.temp] == nil {
				ddl = append(ddl, analyzeTemp(j.rel.temp))
				analyzed = append(analyzed, j.rel.temp)
			}
		}
	}
	if len(ddl) == 0 {
		return nil, nil
	}
	// Several statements in one simple-protocol round trip.
	if _, err := tx.Exec(ctx, strings.Join(ddl, "; "), pgx.QueryExecModeSimpleProtocol); err != nil {
		return nil, fmt.Errorf("create staging tables: %w", err)
	}
	for _, j := range jobs {
		if len(j.rows) == 0 {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{j.rel.temp}, j.rel.copyColumns(), &rowSource{rows: j.rows}); err != nil {
			return nil, fmt.Errorf("copy into staging table for %s: %w", j.rel.tbl.def.Name, err)
		}
	}
	return analyzed, nil
}

// analyzeTemp is the ANALYZE of an empty temporary table, run once per
// connection right after the table is created, before any row is in it.
//
// A table never analyzed gets no statistics, and the planner then takes
// one of fewer than ten pages for ten pages of rows: a batch of a few
// dozen applied root rows counted as about a thousand, so the statements
// that join the temporary table to a target table (the children of the
// applied rows, the tombstones of the staged keys) chose a hash join over
// every row of the target table, a full scan per batch that grows with
// the table (in a live stream with array items, 100–160 ms per batch
// against a 100,000-row child table). Analyzed while empty, the table
// records zero pages and zero rows; from then on the planner counts its
// actual pages at planning time and estimates the rows from the column
// widths, close to the truth whatever the batch holds, and probes the
// target's index for a few rows. Rows vanish at commit (ON COMMIT DELETE
// ROWS) without touching those statistics; a TRUNCATE would reset them.
func analyzeTemp(temp string) string { return "ANALYZE pg_temp." + temp }

// rootRows are the staged rows of root writes: all columns for upserts,
// the key columns for deletes.
func rootRows(ws []*rootWrite, keysOnly bool) []row {
	out := make([]row, len(ws))
	for i, w := range ws {
		v := w.values
		switch {
		case keysOnly && w.identity != "":
			v = []transform.Value{transform.Text(w.identity)}
		case keysOnly:
			v = w.key
		case w.identity != "":
			// The identity is the staged column after the table's.
			v = append(w.values[:len(w.values):len(w.values)], transform.Text(w.identity))
		}
		out[i] = row{vals: v, ver: w.ver}
	}
	return out
}

// rowSource feeds staged rows to COPY; it reuses one value slice (pgx
// encodes each row before asking for the next).
type rowSource struct {
	rows []row
	i    int
	buf  []any
}

func (s *rowSource) Next() bool { s.i++; return s.i <= len(s.rows) }

func (s *rowSource) Values() ([]any, error) {
	r := s.rows[s.i-1]
	s.buf = s.buf[:0]
	for _, v := range r.vals {
		if v.Valid {
			s.buf = append(s.buf, v.Text)
		} else {
			s.buf = append(s.buf, nil)
		}
	}
	s.buf = append(s.buf, int64(r.ver.ClusterTime.T), int64(r.ver.ClusterTime.I), int64(r.ver.Seq))
	return s.buf, nil
}

func (s *rowSource) Err() error { return nil }
