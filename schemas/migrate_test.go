package schemas

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 {
		t.Fatal("no embedded migrations")
	}
	for i := 1; i < len(migs); i++ {
		if migs[i].Version <= migs[i-1].Version {
			t.Errorf("migration versions %d and %d are not increasing", migs[i-1].Version, migs[i].Version)
		}
	}
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, url string)
	}{
		{"fresh database, then again (idempotent)", func(t *testing.T, url string) {
			pool := testenv.Pool(t, url)
			applied, err := Upgrade(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) == 0 {
				t.Fatal("nothing applied to a fresh database")
			}
			again, err := Upgrade(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != 0 {
				t.Errorf("second run applied %v", again)
			}
		}},
		{"concurrent runners", func(t *testing.T, url string) {
			pool := testenv.Pool(t, url)
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { errs[i] = Migrate(ctx, pool) })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		}},
		{"statements are idempotent even without the version table", func(t *testing.T, url string) {
			pool := testenv.Pool(t, url)
			if err := Migrate(ctx, pool); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `DELETE FROM replicator.schema_migrations`); err != nil {
				t.Fatal(err)
			}
			if err := Migrate(ctx, pool); err != nil {
				t.Fatalf("re-running every migration: %v", err)
			}
		}},
		{"a newer schema is refused", func(t *testing.T, url string) {
			pool := testenv.Pool(t, url)
			if err := Migrate(ctx, pool); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `INSERT INTO replicator.schema_migrations (version, name) VALUES (9999, 'future')`); err != nil {
				t.Fatal(err)
			}
			if err := Migrate(ctx, pool); err == nil {
				t.Fatal("migrating a database from a newer build succeeded")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := testenv.PostgresURL(t)
			tc.run(t, url)
			pool := testenv.Pool(t, url)
			v, err := Current(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			migs, _ := Migrations()
			if v < migs[len(migs)-1].Version {
				t.Errorf("current version %d", v)
			}
			for _, table := range []string{"apply_checkpoints", "tombstones", "dead_letters", "control_events", "schema_migrations"} {
				var ok bool
				if err := pool.QueryRow(ctx, `SELECT to_regclass('replicator.' || $1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
					t.Errorf("table replicator.%s missing (%v)", table, err)
				}
			}
		})
	}
}

func TestCurrentOnEmptyDatabase(t *testing.T) {
	v, err := Current(context.Background(), testenv.Postgres(t))
	if err != nil || v != 0 {
		t.Fatalf("Current on an empty database: %d, %v", v, err)
	}
}

// TestMigrateCurrentNeedsNoCreate: a role that may read the version table
// but create nothing (no CREATE on the database, none on the schema)
// migrates a database whose metadata schema is already current.
func TestMigrateCurrentNeedsNoCreate(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	admin := testenv.Pool(t, url)
	if err := Migrate(ctx, admin); err != nil {
		t.Fatal(err)
	}
	pool := limitedRole(t, admin, url, `GRANT USAGE ON SCHEMA replicator TO %[1]s;
GRANT SELECT ON replicator.schema_migrations TO %[1]s`)
	var create bool
	if err := pool.QueryRow(ctx, `SELECT has_database_privilege(current_database(), 'CREATE') OR has_schema_privilege('replicator', 'CREATE')`).Scan(&create); err != nil || create {
		t.Fatalf("the role may create: %v, %v", create, err)
	}
	applied, err := Upgrade(ctx, pool)
	if err != nil {
		t.Fatalf("migrating a current schema without CREATE: %v", err)
	}
	if len(applied) != 0 {
		t.Errorf("applied %v to a current schema", applied)
	}

	// A pending migration still needs its privileges (CREATE, or owning
	// the table it indexes), and says so (SQLSTATE 42501).
	if _, err := admin.Exec(ctx, `DELETE FROM replicator.schema_migrations WHERE version = (SELECT max(version) FROM replicator.schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	if _, err := Upgrade(ctx, pool); err == nil || !strings.Contains(err.Error(), "42501") {
		t.Errorf("a pending migration without the privilege: %v", err)
	}
}

// TestMigrateIntoPreparedSchema: an administrator creates the schema and
// grants CREATE on it; a role without CREATE on the database migrates.
func TestMigrateIntoPreparedSchema(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	admin := testenv.Pool(t, url)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA replicator`); err != nil {
		t.Fatal(err)
	}
	pool := limitedRole(t, admin, url, `GRANT USAGE, CREATE ON SCHEMA replicator TO %[1]s`)
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("migrating into a prepared schema without CREATE on the database: %v", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("again: %v", err)
	}
}

// limitedRole creates a login role that may do only what grants (a format
// with the role's name as %[1]s) allow, on a database where PUBLIC may
// create nothing, and returns a pool connected as that role.
func limitedRole(t *testing.T, admin *pgxpool.Pool, url, grants string) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	role := "migrate_" + strconv.Itoa(os.Getpid()) + "_" + strings.ToLower(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if _, err := admin.Exec(ctx, `CREATE ROLE `+role+` LOGIN;
REVOKE CREATE, TEMP ON DATABASE `+pcfg.ConnConfig.Database+` FROM PUBLIC;
`+fmt.Sprintf(grants, role)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), `DROP OWNED BY `+role+`; DROP ROLE `+role)
	})
	pcfg.ConnConfig.User = role
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
