package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/transform"
)

// TestDisableTriggers: with target.disable_triggers the writer's
// connections skip ordinary triggers; a role that may not set
// session_replication_role gets an error that says how to allow it.
func TestDisableTriggers(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	dbURL := testenv.PostgresURL(t)
	admin := testenv.Pool(t, dbURL)
	var db string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	role := "plain_" + db
	if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE TABLE t (id int PRIMARY KEY, touched bool NOT NULL DEFAULT false);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched = true; RETURN NEW; END $$;
CREATE TRIGGER t_touch BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION touch();
CREATE ROLE %s LOGIN PASSWORD 'pw'`, role)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE "+role) })

	cfg := &config.Config{Target: config.TargetConfig{URL: dbURL, DisableTriggers: true}}
	pool, err := OpenWriter(ctx, cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "INSERT INTO t (id) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var touched bool
	if err := admin.QueryRow(ctx, "SELECT touched FROM t WHERE id = 1").Scan(&touched); err != nil || touched {
		t.Fatalf("touched = %t (%v): the trigger fired under disable_triggers", touched, err)
	}
	cfg.Target.DisableTriggers = false
	plain, err := OpenWriter(ctx, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Exec(ctx, "INSERT INTO t (id) VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if err := admin.QueryRow(ctx, "SELECT touched FROM t WHERE id = 2").Scan(&touched); err != nil || !touched {
		t.Fatalf("touched = %t (%v): the trigger did not fire without disable_triggers", touched, err)
	}

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "pw")
	cfg = &config.Config{Target: config.TargetConfig{URL: u.String(), DisableTriggers: true}}
	_, err = OpenWriter(ctx, cfg, 1)
	if err == nil || !strings.Contains(err.Error(), "GRANT SET ON PARAMETER session_replication_role") || strings.Contains(err.Error(), "pw@") {
		t.Fatalf("err = %v, want the refusal with the GRANT that allows it, and no password", err)
	}
	if _, err := admin.Exec(ctx, "GRANT SET ON PARAMETER session_replication_role TO "+role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "REVOKE SET ON PARAMETER session_replication_role FROM "+role)
	})
	granted, err := OpenWriter(ctx, cfg, 1)
	if err != nil {
		t.Fatalf("after the GRANT: %v", err)
	}
	granted.Close()
}

// TestPrepareWithoutCreate: when every mapped table exists, Prepare runs
// no DDL, so a role without CREATE privileges can start the replicator.
func TestPrepareWithoutCreate(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	dbURL := testenv.PostgresURL(t)
	admin := testenv.Pool(t, dbURL)
	m, err := transform.Compile(transform.CollectionConfig{Source: "app.users", Table: "app.users"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Prepare(ctx, admin, []*transform.Mapping{m}); err != nil {
		t.Fatal(err)
	}
	var db string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	role := "nocreate_" + db
	if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE ROLE %[1]s LOGIN PASSWORD 'pw';
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON DATABASE %[2]s FROM PUBLIC;
GRANT USAGE ON SCHEMA app, replicator TO %[1]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app, replicator TO %[1]s`, role, db)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %[1]s; DROP ROLE %[1]s", role)) })
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "pw")
	pool, err := OpenTarget(ctx, u.String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := Prepare(ctx, pool, []*transform.Mapping{m}); err != nil {
		t.Fatalf("Prepare as a role without CREATE on existing tables: %v", err)
	}
	m2, err := transform.Compile(transform.CollectionConfig{Source: "app.orders", Table: "app.orders"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Prepare(ctx, pool, []*transform.Mapping{m, m2}); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Prepare of a missing table without CREATE: %v, want permission denied", err)
	}
}

// TestRunStoppedWhileStarting: a stop (SIGTERM cancels the context) that
// arrives while run is still starting is a clean stop, not an error.
func TestRunStoppedWhileStarting(t *testing.T) {
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
source: {uri: "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500"}
buffer: {data_dir: %q}
collections: [{source: app.users, table: app.users}]
`, t.TempDir())), "run.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, cfg, Options{Capture: true, DisableHTTP: true, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatalf("run stopped while starting: %v, want nil", err)
	}
}
