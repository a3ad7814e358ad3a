package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/transform"
)

func schemaCommand() command {
	return command{
		name:    "schema",
		summary: "print the PostgreSQL DDL for every mapped collection",
		run:     runSchema,
	}
}

func runSchema(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Print CREATE SCHEMA / CREATE TABLE IF NOT EXISTS statements for every mapped\n" +
		"collection (root tables with the hidden version columns, child tables with\n" +
		"foreign keys), deterministic and ready for psql -f."
	fs := newFlagSet("schema", "schema --config FILE [--out FILE]", summary, stderr)
	cfgPath := fs.String("config", "replicator.yaml", "config `file`")
	out := fs.String("out", "", "write the DDL to this `file` instead of standard output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	_, ms, err := loadMappings(*cfgPath, stderr)
	if err != nil {
		return err
	}
	ddl := transform.DDL(ms)
	if *out == "" {
		_, err = io.WriteString(stdout, ddl)
		return err
	}
	if err := os.WriteFile(*out, []byte(ddl), 0o644); err != nil {
		return fmt.Errorf("write ddl: %w", err)
	}
	return nil
}

// loadMappings loads the config file and compiles its collections; config
// problems are printed on w, one per line with its file position.
func loadMappings(path string, w io.Writer) (*config.Config, []*transform.Mapping, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, reportConfig(err, w)
	}
	ms, err := cfg.Mappings()
	if err != nil {
		return nil, nil, reportConfig(err, w)
	}
	return cfg, ms, nil
}

// reportConfig prints each config problem on its own line and returns a
// short summary error.
func reportConfig(err error, stderr io.Writer) error {
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(stderr, p)
		}
		return fmt.Errorf("%d config problem(s)", len(ps))
	}
	return err
}
