package main

import (
	"context"
	"fmt"
	"io"

	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
)

func runCommand() command {
	return command{
		name:    "run",
		summary: "capture and apply in one process (the common deployment)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runPipeline(ctx, "run", args, stderr, replicator.Options{Capture: true, Apply: true, Snapshot: true})
		},
	}
}

// runPipeline parses the flags shared by run, capture and apply, and runs
// the pipeline until ctx ends (SIGINT or SIGTERM).
func runPipeline(ctx context.Context, name string, args []string, stderr io.Writer, opts replicator.Options) error {
	summaries := map[string]string{
		"run": "Capture MongoDB changes into the buffer and apply them to PostgreSQL, in one\n" +
			"process. On the first start (no capture position) it also copies every\n" +
			"configured collection as of the start time, while streaming (the initial\n" +
			"snapshot, resumable); with source.on_history_lost: resync a lost resume point\n" +
			"is recovered by resyncing every collection. The metadata schema and missing\n" +
			"target tables are created at start (idempotent) unless --no-migrate is given.\n" +
			"SIGINT/SIGTERM stop it cleanly.",
		"capture": "Capture MongoDB changes into the buffer (NATS JetStream) only. Run apply\n" +
			"with the same config file in another process. With target.url set, capture\n" +
			"also runs the initial snapshot on its first start and the\n" +
			"source.on_history_lost: resync policy, as run does; without it, run\n" +
			"'replicator snapshot' once capture has started.",
		"apply": "Apply buffered changes to PostgreSQL only. Run capture with the same config\n" +
			"file in another process. The metadata schema and missing target tables are\n" +
			"created at start unless --no-migrate is given.",
	}
	fs := newFlagSet(name, name+" --config FILE", summaries[name], stderr)
	cfgPath := fs.String("config", "replicator.yaml", "config `file`")
	listen := fs.String("metrics-listen", "", "serve /metrics, /healthz and /readyz on this `address` instead of metrics.listen (\"off\" disables)")
	noMigrate := fs.Bool("no-migrate", false, "do not create the metadata schema and target tables (run 'replicator migrate' first)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return reportConfig(err, stderr)
	}
	log, err := replicator.NewLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	opts.Logger = log
	b := replicator.Build()
	log.Info("replicator starting", "command", name, "version", b.Version, "revision", b.Revision, "go", b.GoVersion)
	if opts.Snapshot && !opts.Apply && cfg.Target.URL == "" {
		// capture alone without a target: the snapshot is left to
		// `replicator snapshot` (started after capture, so nothing is
		// missed between the two start times).
		opts.Snapshot = false
		log.Warn("no target.url: capture does not copy existing documents on its first start; run 'replicator snapshot' after capture has started")
	}
	switch *listen {
	case "":
	case "off":
		opts.DisableHTTP = true
	default:
		cfg.Metrics.Listen = *listen
	}
	opts.NoMigrate = *noMigrate
	if gc := replicator.TuneGC(cfg); gc != "" {
		log.Info("garbage collector tuned", "setting", gc)
	}
	return replicator.Run(ctx, cfg, opts)
}
