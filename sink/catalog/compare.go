package catalog

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/transform"
)

// Querier is the one method Compare needs (*pgx.Conn, *pgxpool.Pool).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Problem is one difference between a mapped table and the database.
type Problem struct {
	// Table is "schema.table"; Column is "" for table-level problems.
	Table  string
	Column string
	Msg    string
}

func (p Problem) String() string {
	if p.Column == "" {
		return p.Table + ": " + p.Msg
	}
	return p.Table + "." + p.Column + ": " + p.Msg
}

type column struct {
	typ        string
	notNull    bool
	hasDefault bool
}

type table struct {
	cols  map[string]column
	order []string
	pk    []string
}

const columnsSQL = `
SELECT n.nspname || '.' || c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname || '.' || c.relname = ANY($1)
ORDER BY 1, a.attnum`

const primaryKeysSQL = `
SELECT n.nspname || '.' || c.relname, array_agg(a.attname::text ORDER BY k.ord)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE i.indisprimary AND n.nspname || '.' || c.relname = ANY($1)
GROUP BY 1`

// load reads the columns and primary keys of the named tables.
func load(ctx context.Context, db Querier, names []string) (map[string]*table, error) {
	out := map[string]*table{}
	rows, err := db.Query(ctx, columnsSQL, names)
	if err != nil {
		return nil, fmt.Errorf("read catalog columns: %w", err)
	}
	for rows.Next() {
		var name, col string
		var c column
		if err := rows.Scan(&name, &col, &c.typ, &c.notNull, &c.hasDefault); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read catalog columns: %w", err)
		}
		t := out[name]
		if t == nil {
			t = &table{cols: map[string]column{}}
			out[name] = t
		}
		t.cols[col] = c
		t.order = append(t.order, col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read catalog columns: %w", err)
	}
	rows, err = db.Query(ctx, primaryKeysSQL, names)
	if err != nil {
		return nil, fmt.Errorf("read catalog primary keys: %w", err)
	}
	for rows.Next() {
		var name string
		var pk []string
		if err := rows.Scan(&name, &pk); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read catalog primary keys: %w", err)
		}
		if t := out[name]; t != nil {
			t.pk = pk
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read catalog primary keys: %w", err)
	}
	return out, nil
}

// Compare checks every table against the database and returns all
// problems, in table and column order. An error means the catalog could
// not be read.
func Compare(ctx context.Context, db Querier, tables []transform.TableDef) ([]Problem, error) {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Name
	}
	live, err := load(ctx, db, names)
	if err != nil {
		return nil, err
	}
	var ps []Problem
	for _, def := range tables {
		ps = append(ps, compareTable(def, live[def.Name])...)
	}
	return ps, nil
}

func compareTable(def transform.TableDef, t *table) []Problem {
	var ps []Problem
	add := func(col, format string, args ...any) {
		ps = append(ps, Problem{Table: def.Name, Column: col, Msg: fmt.Sprintf(format, args...)})
	}
	if t == nil {
		add("", "table does not exist (create it with: replicator schema)")
		return ps
	}
	want := append([]transform.ColumnDef(nil), def.Columns...)
	if def.Root == "" {
		want = append(want, transform.VersionColumns()...)
	}
	mapped := map[string]bool{}
	for _, c := range want {
		mapped[c.Name] = true
		have, ok := t.cols[c.Name]
		if !ok {
			if strings.HasPrefix(c.Name, "_cdc_") {
				add(c.Name, "hidden version column is missing (%s %s NOT NULL)", c.Name, c.Type)
			} else {
				add(c.Name, "column does not exist (want %s)", c.Type)
			}
			continue
		}
		if !transform.TypeAccepts(have.typ, c.Type) {
			add(c.Name, "type %s cannot hold the mapped %s values", have.typ, c.Type)
		}
		if have.notNull && !c.NotNull && !have.hasDefault {
			add(c.Name, "column is NOT NULL but the mapping may write NULL (mark it required or drop NOT NULL)")
		}
	}
	for _, name := range t.order {
		if c := t.cols[name]; !mapped[name] && c.notNull && !c.hasDefault {
			add(name, "column is NOT NULL without a default and the mapping never writes it")
		}
	}
	switch {
	case len(t.pk) == 0:
		add("", "no primary key (want PRIMARY KEY (%s))", strings.Join(def.Key, ", "))
	case strings.Join(t.pk, ",") != strings.Join(def.Key, ","):
		add("", "primary key is (%s), want (%s)", strings.Join(t.pk, ", "), strings.Join(def.Key, ", "))
	}
	return ps
}
