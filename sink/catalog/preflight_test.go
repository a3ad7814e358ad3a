package catalog

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/transform"
)

// appSchema is a schema written the way applications write theirs: a
// surrogate uuid primary key with the business key as a UNIQUE constraint
// that includes tenant_id, FORCEd row-level security with a policy on
// app.tenant_id, a BEFORE UPDATE trigger on updated_at, a CHECK, a foreign
// key to a table no mapping writes, and a generated column.
const appSchema = `
CREATE SCHEMA app;
CREATE TABLE app.owners (
    id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL
);
CREATE TABLE app.projects (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text        NOT NULL,
    name       text        NOT NULL,
    title      text,
    priority   integer     CHECK (priority BETWEEN 0 AND 9),
    owner_id   uuid        REFERENCES app.owners (id),
    search     tsvector    GENERATED ALWAYS AS (to_tsvector('simple', coalesce(title, ''))) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_tenant_name UNIQUE (tenant_id, name)
);
CREATE TABLE app.project_members (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES app.projects (id) ON DELETE CASCADE,
    tenant_id  text NOT NULL,
    user_name  text NOT NULL,
    CONSTRAINT project_members_user UNIQUE (project_id, user_name)
);
ALTER TABLE app.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.projects FORCE ROW LEVEL SECURITY;
CREATE POLICY projects_tenant_isolation ON app.projects
    USING (tenant_id = current_setting('app.tenant_id')) WITH CHECK (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE app.project_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.project_members FORCE ROW LEVEL SECURITY;
CREATE POLICY project_members_tenant_isolation ON app.project_members
    USING (tenant_id = current_setting('app.tenant_id'));
CREATE FUNCTION app.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER projects_touch BEFORE UPDATE ON app.projects
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
`

// appMapping maps into appSchema; setting is tenant_id.setting.
func appMapping(t *testing.T, setting string) []transform.TableDef {
	t.Helper()
	// The application's tables have no _cdc_* columns; with a setting the
	// tenant of a delete is kept beside the version too.
	versions := "versions: table"
	src := `
source: app.projects
table: app.projects
key: [tenant_id, name]
columns:
  id:         { uuid5: { from: [_id] }, type: uuid }
  tenant_id:  { path: tenantId, type: text, required: true }
  name:       { path: _id, type: text }
  title:      { path: title, type: text }
  priority:   { path: priority, type: integer }
  owner_id:   { path: ownerId, type: uuid }
  updated_at: { path: updatedAt, type: timestamptz, required: true }
tenant_id: { column: tenant_id, setting: "` + setting + `" }
` + versions + `
children:
  - path: members
    table: app.project_members
    parent_key: project_id
    references: id
    key: [id]
    ordinal: none
    columns:
      id:        { uuid5: { from: [$parent, user] }, type: uuid }
      user_name: { path: user, type: text, required: true }
`
	var cfg transform.CollectionConfig
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	m, err := transform.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m.Tables()
}

// want is one expected problem: its table, column and severity, and a
// part of its message.
type want struct {
	table, column string
	sev           Severity
	msg           string
}

// appWarnings are the problems every role sees on appSchema: warnings
// only (none for the primary key on id besides the key: id is a uuid5 of
// _id, which no two documents share). maySet: the role may set
// session_replication_role.
func appWarnings(maySet bool) []want {
	trigger := "the role %[1]s may not: it needs superuser or GRANT SET ON PARAMETER session_replication_role TO %[1]s)"
	if maySet {
		trigger = "the role %[1]s may set it)"
	}
	return []want{
		{"app.projects", "priority", Warning, "CHECK constraint projects_priority_check CHECK (((priority >= 0) AND (priority <= 9))): a document whose values violate it is dead-lettered (23514)"},
		{"app.projects", "owner_id", Warning, "foreign key projects_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES app.owners(id): no mapping writes app.owners, so a row that references a row missing there is dead-lettered (23503)"},
		{"app.projects", "updated_at", Warning, "BEFORE UPDATE trigger projects_touch (FOR EACH ROW, app.touch_updated_at()) fires on replicated writes and sets updated_at, which the mapping writes: the row keeps the trigger's value, not the source's; target.disable_triggers: true applies without it (session_replication_role = replica, which also skips foreign-key checks; " + trigger},
		{"app.project_members", "", Warning, "UNIQUE constraint project_members_user on (project_id, user_name) besides the key (id)"},
	}
}

