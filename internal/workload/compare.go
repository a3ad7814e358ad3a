package workload

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/transform"
)

// TableDiff compares one target table with the expected rows.
type TableDiff struct {
	Table    string
	Expected int64 // rows the mapping makes of MongoDB's documents
	Actual   int64 // rows in the table
	Missing  int64 // expected rows not in the table (or different)
	Extra    int64 // table rows not expected (or different, or duplicated)
	// Sample shows a few differing rows, for the failure message.
	Sample []string
}

// Report is the comparison of every mapped table.
type Report []TableDiff

// Equal reports whether every table holds exactly the expected rows.
func (r Report) Equal() bool {
	for _, d := range r {
		if d.Missing != 0 || d.Extra != 0 {
			return false
		}
	}
	return true
}

func (r Report) String() string {
	var b strings.Builder
	for _, d := range r {
		fmt.Fprintf(&b, "%s: expected %d rows, have %d, missing %d, extra %d\n", d.Table, d.Expected, d.Actual, d.Missing, d.Extra)
		for _, s := range d.Sample {
			fmt.Fprintf(&b, "    %s\n", s)
		}
	}
	return b.String()
}

// Compare reads every mapped collection through the driver, transforms each
// document as a snapshot would (Mapping.SnapshotRow) and compares the rows
// with the target tables, in PostgreSQL, cast to the column types.
func Compare(ctx context.Context, client *mongo.Client, pool *pgxpool.Pool, mappings []*transform.Mapping) (Report, error) {
	var report Report
	for _, m := range mappings {
		rows, err := expectedRows(ctx, client, m)
		if err != nil {
			return nil, err
		}
		for _, def := range m.Tables() {
			d, err := compareTable(ctx, pool, def, rows[def.Name])
			if err != nil {
				return nil, fmt.Errorf("compare %s: %w", def.Name, err)
			}
			report = append(report, d)
		}
	}
	return report, nil
}

func expectedRows(ctx context.Context, client *mongo.Client, m *transform.Mapping) (map[string][][]transform.Value, error) {
	db, coll, _ := strings.Cut(m.Namespace(), ".")
	cur, err := client.Database(db).Collection(coll).Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.Namespace(), err)
	}
	defer cur.Close(ctx)
	out := map[string][][]transform.Value{}
	for cur.Next(ctx) {
		mut, err := m.SnapshotRow(cur.Current, transform.ClusterTime{})
		if errors.Is(err, transform.ErrSkipped) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("transform %s: %w", m.Namespace(), err)
		}
		out[mut.Table] = append(out[mut.Table], mut.Values)
		for _, ch := range mut.Children {
			out[ch.Table] = append(out[ch.Table], ch.Rows...)
		}
	}
	return out, cur.Err()
}

func compareTable(ctx context.Context, pool *pgxpool.Pool, def transform.TableDef, rows [][]transform.Value) (TableDiff, error) {
	d := TableDiff{Table: def.Name, Expected: int64(len(rows))}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return d, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only; rollback drops the temp table
	var cols, typed, real []string
	names := make([]string, len(def.Columns))
	for i, c := range def.Columns {
		names[i] = "c" + fmt.Sprint(i)
		cols = append(cols, names[i]+" text")
		typed = append(typed, fmt.Sprintf("%s::%s", names[i], c.Type))
		real = append(real, transform.QuoteIdent(c.Name))
	}
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE expected ("+strings.Join(cols, ", ")+") ON COMMIT DROP"); err != nil {
		return d, err
	}
	src := make([][]any, len(rows))
	for i, r := range rows {
		src[i] = make([]any, len(r))
		for j, v := range r {
			if v.Valid {
				src[i][j] = v.Text
			}
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"expected"}, names, pgx.CopyFromRows(src)); err != nil {
		return d, err
	}
	exp := "SELECT " + strings.Join(typed, ", ") + " FROM expected"
	act := "SELECT " + strings.Join(real, ", ") + " FROM " + transform.QuoteTable(def.Name)
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+transform.QuoteTable(def.Name)).Scan(&d.Actual); err != nil {
		return d, err
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM ("+exp+" EXCEPT ALL "+act+") x").Scan(&d.Missing); err != nil {
		return d, err
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM ("+act+" EXCEPT ALL "+exp+") x").Scan(&d.Extra); err != nil {
		return d, err
	}
	if d.Missing+d.Extra > 0 {
		for _, q := range []string{"missing: " + exp + " EXCEPT ALL " + act, "extra: " + act + " EXCEPT ALL " + exp} {
			label, sql, _ := strings.Cut(q, ": ")
			r, err := tx.Query(ctx, "SELECT row_to_json(x)::text FROM ("+sql+") x LIMIT 3")
			if err != nil {
				return d, err
			}
			for r.Next() {
				var s string
				if err := r.Scan(&s); err == nil {
					d.Sample = append(d.Sample, label+" "+s)
				}
			}
			r.Close()
		}
		sort.Strings(d.Sample)
	}
	return d, nil
}
