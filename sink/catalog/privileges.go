package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/schemas"
)

// Privileges the connecting role needs, each missing one reported with the
// GRANT that fixes it. The sink upserts, deletes and reads root rows,
// deletes, inserts and reads descendant rows, stages every batch in
// temporary tables, and keeps its own state in the metadata schema.
// Running needs no CREATE privilege once the metadata schema is current
// and every mapped table exists (schemas.Migrate).

// metadataTables lists the tables of the metadata schema with the
// privileges the replicator's commands use on them. A test checks that
// it names every table the migrations create.
var metadataTables = []struct {
	name  string
	privs []string
}{
	{"schema_migrations", []string{"SELECT"}},
	{"apply_checkpoints", []string{"SELECT", "INSERT", "UPDATE"}},
	{"tombstones", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}},
	{"dead_letters", []string{"SELECT", "INSERT", "UPDATE"}},
	{"control_events", []string{"INSERT"}},
	{"snapshot_runs", []string{"SELECT", "INSERT", "UPDATE"}},
	{"snapshot_chunks", []string{"SELECT", "INSERT", "UPDATE"}},
	{"row_versions", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}},
}

// lacking returns the privileges of want t does not grant the role.
func lacking(t *table, want []string) []string {
	var out []string
	for _, p := range want {
		if !t.privilege[p] {
			out = append(out, p)
		}
	}
	return out
}

// grant is the problem text for privileges missing on a table.
func grant(r role, privs []string, quoted string) string {
	list := strings.Join(privs, ", ")
	return fmt.Sprintf("the role %s lacks %s on the table: GRANT %s ON %s TO %s", r.name, list, list, quoted, r.quoted)
}

// usageProblem reports a schema the role may not use.
func usageProblem(r role, schema, quoted string) string {
	return fmt.Sprintf("the role %s lacks USAGE on schema %s: GRANT USAGE ON SCHEMA %s TO %s", r.name, schema, quoted, r.quoted)
}

// privileges checks a mapped table: USAGE on its schema (reported once per
// schema), the table privileges, and nextval on the sequences of the
// columns the mapping leaves to their defaults.
func (c *check) privileges(usageReported map[string]bool) {
	r := c.live.role
	s, _, _ := strings.Cut(c.def.Name, ".")
	if !c.live.schemas[s].usage && !usageReported[s] {
		usageReported[s] = true
		c.add(Error, "", "%s", usageProblem(r, s, c.live.ident(s)))
	}
	if miss := lacking(c.t, c.commands()); len(miss) > 0 {
		c.add(Error, "", "%s", grant(r, miss, c.t.quoted))
	}
	for _, name := range c.t.order {
		if k := c.t.cols[name]; k.sequences != "" && !k.seqUsable && !c.mapped(name) {
			c.add(Error, name, "the column's default calls nextval, and the role %s may not use %s: GRANT USAGE ON SEQUENCE %s TO %s",
				r.name, k.sequences, k.sequences, r.quoted)
		}
	}
}

// databaseProblems checks what the role needs in the database itself.
func databaseProblems(live *catalog) []Problem {
	r := live.role
	if r.temp {
		return nil
	}
	return []Problem{{Msg: fmt.Sprintf("the role %s lacks TEMP on database %s, and the sink stages every batch in temporary tables: GRANT TEMP ON DATABASE %s TO %s",
		r.name, r.db, r.dbQuoted, r.quoted)}}
}

// metadataProblems checks the metadata schema: that run can create or
// migrate it, or, when it is current, that the role may use its tables.
func metadataProblems(ctx context.Context, db Querier, live *catalog) ([]Problem, error) {
	const s = schemas.Schema
	r := live.role
	ns := live.schemas[s]
	var ps []Problem
	add := func(table, format string, args ...any) {
		ps = append(ps, Problem{Table: table, Msg: fmt.Sprintf(format, args...)})
	}
	if !ns.exists {
		if !r.createDB {
			add(s, "the metadata schema does not exist and the role %s may not create it: GRANT CREATE ON DATABASE %s TO %s, or create it beforehand (replicator migrate as a role that may) and grant %s its privileges",
				r.name, r.dbQuoted, r.quoted, r.name)
		}
		return ps, nil
	}
	if !ns.usage {
		add(s, "%s", usageProblem(r, s, live.ident(s)))
	}
	migs, err := schemas.Migrations()
	if err != nil {
		return nil, err
	}
	latest := migs[len(migs)-1].Version
	version := 0
	if t := live.tables[s+".schema_migrations"]; t != nil && t.privilege["SELECT"] && ns.usage {
		if err := each(ctx, db, "metadata schema version", `SELECT coalesce(max(version), 0) FROM `+t.quoted, nil, func(row pgx.Rows) error {
			return row.Scan(&version)
		}); err != nil {
			return nil, err
		}
	} else if t != nil {
		version = latest // unknown: its privileges are reported below
	}
	owner := true
	for _, m := range metadataTables {
		if t := live.tables[s+"."+m.name]; t != nil && !t.ownedBy {
			owner = false
		}
	}
	switch {
	case version > latest:
		add(s, "the metadata schema is at version %d, which this build does not know (it knows up to %d): upgrade the replicator", version, latest)
	case version < latest && (!ns.create || !owner):
		add(s, "the metadata schema is at version %d and this build needs %d, which the role %s may not migrate: run replicator migrate as the owner of the schema's tables first (it needs CREATE on schema %s)",
			version, latest, r.name, s)
	}
	for _, m := range metadataTables {
		name := s + "." + m.name
		t := live.tables[name]
		if t == nil {
			continue // created by the migration
		}
		if miss := lacking(t, m.privs); len(miss) > 0 {
			add(name, "%s", grant(r, miss, t.quoted))
		}
		if !slices.Contains(m.privs, "INSERT") {
			continue
		}
		for _, col := range t.order {
			if k := t.cols[col]; k.sequences != "" && !k.seqUsable {
				ps = append(ps, Problem{Table: name, Column: col, Msg: fmt.Sprintf("the column's default calls nextval, and the role %s may not use %s: GRANT USAGE ON SEQUENCE %s TO %s",
					r.name, k.sequences, k.sequences, r.quoted)})
			}
		}
	}
	return ps, nil
}