// Grants for appSchema, formats of the role (%[1]s) and the database
// (%[2]s): appGrants for the mapped tables, metaGrants for the metadata
// schema. Together they are everything the replicator needs.
const (
	appGrants = `
GRANT USAGE ON SCHEMA app TO %[1]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.projects, app.project_members TO %[1]s;
GRANT TEMP ON DATABASE %[2]s TO %[1]s;`
	metaGrants = `
GRANT USAGE ON SCHEMA replicator TO %[1]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA replicator TO %[1]s;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA replicator TO %[1]s;`
	grants = appGrants + metaGrants
)

func rlsError(table, policy string) want {
	return want{table, "", Error, "FORCE ROW LEVEL SECURITY is set and the role %[1]s does not bypass RLS (not a superuser, no BYPASSRLS), so its writes fail the policies, which read a session variable the sink does not set, and COPY into the table is refused (0A000): set tenant_id.setting to the variable the policies read (policy " + policy + " reads app.tenant_id), or run as a role with BYPASSRLS (ALTER ROLE %[1]s BYPASSRLS)"}
}

// TestPreflight checks appSchema as several roles, and variations of it.
func TestPreflight(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	migs, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	latest := migs[len(migs)-1].Version
	tests := []struct {
		name      string
		role      string // "" connects as the superuser; else CREATE ROLE's options
		grants    string // a format: %[1]s the role, %[2]s the database
		noMigrate bool   // leave the metadata schema out
		setup     string // run by the superuser last, a format as grants
		setting   string
		extra     []transform.TableDef // tables of other mappings
		want      []want
	}{
		{
			name: "superuser",
			want: appWarnings(true),
		},
		{
			name:   "role with BYPASSRLS and the grants",
			role:   "BYPASSRLS",
			grants: grants + `GRANT SET ON PARAMETER session_replication_role TO %[1]s;`,
			want:   appWarnings(true),
		},
		{
			name:   "role without BYPASSRLS, no tenant setting",
			role:   "NOBYPASSRLS",
			grants: grants,
			want: append([]want{
				rlsError("app.projects", "projects_tenant_isolation"),
				rlsError("app.project_members", "project_members_tenant_isolation"),
			}, appWarnings(false)...),
		},
		{
			name:    "role without BYPASSRLS, with the tenant setting",
			role:    "NOBYPASSRLS",
			grants:  grants,
			setting: "app.tenant_id",
			want:    appWarnings(false),
		},
		{
			name:    "a tenant setting no policy reads",
			role:    "NOBYPASSRLS",
			grants:  grants,
			setting: "app.tenant",
			want: append([]want{
				{"app.projects", "", Warning, "tenant_id.setting is app.tenant, but no policy of this table reads it (policy projects_tenant_isolation reads app.tenant_id): set it to the variable the policies read"},
				{"app.project_members", "", Warning, "tenant_id.setting is app.tenant, but no policy of this table reads it (policy project_members_tenant_isolation reads app.tenant_id)"},
			}, appWarnings(false)...),
		},
		{
			// Child rows are deleted and inserted, never updated: only
			// the root table needs UPDATE.
			name:   "role missing UPDATE and TEMP",
			role:   "BYPASSRLS",
			grants: grants,
			setup:  `REVOKE UPDATE ON app.projects, app.project_members FROM %[1]s; REVOKE TEMP ON DATABASE %[2]s FROM %[1]s;`,
			want: append([]want{
				{"app.projects", "", Error, "the role %[1]s lacks UPDATE on the table: GRANT UPDATE ON app.projects TO %[1]s"},
				{"", "", Error, "the role %[1]s lacks TEMP on database %[2]s, and the sink stages every batch in temporary tables: GRANT TEMP ON DATABASE %[2]s TO %[1]s"},
			}, appWarnings(false)...),
		},
		{
			name:   "no USAGE on the schema, a serial column left to its default",
			role:   "BYPASSRLS",
			grants: grants,
			setup:  `REVOKE USAGE ON SCHEMA app FROM %[1]s; ALTER TABLE app.projects ADD n bigserial;`,
			want: append([]want{
				{"app.projects", "", Error, "the role %[1]s lacks USAGE on schema app: GRANT USAGE ON SCHEMA app TO %[1]s"},
				{"app.projects", "n", Error, "the column's default calls nextval, and the role %[1]s may not use app.projects_n_seq: GRANT USAGE ON SEQUENCE app.projects_n_seq TO %[1]s"},
			}, appWarnings(false)...),
		},
		{
			name:   "a missing table the role may not create",
			role:   "BYPASSRLS",
			grants: grants,
			setup:  `DROP TABLE app.project_members`,
			want: append([]want{
				{"app.project_members", "", Error, "table does not exist (create it with: replicator schema); the role %[1]s may not create it: GRANT CREATE ON SCHEMA app TO %[1]s"},
			}, appWarnings(false)[:3]...),
		},
		{
			name:      "no metadata schema, and the role may not create it",
			role:      "BYPASSRLS",
			grants:    appGrants,
			noMigrate: true,
			want: append([]want{
				{"replicator", "", Error, "the metadata schema does not exist and the role %[1]s may not create it: GRANT CREATE ON DATABASE %[2]s TO %[1]s"},
			}, appWarnings(false)...),
		},
		{
			name:      "no metadata schema, and the role may create it",
			role:      "BYPASSRLS",
			grants:    appGrants + `GRANT CREATE ON DATABASE %[2]s TO %[1]s;`,
			noMigrate: true,
			want:      appWarnings(false),
		},
		{
			name:   "metadata schema behind this build, and the role may not migrate it",
			role:   "BYPASSRLS",
			grants: grants,
			setup:  fmt.Sprintf(`DELETE FROM replicator.schema_migrations WHERE version = %d`, latest),
			want: append([]want{
				{"replicator", "", Error, fmt.Sprintf("the metadata schema is at version %d and this build needs %d, which the role %%[1]s may not migrate: run replicator migrate as the owner of the schema's tables first", migs[len(migs)-2].Version, latest)},
			}, appWarnings(false)...),
		},
		{
			name:   "no privileges on the metadata schema",
			role:   "BYPASSRLS",
			grants: appGrants,
			want:   append(metadataGrantProblems(), appWarnings(false)...),
		},
		{
			name:   "row-level security without FORCE: owner and not owner",
			role:   "NOBYPASSRLS",
			grants: grants,
			setup: `ALTER TABLE app.projects NO FORCE ROW LEVEL SECURITY, OWNER TO %[1]s;
ALTER TABLE app.project_members NO FORCE ROW LEVEL SECURITY;`,
			want: append([]want{
				{"app.project_members", "", Error, "row-level security is enabled and the role %[1]s neither owns the table nor bypasses RLS (not a superuser, no BYPASSRLS), so its writes fail the policies"},
			}, appWarnings(false)...),
		},
		{
			name:    "policies that refuse writes",
			role:    "NOBYPASSRLS",
			grants:  grants,
			setting: "app.tenant_id",
			setup: `DROP POLICY project_members_tenant_isolation ON app.project_members;
DROP POLICY projects_tenant_isolation ON app.projects;
CREATE POLICY projects_read ON app.projects FOR SELECT USING (true);
CREATE POLICY projects_admin ON app.projects AS RESTRICTIVE USING (true) WITH CHECK (true);`,
			want: append([]want{
				{"app.projects", "", Warning, "tenant_id.setting is app.tenant_id, but no policy of this table reads it with current_setting directly"},
				{"app.project_members", "", Warning, "tenant_id.setting is app.tenant_id, but no policy of this table reads it with current_setting directly"},
				{"app.projects", "", Error, "FORCE ROW LEVEL SECURITY is set and the role %[1]s does not bypass RLS (not a superuser, no BYPASSRLS), and no permissive policy lets it INSERT (the sink needs SELECT, INSERT, UPDATE, DELETE): CREATE POLICY ... ON app.projects FOR INSERT TO %[1]s ..., or run as a role with BYPASSRLS"},
				{"app.projects", "", Error, "no permissive policy lets it UPDATE"},
				{"app.projects", "", Error, "no permissive policy lets it DELETE"},
				{"app.project_members", "", Error, "FORCE ROW LEVEL SECURITY is set and the role %[1]s does not bypass RLS (not a superuser, no BYPASSRLS), and the table has no policy, so every row is refused: add a policy, or run as a role with BYPASSRLS (ALTER ROLE %[1]s BYPASSRLS)"},
			}, appWarnings(false)...),
		},
		{
			name: "foreign keys from other tables and to another mapping's table",
			setup: `CREATE TABLE app.audit (member_id uuid REFERENCES app.project_members (id));
CREATE TABLE app.pins (project_id uuid REFERENCES app.projects (id) ON DELETE CASCADE);
CREATE TABLE app.stars (project_id uuid REFERENCES app.projects (id));
CREATE TABLE app.notes (member_id uuid REFERENCES app.project_members (id) ON DELETE CASCADE);
ALTER TABLE app.owners ADD _cdc_ts bigint NOT NULL, ADD _cdc_inc bigint NOT NULL, ADD _cdc_seq bigint NOT NULL;`,
			extra: []transform.TableDef{{Name: "app.owners", Key: []string{"id"},
				Columns: []transform.ColumnDef{{Name: "id", Type: "uuid", NotNull: true}, {Name: "name", Type: "text", NotNull: true}}}},
			want: append(append([]want{
				{"app.projects", "owner_id", Warning, "foreign key projects_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES app.owners(id): app.owners is written by another mapping, and collections apply independently, so a row can arrive before the row it references and is then dead-lettered (23503)"},
				{"app.projects", "", Warning, "app.stars references this table (foreign key stars_project_id_fkey FOREIGN KEY (project_id) REFERENCES app.projects(id) ON DELETE NO ACTION): a replicated delete of a row that rows of app.stars reference fails and is dead-lettered (23503)"},
				{"app.project_members", "", Warning, "app.audit references this table (foreign key audit_member_id_fkey FOREIGN KEY (member_id) REFERENCES app.project_members(id) ON DELETE NO ACTION): this table's rows are deleted and inserted again whenever their parent changes, so such a change fails while rows of app.audit reference them and is dead-lettered (23503)"},
				{"app.owners", "", Warning, "app.projects references this table (foreign key projects_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES app.owners(id) ON DELETE NO ACTION): a replicated delete of a row that rows of app.projects reference fails and is dead-lettered (23503)"},
				{"app.project_members", "", Warning, "app.notes references this table (foreign key notes_member_id_fkey FOREIGN KEY (member_id) REFERENCES app.project_members(id) ON DELETE CASCADE): this table's rows are deleted and inserted again whenever their parent changes, and each time the rows of app.notes that reference them are deleted"},
			}, appWarnings(true)[:1]...), appWarnings(true)[2:]...),
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			url := testenv.PostgresURL(t)
			admin := testenv.Pool(t, url)
			if _, err := admin.Exec(ctx, appSchema); err != nil {
				t.Fatal(err)
			}
			if !tt.noMigrate {
				if err := schemas.Migrate(ctx, admin); err != nil {
					t.Fatal(err)
				}
			}
			var db Querier = admin
			role, dbName := "postgres", ""
			if tt.role != "" {
				role = fmt.Sprintf("catalog_%d_%d", os.Getpid(), i)
				db, dbName = connectAs(t, admin, url, role, tt.role, tt.grants)
			}
			if tt.setup != "" {
				if _, err := admin.Exec(ctx, format(tt.setup, role, dbName)); err != nil {
					t.Fatal(err)
				}
			}
			ps, err := Compare(ctx, db, append(appMapping(t, tt.setting), tt.extra...))
			if err != nil {
				t.Fatal(err)
			}
			expectProblems(t, ps, tt.want, role, dbName)
		})
	}
}

