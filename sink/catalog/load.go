package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The live catalog as Compare needs it: one query per kind of object, each
// for all named tables at once. Everything is read from pg_catalog and the
// privilege functions, so a role that may write nothing can still read it.

// role is the connecting role (current_user) and what it may do in the
// database.
type role struct {
	name, quoted     string // as in the catalog; as SQL (quote_ident)
	db, dbQuoted     string
	super, bypassRLS bool
	temp, createDB   bool
	// setReplicationRole: the role may SET session_replication_role.
	setReplicationRole bool
}

type column struct {
	typ        string
	notNull    bool
	hasDefault bool   // a default, an identity or a generation expression
	identity   byte   // 'a' ALWAYS, 'd' BY DEFAULT, 0 none
	generated  string // the generation expression, "" for an ordinary column
	// sequences are the sequences the default calls nextval on
	// (serial columns); seqUsable: the role may call nextval on them.
	sequences string
	seqUsable bool
}

type index struct {
	name       string // the index's name, qualified as SQL
	constraint string // the constraint's name as SQL, "" for a bare index
	kind       byte   // 'p' primary key, 'u' unique constraint, 0 an index
	unique     bool
	valid      bool
	deferrable bool
	expression bool   // some key column is an expression
	predicate  string // WHERE of a partial index, "" for a full one
	cols       []string
}

type constraint struct {
	name string
	kind byte // 'c' CHECK, 'f' FOREIGN KEY
	def  string
	cols []string
	// For foreign keys: the table holding the constraint and the table it
	// references (both "schema.table"), and the ON DELETE action.
	from, to string
	onDelete byte
}

type policy struct {
	name       string
	permissive bool
	cmd        byte // '*' ALL, 'r' SELECT, 'a' INSERT, 'w' UPDATE, 'd' DELETE
	applies    bool // the policy's roles include the connecting role
	expr       string
}

type trigger struct {
	name    string
	typ     int16
	enabled byte // 'O' origin and local, 'R' replica, 'A' always, 'D' disabled
	fn      string
	src     string // the function's source
}

type table struct {
	quoted    string // "schema.table" as SQL
	cols      map[string]column
	order     []string
	indexes   []index
	checks    []constraint
	fksOut    []constraint // this table references another
	fksIn     []constraint // another table references this one
	policies  []policy
	triggers  []trigger
	rls       bool // row-level security enabled
	forceRLS  bool
	ownedBy   bool // the role has the owner's privileges
	privilege map[string]bool
}

// namespace is one schema a mapped or metadata table lives in.
type namespace struct {
	exists        bool
	usage, create bool
}

type catalog struct {
	role    role
	tables  map[string]*table
	schemas map[string]namespace
	quoted  map[string]string // identifier → quote_ident
}

const roleSQL = `
SELECT current_user, quote_ident(current_user), current_database(), quote_ident(current_database()),
       r.rolsuper, r.rolbypassrls,
       has_database_privilege(current_database(), 'TEMP'), has_database_privilege(current_database(), 'CREATE'),
       current_setting('server_version_num')::int
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`

// setReplicationRoleSQL: PostgreSQL 15 grants SET on a parameter;
// before, only superusers may change session_replication_role.
const setReplicationRoleSQL = `SELECT has_parameter_privilege('session_replication_role', 'SET')`

const tablesSQL = `
SELECT n.nspname || '.' || c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       c.relrowsecurity, c.relforcerowsecurity, pg_has_role(c.relowner, 'USAGE'),
       has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'),
       has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname || '.' || c.relname = ANY($1)`

const columnsSQL = `
SELECT n.nspname || '.' || c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
       a.attidentity::text, CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) ELSE '' END,
       coalesce(s.names, ''), coalesce(s.usable, true)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN LATERAL (
    SELECT string_agg(quote_ident(sn.nspname) || '.' || quote_ident(sc.relname), ', ' ORDER BY sc.relname) AS names,
           bool_and(has_sequence_privilege(sc.oid, 'USAGE, UPDATE')) AS usable
    FROM pg_catalog.pg_depend dep
    JOIN pg_catalog.pg_class sc ON sc.oid = dep.refobjid AND sc.relkind = 'S'
    JOIN pg_catalog.pg_namespace sn ON sn.oid = sc.relnamespace
    WHERE dep.classid = 'pg_catalog.pg_attrdef'::regclass AND dep.objid = d.oid AND a.attgenerated = ''
) s ON true
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname || '.' || c.relname = ANY($1)
ORDER BY 1, a.attnum`

