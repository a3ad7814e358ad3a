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
// problems, and those of each require check (run before the mappings
// compile), are printed on w, one per line with its file position.
func loadMappings(path string, w io.Writer, require ...func(*config.Config) error) (*config.Config, []*transform.Mapping, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, reportConfig(err, w)
	}
	for _, r := range require {
		if err := r(cfg); err != nil {
			return nil, nil, reportConfig(err, w)
		}
	}
	ms, err := cfg.Mappings()
	if err != nil {
		return nil, nil, reportConfig(err, w)
	}
	return cfg, ms, nil
}

// loadBothSides is loadMappings for a command that reads the source and
// the target: both must be configured.
func loadBothSides(path string, stderr io.Writer) (*config.Config, []*transform.Mapping, error) {
	return loadMappings(path, stderr, func(c *config.Config) error { return errors.Join(c.RequireSource(), c.RequireTarget()) })
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
