package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/snapshot"
)

func snapshotCommand() command {
	return command{
		name:    "snapshot",
		summary: "copy every configured collection (or some) to PostgreSQL, resumably",
		run:     runSnapshot,
	}
}

func runSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Copy the configured collections to PostgreSQL as of a cluster time T0, in\n" +
		"parallel _id-range chunks, with the version guard, so that streaming (run or\n" +
		"capture + apply with the same config) may apply changes at the same time.\n" +
		"Progress is checkpointed per chunk: run it again after a crash or Ctrl-C and\n" +
		"it resumes with the chunks it had not finished."
	fs := newFlagSet("snapshot", "snapshot --config FILE [--collection DB.COLL,...]", summary, stderr)
	o := addSnapshotFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	env, err := o.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer env.close()
	return interrupted(ctx, "snapshot", capture.SourceError(env.cfg.Source.URI, snapshot.Run(ctx, env.deps, env.scfg)))
}

// interrupted turns the error of a run stopped by SIGINT/SIGTERM into a
// hint that running the command again resumes it.
func interrupted(ctx context.Context, name string, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted; finished chunks are kept: run the same %s command again to resume", name)
	}
	return err
}

// snapshotFlags are the flags snapshot and resync share.
type snapshotFlags struct {
	config      *string
	collections *string
	parallelism *int
	chunkSize   *int
	progress    *string
	listen      *string
}

func addSnapshotFlags(fs *flag.FlagSet) *snapshotFlags {
	return &snapshotFlags{
		config:      fs.String("config", "replicator.yaml", "config `file`"),
		collections: fs.String("collection", "", "only these source `namespaces` (db.collection, comma-separated)"),
		parallelism: fs.Int("parallelism", 0, "chunks copied at once (default: snapshot.parallelism)"),
		chunkSize:   fs.Int("chunk-size", 0, "documents per chunk of a new plan (default: snapshot.chunk_size)"),
		progress:    fs.String("progress", "auto", "progress display: bar, log or auto (bar on a terminal)"),
		listen:      fs.String("metrics-listen", "", "serve /metrics on this `address` while running"),
	}
}

// snapshotEnv holds what a snapshot or resync command opened.
type snapshotEnv struct {
	cfg    *config.Config
	deps   snapshot.Deps
	scfg   snapshot.Config
	log    *slog.Logger
	closer []func()
}

func (e *snapshotEnv) close() {
	for i := len(e.closer) - 1; i >= 0; i-- {
		e.closer[i]()
	}
}

// open loads the config, connects to both sides, creates the metadata
// schema and missing target tables, and fills the snapshot settings.
func (o *snapshotFlags) open(ctx context.Context, stderr io.Writer) (*snapshotEnv, error) {
	cfg, maps, err := loadBothSides(*o.config, stderr)
	if err != nil {
		return nil, err
	}
	log, err := replicator.NewLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return nil, err
	}
	e := &snapshotEnv{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	e.scfg = cfg.ForSnapshot()
	e.scfg.Collections = splitList(*o.collections)
	if *o.parallelism > 0 {
		e.scfg.Parallelism = *o.parallelism
	}
	if *o.chunkSize > 0 {
		e.scfg.ChunkSize = *o.chunkSize
	}
	switch *o.progress {
	case "bar":
		e.scfg.Progress, e.scfg.Terminal = stderr, true
	case "log":
	case "auto":
		if isTerminal(stderr) {
			e.scfg.Progress, e.scfg.Terminal = stderr, true
		}
	default:
		return nil, fmt.Errorf("%w: --progress %q: want bar, log or auto", errUsage, *o.progress)
	}

	client, err := replicator.OpenSource(cfg.Source.URI, "replicator-snapshot")
	if err != nil {
		return nil, err
	}
	e.closer = append(e.closer, func() { replicator.CloseSource(client) })
	pool, err := replicator.OpenWriter(ctx, cfg, replicator.TargetConns(cfg, e.scfg.Parallelism))
	if err != nil {
		return nil, err
	}
	e.closer = append(e.closer, pool.Close)
	if err := replicator.Prepare(ctx, pool, maps); err != nil {
		return nil, err
	}
	reg := replicator.NewRegistry()
	e.deps = snapshot.Deps{Source: client, Target: pool, Mappings: maps, Metrics: snapshot.NewMetrics(reg), Logger: log}
	if *o.listen != "" {
		ln, err := net.Listen("tcp", *o.listen)
		if err != nil {
			return nil, fmt.Errorf("metrics endpoint: %w", err)
		}
		sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = replicator.ServeMetrics(sctx, ln, reg, log)
		}()
		e.closer = append(e.closer, func() { stop(); <-done; ln.Close() })
	}
	ok = true
	return e, nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := unwrapStderr(w).(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