const indexesSQL = `
SELECT n.nspname || '.' || c.relname, quote_ident(n.nspname) || '.' || quote_ident(ic.relname),
       coalesce(quote_ident(con.conname), ''), coalesce(con.contype::text, ''),
       i.indisunique, i.indisvalid, NOT i.indimmediate, i.indexprs IS NOT NULL,
       coalesce(pg_get_expr(i.indpred, i.indrelid), ''),
       array(SELECT a.attname::text
               FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE k.ord <= i.indnkeyatts ORDER BY k.ord)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')
WHERE n.nspname || '.' || c.relname = ANY($1)
ORDER BY 1, i.indisprimary DESC, ic.relname`

// constraintsSQL reads the CHECK constraints and foreign keys of the named
// tables, and the foreign keys of any table that reference them.
const constraintsSQL = `
SELECT n.nspname || '.' || c.relname, coalesce(fn.nspname || '.' || fc.relname, ''),
       con.conname, con.contype::text, pg_get_constraintdef(con.oid), con.confdeltype::text,
       array(SELECT a.attname::text
               FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
              ORDER BY k.ord)
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.contype IN ('c', 'f') AND con.conparentid = 0
  AND (n.nspname || '.' || c.relname = ANY($1)
       OR (con.contype = 'f' AND fn.nspname || '.' || fc.relname = ANY($1)))
ORDER BY 1, con.conname`

const policiesSQL = `
SELECT n.nspname || '.' || c.relname, p.polname, p.polpermissive, p.polcmd::text,
       0::oid = ANY (p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) r WHERE r <> 0 AND pg_has_role(r, 'USAGE')),
       concat_ws(' ', pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname || '.' || c.relname = ANY($1)
ORDER BY 1, p.polname`

// triggersSQL reads user triggers: internal ones (foreign-key checks)
// are left out.
const triggersSQL = `
SELECT n.nspname || '.' || c.relname, t.tgname, t.tgtype, t.tgenabled::text, t.tgfoid::regprocedure::text, coalesce(p.prosrc, '')
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
WHERE NOT t.tgisinternal AND n.nspname || '.' || c.relname = ANY($1)
ORDER BY 1, t.tgname`

const schemasSQL = `
SELECT q.name, n.oid IS NOT NULL,
       coalesce(has_schema_privilege(n.oid, 'USAGE'), false), coalesce(has_schema_privilege(n.oid, 'CREATE'), false)
FROM unnest($1::text[]) AS q(name) LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = q.name`

const quoteSQL = `SELECT x, quote_ident(x) FROM unnest($1::text[]) AS x`

