package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/schemas"
)

func migrateCommand() command {
	return command{
		name:    "migrate",
		summary: "create or upgrade the replicator's metadata schema in PostgreSQL",
		run:     runMigrate,
	}
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Create or upgrade the metadata schema \"replicator\" (apply checkpoints,\n" +
		"tombstones, dead letters) in the target database. Idempotent, and safe to run\n" +
		"while other replicas start: migrations are versioned and run under a lock."
	fs := newFlagSet("migrate", "migrate --config FILE | --target URL", summary, stderr)
	var tf targetFlags
	tf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	pool, _, err := tf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := schemas.Upgrade(ctx, pool)
	if err != nil {
		return err
	}
	v, err := schemas.Current(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "metadata schema %s is current (version %d)\n", schemas.Schema, v)
		return nil
	}
	fmt.Fprintf(stdout, "metadata schema %s upgraded to version %d (applied %v)\n", schemas.Schema, v, applied)
	return nil
}

// targetFlags selects the target database: --target wins over the config
// file's target.url (and its REPLICATOR_TARGET_URL override).
type targetFlags struct {
	config, target string
	targetSet      bool
}

func (f *targetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "replicator.yaml", "config `file` (its target.url and buffer sections are used)")
	fs.Func("target", "PostgreSQL `URL` (instead of the config file's target.url)", func(s string) error {
		f.target, f.targetSet = s, true
		return nil
	})
}

// load reads the config file; with --target and no readable file it
// returns nil (commands needing the file say so).
func (f *targetFlags) load(stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Load(f.config)
	if err != nil {
		if f.targetSet {
			return nil, nil
		}
		return nil, reportConfig(err, stderr)
	}
	return cfg, nil
}

// open loads the config (when present) and connects to the target.
func (f *targetFlags) open(ctx context.Context, stderr io.Writer) (*pgxpool.Pool, *config.Config, error) {
	cfg, err := f.load(stderr)
	if err != nil {
		return nil, nil, err
	}
	url := f.target
	if !f.targetSet {
		if err := cfg.RequireTarget(); err != nil {
			return nil, nil, reportConfig(err, stderr)
		}
		url = cfg.Target.URL
	}
	conns := 0
	if cfg != nil {
		conns = replicator.TargetConns(cfg, 0)
	}
	pool, err := replicator.OpenTarget(ctx, url, conns)
	if err != nil {
		return nil, nil, err
	}
	return pool, cfg, nil
}