// metadataGrantProblems are the problems of a role with no privileges on
// the metadata schema.
func metadataGrantProblems() []want {
	out := []want{{"replicator", "", Error, "the role %[1]s lacks USAGE on schema replicator: GRANT USAGE ON SCHEMA replicator TO %[1]s"}}
	for _, m := range metadataTables {
		list := strings.Join(m.privs, ", ")
		out = append(out, want{"replicator." + m.name, "", Error,
			"the role %[1]s lacks " + list + " on the table: GRANT " + list + " ON replicator." + m.name + " TO %[1]s"})
	}
	for _, table := range []string{"dead_letters", "control_events", "snapshot_runs"} {
		seq := "replicator." + table + "_id_seq"
		out = append(out, want{"replicator." + table, "id", Error,
			"the column's default calls nextval, and the role %[1]s may not use " + seq + ": GRANT USAGE ON SEQUENCE " + seq + " TO %[1]s"})
	}
	return out
}

// TestMetadataTablesListed: metadataTables names every table the
// migrations create, so Compare checks the privileges on each.
func TestMetadataTablesListed(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool := testenv.Postgres(t)
	if err := schemas.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1`, schemas.Schema)
	if err != nil {
		t.Fatal(err)
	}
	created, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range metadataTables {
		listed[m.name] = true
	}
	for _, name := range created {
		if !listed[name] {
			t.Errorf("the migrations create %s.%s, which metadataTables does not list", schemas.Schema, name)
		}
		delete(listed, name)
	}
	for name := range listed {
		t.Errorf("metadataTables lists %s, which the migrations do not create", name)
	}
}

// expectProblems checks that ps are exactly want, in any order; want's
// messages are formats of the role (%[1]s) and the database (%[2]s).
func expectProblems(t *testing.T, ps []Problem, want []want, role, db string) {
	t.Helper()
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("[%s] %s", p.Severity, p))
	}
	all := strings.Join(got, "\n")
	used := make([]bool, len(ps))
	for _, w := range want {
		msg := format(w.msg, role, db)
		found := false
		for i, p := range ps {
			if !used[i] && p.Table == w.table && p.Column == w.column && p.Severity == w.sev && strings.Contains(p.Msg, msg) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("missing %s %s (column %q): %q in:\n%s", w.sev, w.table, w.column, msg, all)
		}
	}
	for i, p := range ps {
		if !used[i] {
			t.Errorf("unexpected: [%s] %s", p.Severity, p)
		}
	}
}

// format replaces %[1]s with role and %[2]s with db.
func format(s, role, db string) string {
	return strings.NewReplacer("%[1]s", role, "%[2]s", db).Replace(s)
}

// connectAs creates a login role with options and grants (a format of
// the role and the database name) on a database where PUBLIC may create
// nothing and use no temporary tables, and connects as it.
func connectAs(t *testing.T, admin Execer, url, role, options, grants string) (*pgx.Conn, string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, format(`CREATE ROLE %[1]s LOGIN `+options+`;
REVOKE CREATE, TEMP ON DATABASE %[2]s FROM PUBLIC;
`+grants, role, cfg.Database)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), `DROP OWNED BY `+role+`; DROP ROLE `+role)
	})
	cfg.User = role
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn, cfg.Database
}

// Execer runs statements (*pgxpool.Pool).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}
