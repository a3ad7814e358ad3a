// Command demo runs the whole replicator on this machine with nothing else
// installed: the MongoDB wire emulator with a live workload (vulnerability
// advisories, VEX statements, scheduler runs), a private PostgreSQL, the
// embedded NATS JetStream buffer and `replicator run`, all in one process.
// It prints per-collection progress and lag every second, and how to look at
// the rows and the metrics. Ctrl-C stops everything; the PostgreSQL server
// dies with this process even if it is killed.
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
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/internal/mongoemu"
	"github.com/mongopg/replicator/internal/pgserver"
	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/redact"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "demo:", redact.Error(err))
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", ".demo", "working `directory` (emptied at start): PostgreSQL data, buffer files, logs")
	rate := fs.Float64("rate", 200, "workload operations per second")
	listen := fs.String("metrics", "127.0.0.1:9187", "metrics `address` (/metrics, /healthz, /readyz)")
	printConfig := fs.Bool("print-config", false, "print the replicator config the demo uses and exit")
	oplogBytes := fs.Int64("oplog-max-bytes", mongoemu.StandaloneOplogMaxBytes,
		"the emulator keeps at most `N` bytes of oplog (about 7 minutes at the default rate; 0 = unbounded)")
	maxDocs := fs.Int("max-docs", workload.DefaultMaxDocs, "the workload keeps at most `N` documents per collection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ns := workload.DefaultNamespaces()
	if *printConfig {
		fmt.Fprint(out, workload.ConfigYAML(workload.ConfigParams{
			Namespaces: ns, SourceURI: "mongodb://127.0.0.1:27017/?replicaSet=rs0",
			TargetURL: "postgres://postgres@127.0.0.1:5432/demo", DataDir: "./replicator-data", MetricsListen: "127.0.0.1:9187",
			BufferExtra: demoBufferExtra,
		}))
		return nil
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(abs); err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(abs, "replicator.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := slog.New(redact.Handler(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo})))

	fmt.Fprintln(out, "starting the MongoDB emulator, PostgreSQL and the replicator …")
	emu := mongoemu.New(emulatorOptions(log.With("component", "mongoemu"), *oplogBytes))
	if err := emu.Listen("127.0.0.1:0"); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	defer emu.Close()

	pgLog, err := os.Create(filepath.Join(abs, "postgres.log"))
	if err != nil {
		return err
	}
	defer pgLog.Close()
	pg, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(abs, "pg"), Log: pgLog})
	if err != nil {
		return err
	}
	defer pg.Stop() //nolint:errcheck // best effort at exit
	if err := createDatabase(ctx, pg.URL("postgres"), "demo"); err != nil {
		return err
	}
	targetURL := pg.URL("demo")

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("metrics endpoint: %w", err)
		}
	}
	yaml := workload.ConfigYAML(workload.ConfigParams{
		Namespaces: ns, SourceURI: emu.URI(), TargetURL: targetURL,
		DataDir: filepath.Join(abs, "buffer"), MetricsListen: ln.Addr().String(), BufferExtra: demoBufferExtra,
	})
	cfgPath := filepath.Join(abs, "replicator.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		return err
	}
	cfg, err := config.Parse([]byte(yaml), cfgPath)
	if err != nil {
		return err
	}

	client, err := mongo.Connect(options.Client().ApplyURI(emu.URI()))
	if err != nil {
		return err
	}
	defer client.Disconnect(context.Background()) //nolint:errcheck

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gen := workload.New(client, ns, workloadOptions(uint64(time.Now().UnixNano()), *maxDocs))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return replicator.Run(gctx, cfg, replicator.Options{
			Capture: true, Apply: true, Logger: log, Registerer: reg, Gatherer: reg, MetricsListener: ln,
		})
	})
	g.Go(func() error {
		// Let capture open its stream before the first write.
		select {
		case <-time.After(2 * time.Second):
		case <-gctx.Done():
			return nil
		}
		return gen.Run(gctx, *rate, 0)
	})
	g.Go(func() error {
		printBanner(out, emu.URI(), targetURL, ln.Addr().String(), cfgPath, abs)
		return progress(gctx, out, reg, gen, ns, emu.OplogStats)
	})
	err = g.Wait()
	fmt.Fprintln(out, "\nstopped: the emulator, PostgreSQL, NATS and the replicator are down; files stay in", abs)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func createDatabase(ctx context.Context, url, name string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	return err
}

// printBanner prints where everything runs; the URLs go through
// redact.String like every other output (the demo's own servers have no
// passwords, so nothing is lost).
func printBanner(out io.Writer, mongoURI, pgURL, metrics, cfgPath, dir string) {
	mongoURI, pgURL = redact.String(mongoURI), redact.String(pgURL)
	fmt.Fprintf(out, `
MongoDB emulator  %s   (mongosh works too)
PostgreSQL        %s
metrics           http://%s/metrics   (/healthz, /readyz)
config            %s
logs              %s

Look at the rows:
  psql '%s' -c 'SELECT id, severity, cvss, published_at FROM vuln.advisories ORDER BY modified_at DESC LIMIT 5'
  psql '%s' -c 'SELECT advisory_id, ordinal, purl FROM vuln.advisory_affected LIMIT 5'
  psql '%s' -c 'SELECT * FROM replicator.apply_checkpoints'

Ctrl-C stops everything.

`, mongoURI, pgURL, metrics, cfgPath, filepath.Join(dir, "replicator.log"), pgURL, pgURL, pgURL)
}
