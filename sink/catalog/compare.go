package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/transform"
)

// Querier is the one method Compare needs (*pgx.Conn, *pgxpool.Pool).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Severity says whether a Problem stops the replicator.
type Severity uint8

const (
	// Error: writes to the table will fail (the zero value).
	Error Severity = iota
	// Warning: writes work, but some rows may be dead-lettered or changed
	// by the database on the way in.
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Problem is one difference between a mapped table and the database, or
// one thing the connecting role lacks, with its fix in Msg.
type Problem struct {
	// Table is "schema.table", "schema" for a problem with a whole schema,
	// or "" for one with the database; Column is "" for table-level
	// problems.
	Table    string
	Column   string
	Severity Severity
	Msg      string
}

// String is "table.column: msg", with "warning: " before the message of a
// warning.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Table == "":
	case p.Column == "":
		b.WriteString(p.Table + ": ")
	default:
		b.WriteString(p.Table + "." + p.Column + ": ")
	}
	if p.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors returns the problems of severity Error, in order.
func Errors(ps []Problem) []Problem {
	var out []Problem
	for _, p := range ps {
		if p.Severity == Error {
			out = append(out, p)
		}
	}
	return out
}

// Compare checks every table against the database and what the connecting
// role may do there, and returns all problems: per table in the order of
// tables, errors before warnings, then those of the database and of the
// metadata schema. An error means the catalog could not be read.
func Compare(ctx context.Context, db Querier, tables []transform.TableDef) ([]Problem, error) {
	return CompareWith(ctx, db, tables, Options{})
}

// Options are the target settings that change what a write does.
type Options struct {
	// DisableTriggers: the writes run with session_replication_role =
	// replica (target.disable_triggers), so ordinary triggers and
	// foreign-key checks do not fire; ENABLE ALWAYS and ENABLE REPLICA
	// triggers do.
	DisableTriggers bool
}

// CompareWith is Compare for writes made with opts.
func CompareWith(ctx context.Context, db Querier, tables []transform.TableDef, opts Options) ([]Problem, error) {
	names := make([]string, 0, len(tables)+len(metadataTables))
	schemaSet := map[string]bool{schemas.Schema: true}
	schemaNames := []string{schemas.Schema}
	var idents []string
	for _, t := range tables {
		names = append(names, t.Name)
		s, rel, _ := strings.Cut(t.Name, ".")
		idents = append(idents, s, rel)
		if !schemaSet[s] {
			schemaSet[s] = true
			schemaNames = append(schemaNames, s)
		}
		for _, c := range t.Columns {
			idents = append(idents, c.Name)
		}
	}
	for _, m := range metadataTables {
		names = append(names, schemas.Schema+"."+m.name)
	}
	idents = append(idents, schemas.Schema)
	live, err := load(ctx, db, names, schemaNames, idents)
	if err != nil {
		return nil, err
	}
	var ps []Problem
	usageReported := map[string]bool{}
	for _, def := range tables {
		c := &check{def: def, live: live, t: live.tables[def.Name], all: tables, opts: opts}
		c.columns()
		if c.t != nil {
			c.key()
			c.privileges(usageReported)
			c.rowSecurity()
			c.uniques()
			c.checks()
			c.foreignKeys()
			c.rootKeyIndex()
			c.triggers()
		}
		slices.SortStableFunc(c.ps, func(a, b Problem) int { return int(a.Severity) - int(b.Severity) })
		ps = append(ps, c.ps...)
	}
	ps = append(ps, databaseProblems(live)...)
	if r := live.role; opts.DisableTriggers && !r.setReplicationRole {
		ps = append(ps, Problem{Severity: Error, Msg: fmt.Sprintf(
			"target.disable_triggers is set, but the role %s may not set session_replication_role, so it cannot connect: GRANT SET ON PARAMETER session_replication_role TO %s (or unset target.disable_triggers)",
			r.name, r.quoted)})
	}
	meta, err := metadataProblems(ctx, db, live)
	if err != nil {
		return nil, err
	}
	return append(ps, meta...), nil
}

