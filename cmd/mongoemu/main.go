// Command mongoemu runs the in-memory MongoDB wire-protocol emulator as a
// standalone server, for tests and local development without MongoDB.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mongopg/replicator/internal/mongoemu"
)

const usage = `mongoemu - in-memory MongoDB emulator (one-member replica set, 8.0 semantics)

Usage:
  mongoemu [flags]

It speaks the MongoDB wire protocol well enough for the official drivers:
CRUD, aggregation, indexes, transactions, change streams (resume tokens,
pre/post images, expanded events) and configureFailPoint. All data lives in
memory and is lost on exit. The oplog keeps at most --oplog-max-bytes of
entries (64 MiB by default, counted as the memory they hold), so a server
under a steady write load stops growing once its data does; change streams
resuming from a discarded position fail with ChangeStreamHistoryLost (286).
Connect with:

  mongodb://<listen>/?replicaSet=<replica-set>
  mongodb://<listen>/?directConnection=true

Flags:
`

func main() {
	fs := flag.NewFlagSet("mongoemu", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:27017", "`address` to listen on (host:port; port 0 picks a free port)")
	rs := fs.String("replica-set", "rs0", "replica set `name` advertised in hello")
	maxEvents := fs.Int("oplog-max-events", 0, "keep at most `N` oplog entries (0 = unbounded); older change-stream resume points then fail with ChangeStreamHistoryLost")
	maxBytes := fs.Int64("oplog-max-bytes", mongoemu.StandaloneOplogMaxBytes,
		"keep at most `N` bytes of oplog entries, counted as the memory they hold; 0 = unbounded (the default is 64 MiB)")
	verbose := fs.Bool("verbose", false, "log every command at debug level")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fs.Usage()
		os.Exit(2)
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	srv := mongoemu.New(mongoemu.Options{
		ReplicaSet:     *rs,
		OplogMaxEvents: *maxEvents,
		OplogMaxBytes:  *maxBytes,
		Logger:         log,
	})
	if err := srv.Listen(*listen); err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	fmt.Println(srv.URI())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("shutting down")
	if err := srv.Close(); err != nil {
		log.Error("close failed", "err", err)
		os.Exit(1)
	}
}
