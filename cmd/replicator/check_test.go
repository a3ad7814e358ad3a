package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mongopg/replicator/internal/testenv"
)

func TestCheckOffline(t *testing.T) {
	t.Setenv("REPLICATOR_TARGET_URL", "")
	t.Run("valid", func(t *testing.T) {
		code, out, errs := run(t, "check", "--config", designConfig, "--offline")
		if code != 0 || !strings.Contains(out, "config ok (1 collections, 2 tables)") {
			t.Fatalf("code %d\n%s%s", code, out, errs)
		}
	})
	t.Run("every problem with its position", func(t *testing.T) {
		code, out, errs := run(t, "check", "--config", "../../replicator/config/testdata/bad.yaml")
		if code != 1 || !strings.Contains(errs, "13 config problem(s)") {
			t.Fatalf("code %d\n%s%s", code, out, errs)
		}
		for _, w := range []string{
			"bad.yaml:4:3: source.batchsize: unknown key",
			"bad.yaml:13:15: collections[0].key[1]: key column \"missing\" is not mapped in columns",
			"bad.yaml:18:20: collections[0].columns.age.path: path \"a..b\" has an empty segment",
			"bad.yaml:22:16: collections[0].children[0].table: table \"app.users\" is used twice",
		} {
			if !strings.Contains(out, w) {
				t.Errorf("missing %q in:\n%s", w, out)
			}
		}
	})
}

// TestSchemaThenCheck: the DDL `replicator schema` prints, applied to a
// real PostgreSQL, gives tables `replicator check` accepts; a dropped
// column or a changed type is then reported with its file position.
func TestSchemaThenCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	url := testenv.PostgresURL(t)
	pool := testenv.Pool(t, url)
	ctx := context.Background()
	cfgPath := filepath.Join(t.TempDir(), "replicator.yaml")
	src, err := os.ReadFile(designConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, src, 0o644); err != nil {
		t.Fatal(err)
	}

	code, ddl, errs := run(t, "schema", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("schema: %s", errs)
	}
	if _, err := pool.Exec(ctx, ddl); err != nil {
		t.Fatalf("apply schema: %v", err)
	}
	code, out, errs := run(t, "check", "--config", cfgPath, "--target", url)
	if code != 0 || !strings.Contains(out, "target ok: 2 tables match") {
		t.Fatalf("check after schema: code %d\n%s%s", code, out, errs)
	}
	// A trigger is a warning: printed, and the check still passes.
	if _, err := pool.Exec(ctx, `CREATE FUNCTION vuln.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER advisories_noop BEFORE UPDATE ON vuln.advisories FOR EACH ROW EXECUTE FUNCTION vuln.noop()`); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run(t, "check", "--config", cfgPath, "--target", url)
	if code != 0 || !strings.Contains(out, "warning: BEFORE UPDATE trigger advisories_noop") {
		t.Fatalf("check with a trigger: code %d\n%s%s", code, out, errs)
	}

	t.Setenv("REPLICATOR_TARGET_URL", url) // the config's own target is unreachable
	if _, err := pool.Exec(ctx, `ALTER TABLE vuln.advisories DROP COLUMN severity, ALTER cvss TYPE integer USING 0, DROP COLUMN _cdc_inc`); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run(t, "check", "--config", cfgPath)
	if code != 1 || !strings.Contains(errs, "3 schema problem(s)") {
		t.Fatalf("check: code %d\n%s%s", code, out, errs)
	}
	for _, w := range []string{
		cfgPath + ":15:21: vuln.advisories.severity: column does not exist (want text)",
		cfgPath + ":16:21: vuln.advisories.cvss: type integer cannot hold the mapped numeric values",
		cfgPath + ":10:12: vuln.advisories._cdc_inc: hidden version column is missing",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}
