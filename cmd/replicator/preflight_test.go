package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/internal/workload"
)

// TestCheckPreflight: `check --preflight` against servers that have what
// run needs reports every side ok; against an unreachable NATS, a
// standalone-looking source and a role without privileges it reports each
// problem in one run and exits non-zero.
func TestCheckPreflight(t *testing.T) {
	env := mongotest.New(t)
	nats := testenv.NATS(t)
	url := testenv.PostgresURL(t)
	pool := testenv.Pool(t, url)
	ns := workload.Namespaces{Advisories: env.Database("pfa") + ".advisories", Statements: env.Database("pfb") + ".statements", Runs: env.Database("pfb") + ".runs"}
	write := func(source, target, natsURL string) string {
		p := filepath.Join(t.TempDir(), "replicator.yaml")
		y := workload.ConfigYAML(workload.ConfigParams{Namespaces: ns, SourceURI: source, TargetURL: target, NatsURL: natsURL, DataDir: t.TempDir()})
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	good := write(env.URI, url, nats.URL)
	code, ddl, errs := run(t, "schema", "--config", good)
	if code != 0 {
		t.Fatalf("schema: %s", errs)
	}
	if _, err := pool.Exec(context.Background(), ddl); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, "migrate", "--config", good); code != 0 {
		t.Fatalf("migrate: %s%s", out, errs)
	}
	code, out, errs := run(t, "check", "--config", good, "--preflight", "--timeout", "10s")
	if code != 0 {
		t.Fatalf("preflight against working servers: code %d\n%s%s", code, out, errs)
	}
	for _, w := range []string{"source: ok: replica set", "source: ok: 3 collections readable with change streams", "buffer: ok: NATS at", "target: ok:"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}

	// A role that may log in but write nothing.
	ctx := context.Background()
	role := fmt.Sprintf("preflight_%d", os.Getpid())
	if _, err := pool.Exec(ctx, `CREATE ROLE `+role+` LOGIN PASSWORD 'pw'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP OWNED BY `+role+`; DROP ROLE `+role) })
	u := strings.Replace(url, "postgres://", "postgres://"+role+":pw@", 1)
	if i := strings.Index(url, "@"); i >= 0 {
		u = "postgres://" + role + ":pw@" + url[i+1:]
	}
	t.Logf("as %s", u)
	code, out, errs = run(t, "check", "--config", write("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500", u, "nats://127.0.0.1:1"),
		"--preflight", "--timeout", "3s")
	if code != 1 || !strings.Contains(errs, "pre-flight problem(s)") {
		t.Fatalf("preflight against broken servers: code %d\n%s%s", code, out, errs)
	}
	for _, w := range []string{"source: PROBLEM:", "buffer: PROBLEM:", "target: PROBLEM: " + role + " lacks"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	// SELECT alone is not enough to write.
	var schemaList string
	if err := pool.QueryRow(ctx, `SELECT string_agg(DISTINCT quote_ident(table_schema), ', ') FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`).Scan(&schemaList); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `GRANT USAGE ON SCHEMA `+schemaList+` TO `+role+`;
GRANT SELECT ON ALL TABLES IN SCHEMA `+schemaList+` TO `+role); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run(t, "check", "--config", write("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500", u, "nats://127.0.0.1:1"),
		"--preflight", "--timeout", "3s")
	if code != 1 || !strings.Contains(out, "target: PROBLEM: "+role+" lacks SELECT, INSERT, UPDATE or DELETE on") {
		t.Fatalf("preflight with SELECT only: code %d\n%s%s", code, out, errs)
	}
}
