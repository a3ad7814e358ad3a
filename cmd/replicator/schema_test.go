package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/transform"
)

const designConfig = "../../replicator/config/testdata/design.yaml"

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runMain(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSchemaCommand(t *testing.T) {
	cfg, err := config.Load(designConfig)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := cfg.Mappings()
	if err != nil {
		t.Fatal(err)
	}
	want := transform.DDL(ms)

	t.Run("stdout", func(t *testing.T) {
		code, out, errs := run(t, "schema", "--config", designConfig)
		if code != 0 || out != want {
			t.Fatalf("code %d, stderr %s, stdout:\n%s", code, errs, out)
		}
		for _, s := range []string{`CREATE SCHEMA IF NOT EXISTS "vuln";`, `"_cdc_ts" bigint NOT NULL`, `REFERENCES "vuln"."advisories" ("id") ON DELETE CASCADE`} {
			if !strings.Contains(out, s) {
				t.Errorf("DDL lacks %s", s)
			}
		}
	})
	t.Run("out file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "schema.sql")
		if code, _, errs := run(t, "schema", "--config", designConfig, "--out", path); code != 0 {
			t.Fatalf("code %d: %s", code, errs)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Fatalf("file: %v\n%s", err, got)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		code, _, errs := run(t, "schema", "--config", "../../replicator/config/testdata/bad.yaml")
		if code != 1 || !strings.Contains(errs, "bad.yaml:17:33: collections[0].columns.name.type: unknown type") {
			t.Fatalf("code %d, stderr:\n%s", code, errs)
		}
	})
	t.Run("usage", func(t *testing.T) {
		if code, _, _ := run(t, "schema", "extra"); code != 2 {
			t.Fatalf("code %d, want 2", code)
		}
	})
}