// check collects the problems of one mapped table.
type check struct {
	def  transform.TableDef
	live *catalog
	t    *table // nil when the table does not exist
	all  []transform.TableDef
	opts Options
	ps   []Problem
}

func (c *check) add(sev Severity, col, format string, args ...any) {
	c.ps = append(c.ps, Problem{Table: c.def.Name, Column: col, Severity: sev, Msg: fmt.Sprintf(format, args...)})
}

// mapped reports whether the mapping writes column name.
func (c *check) mapped(name string) bool {
	for _, col := range c.def.Columns {
		if col.Name == name {
			return true
		}
	}
	return c.def.Root == "" && !c.def.ExternalVersions && strings.HasPrefix(name, "_cdc_") && slices.ContainsFunc(transform.VersionColumns(),
		func(v transform.ColumnDef) bool { return v.Name == name })
}

// list quotes columns for SQL, comma-separated.
func (c *check) list(cols []string) string {
	q := make([]string, len(cols))
	for i, col := range cols {
		q[i] = c.live.ident(col)
	}
	return strings.Join(q, ", ")
}

// columns checks the mapped columns and the columns the mapping leaves out.
func (c *check) columns() {
	if c.t == nil {
		c.add(Error, "", "table does not exist (create it with: replicator schema)%s", c.createHint())
		return
	}
	want := append([]transform.ColumnDef(nil), c.def.Columns...)
	if c.def.Root == "" && !c.def.ExternalVersions {
		// (With versions: table they live in replicator.row_versions.)
		want = append(want, transform.VersionColumns()...)
	}
	mapped := map[string]bool{}
	for _, w := range want {
		mapped[w.Name] = true
		have, ok := c.t.cols[w.Name]
		if !ok {
			if strings.HasPrefix(w.Name, "_cdc_") {
				c.add(Error, w.Name, "hidden version column is missing (%s %s NOT NULL)", w.Name, w.Type)
			} else {
				c.add(Error, w.Name, "column does not exist (want %s)", w.Type)
			}
			continue
		}
		if have.generated != "" {
			c.add(Error, w.Name, "column is GENERATED ALWAYS AS (%s) and cannot be written: remove it from the mapping", have.generated)
			continue
		}
		if have.identity == 'a' {
			c.add(Error, w.Name, "column is GENERATED ALWAYS AS IDENTITY, so an INSERT that writes it is refused (428C9): remove it from the mapping, or ALTER TABLE %s ALTER %s SET GENERATED BY DEFAULT",
				c.t.quoted, c.live.ident(w.Name))
		}
		if !transform.TypeAccepts(have.typ, w.Type) {
			c.add(Error, w.Name, "type %s cannot hold the mapped %s values", have.typ, w.Type)
		}
		if have.notNull && !w.NotNull && !have.hasDefault {
			c.add(Error, w.Name, "column is NOT NULL but the mapping may write NULL (mark it required or drop NOT NULL)")
		}
	}
	for _, name := range c.t.order {
		if k := c.t.cols[name]; !mapped[name] && k.notNull && !k.hasDefault {
			c.add(Error, name, "column is NOT NULL without a default and the mapping never writes it")
		}
	}
}

// createHint says, for a missing table, when the role may not create it.
func (c *check) createHint() string {
	s, _, _ := strings.Cut(c.def.Name, ".")
	ns := c.live.schemas[s]
	r := c.live.role
	switch {
	case !ns.exists && !r.createDB:
		return fmt.Sprintf("; schema %s does not exist either and the role %s may not create it: GRANT CREATE ON DATABASE %s TO %s", s, r.name, r.dbQuoted, r.quoted)
	case ns.exists && !ns.create:
		return fmt.Sprintf("; the role %s may not create it: GRANT CREATE ON SCHEMA %s TO %s", r.name, c.live.ident(s), r.quoted)
	}
	return ""
}