// load reads the role, the named tables with everything Compare checks,
// their schemas, and the quoted form of every identifier in idents.
func load(ctx context.Context, db Querier, names, schemaNames, idents []string) (*catalog, error) {
	c := &catalog{tables: map[string]*table{}, schemas: map[string]namespace{}, quoted: map[string]string{}}
	var version int
	found := false
	if err := each(ctx, db, "role", roleSQL, nil, func(r pgx.Rows) error {
		found = true
		return r.Scan(&c.role.name, &c.role.quoted, &c.role.db, &c.role.dbQuoted, &c.role.super, &c.role.bypassRLS,
			&c.role.temp, &c.role.createDB, &version)
	}); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("read catalog role: current_user is not in pg_roles")
	}
	c.role.setReplicationRole = c.role.super
	if version >= 150000 && !c.role.super {
		if err := each(ctx, db, "parameter privileges", setReplicationRoleSQL, nil, func(r pgx.Rows) error {
			return r.Scan(&c.role.setReplicationRole)
		}); err != nil {
			return nil, err
		}
	}
	if err := each(ctx, db, "tables", tablesSQL, []any{names}, func(r pgx.Rows) error {
		var name string
		var sel, ins, upd, del bool
		t := &table{cols: map[string]column{}}
		if err := r.Scan(&name, &t.quoted, &t.rls, &t.forceRLS, &t.ownedBy, &sel, &ins, &upd, &del); err != nil {
			return err
		}
		t.privilege = map[string]bool{"SELECT": sel, "INSERT": ins, "UPDATE": upd, "DELETE": del}
		c.tables[name] = t
		return nil
	}); err != nil {
		return nil, err
	}
	if err := each(ctx, db, "columns", columnsSQL, []any{names}, func(r pgx.Rows) error {
		var name, col, identity string
		var k column
		if err := r.Scan(&name, &col, &k.typ, &k.notNull, &k.hasDefault, &identity, &k.generated, &k.sequences, &k.seqUsable); err != nil {
			return err
		}
		if identity != "" {
			k.identity = identity[0]
		}
		if t := c.tables[name]; t != nil {
			t.cols[col] = k
			t.order = append(t.order, col)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := each(ctx, db, "indexes", indexesSQL, []any{names}, func(r pgx.Rows) error {
		var name, kind string
		var x index
		if err := r.Scan(&name, &x.name, &x.constraint, &kind, &x.unique, &x.valid, &x.deferrable, &x.expression, &x.predicate, &x.cols); err != nil {
			return err
		}
		if kind != "" {
			x.kind = kind[0]
		}
		if t := c.tables[name]; t != nil {
			t.indexes = append(t.indexes, x)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := each(ctx, db, "constraints", constraintsSQL, []any{names}, func(r pgx.Rows) error {
		var kind, onDelete string
		var k constraint
		if err := r.Scan(&k.from, &k.to, &k.name, &kind, &k.def, &onDelete, &k.cols); err != nil {
			return err
		}
		k.kind = kind[0]
		if onDelete != "" && onDelete != " " {
			k.onDelete = onDelete[0]
		}
		if k.kind == 'c' {
			if t := c.tables[k.from]; t != nil {
				t.checks = append(t.checks, k)
			}
			return nil
		}
		if t := c.tables[k.from]; t != nil {
			t.fksOut = append(t.fksOut, k)
		}
		if t := c.tables[k.to]; t != nil {
			t.fksIn = append(t.fksIn, k)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := each(ctx, db, "policies", policiesSQL, []any{names}, func(r pgx.Rows) error {
		var name, cmd string
		var p policy
		if err := r.Scan(&name, &p.name, &p.permissive, &cmd, &p.applies, &p.expr); err != nil {
			return err
		}
		p.cmd = cmd[0]
		if t := c.tables[name]; t != nil {
			t.policies = append(t.policies, p)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := each(ctx, db, "triggers", triggersSQL, []any{names}, func(r pgx.Rows) error {
		var name, enabled string
		var g trigger
		if err := r.Scan(&name, &g.name, &g.typ, &enabled, &g.fn, &g.src); err != nil {
			return err
		}
		g.enabled = enabled[0]
		if t := c.tables[name]; t != nil {
			t.triggers = append(t.triggers, g)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := each(ctx, db, "schemas", schemasSQL, []any{schemaNames}, func(r pgx.Rows) error {
		var name string
		var s namespace
		if err := r.Scan(&name, &s.exists, &s.usage, &s.create); err != nil {
			return err
		}
		c.schemas[name] = s
		return nil
	}); err != nil {
		return nil, err
	}
	if err := each(ctx, db, "identifiers", quoteSQL, []any{idents}, func(r pgx.Rows) error {
		var name, q string
		if err := r.Scan(&name, &q); err != nil {
			return err
		}
		c.quoted[name] = q
		return nil
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// each runs one catalog query and calls scan for every row.
func each(ctx context.Context, db Querier, what, sql string, args []any, scan func(pgx.Rows) error) error {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("read catalog %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("read catalog %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read catalog %s: %w", what, err)
	}
	return nil
}

// ident quotes an identifier as the server does (quote_ident), falling
// back to double quotes for one load did not read.
func (c *catalog) ident(s string) string {
	if q, ok := c.quoted[s]; ok {
		return q
	}
	return `"` + s + `"`
}

// tableIdent quotes "schema.table".
func (c *catalog) tableIdent(name string) string {
	if t := c.tables[name]; t != nil {
		return t.quoted
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			return c.ident(name[:i]) + "." + c.ident(name[i+1:])
		}
	}
	return c.ident(name)
}
