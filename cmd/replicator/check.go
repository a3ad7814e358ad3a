package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/sink/catalog"
	"github.com/mongopg/replicator/transform"
)

func checkCommand() command {
	return command{
		name:    "check",
		summary: "validate the config and compare the mappings with the target database",
		run:     runCheck,
	}
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Validate the config (unknown keys, bad paths, unknown types, duplicate tables,\n" +
		"unmapped key columns) and, given a target URL, compare every mapped table with the\n" +
		"live PostgreSQL schema. With --preflight it also checks everything run needs\n" +
		"outside the file: the source, the buffer and the target's privileges. Every\n" +
		"problem is printed (config problems with their file position); the exit status\n" +
		"is non-zero if there is any."
	fs := newFlagSet("check", "check --config FILE [--target URL | --offline] [--preflight]", summary, stderr)
	cfgPath := fs.String("config", "replicator.yaml", "config `file`")
	target := fs.String("target", "", "PostgreSQL `URL` to compare with (default: target.url or $"+config.EnvTargetURL+")")
	offline := fs.Bool("offline", false, "only validate the config, even if a target URL is configured")
	timeout := fs.Duration("timeout", 30*time.Second, "time limit for reading the target catalog (and, with --preflight, for each side to answer)")
	preflight := fs.Bool("preflight", false, "also check everything run needs outside the file: MongoDB (replica set or mongos, change streams, read access, oplog window against the snapshot), the buffer (NATS and its credentials, or the data directory) and the target's privileges; every problem at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, ms, err := loadMappings(*cfgPath, stdout)
	if err != nil {
		return err
	}
	var tables []transform.TableDef
	for _, m := range ms {
		tables = append(tables, m.Tables()...)
	}
	fmt.Fprintf(stdout, "%s: config ok (%d collections, %d tables)\n", cfg.File, len(ms), len(tables))

	url := *target
	if url == "" {
		url = cfg.Target.URL
	}
	var preflightProblems int
	if *preflight && !*offline {
		pcfg := *cfg
		pcfg.Target.URL = url
		for _, f := range replicator.Preflight(ctx, &pcfg, ms, *timeout) {
			fmt.Fprintln(stdout, f)
			if f.Problem {
				preflightProblems++
			}
		}
	}
	if *offline || url == "" {
		if preflightProblems > 0 {
			return fmt.Errorf("%d pre-flight problem(s)", preflightProblems)
		}
		fmt.Fprintln(stdout, "target not checked (no --target or target.url)")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("target: %w", err) // pgx says "failed to connect to …"
	}
	defer conn.Close(context.Background())
	ps, err := catalog.CompareWith(ctx, conn, tables, catalog.Options{DisableTriggers: cfg.Target.DisableTriggers})
	if err != nil {
		return err
	}
	for _, p := range ps {
		fmt.Fprintf(stdout, "%s: %s\n", cfg.Position(cfg.ColumnKey(p.Table, p.Column)), p)
	}
	// Warnings are printed; only errors fail the check.
	ps = catalog.Errors(ps)
	if len(ps) > 0 {
		if preflightProblems > 0 {
			return fmt.Errorf("%d schema problem(s) in the target database; %d pre-flight problem(s)", len(ps), preflightProblems)
		}
		return fmt.Errorf("%d schema problem(s) in the target database", len(ps))
	}
	fmt.Fprintf(stdout, "target ok: %d tables match\n", len(tables))
	if preflightProblems > 0 {
		return fmt.Errorf("%d pre-flight problem(s)", preflightProblems)
	}
	return nil
}
