package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/transform"
)

func statusCommand() command {
	return command{
		name:    "status",
		summary: "show the capture position, the buffer and each collection's apply position and lag",
		run:     runStatus,
	}
}

const statusSummary = "Show where capture is (the saved position in the buffer), what the buffer\n" +
	"holds, and per collection the applied buffer sequence, the messages still to\n" +
	"apply and the apply lag. It reads the buffer (starting the embedded server on\n" +
	"data_dir when no replicator runs) and PostgreSQL; it changes nothing.\n\n" +
	"Exit status: 0 healthy; 3 unhealthy, each problem named on standard error:\n" +
	"the buffer or PostgreSQL unreachable or not answering within --timeout, no\n" +
	"capture position saved (capture never ran), a collection held (until a\n" +
	"resync releases it), or with --max-lag a collection's apply lag above it;\n" +
	"1 when status itself fails (config problems); 2 for bad flags.\n" +
	"--format json prints one JSON document (README, Operations: Status)."

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "status --config FILE [--format text|json] [--timeout D] [--max-lag D]", statusSummary, stderr)
	cfgPath := fs.String("config", "replicator.yaml", "config `file`")
	format := registerFormat(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "give up on NATS and PostgreSQL after this `duration` (the whole command)")
	maxLag := fs.Duration("max-lag", 0, "unhealthy when a collection's apply lag is above this `duration` (0: not judged)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: --timeout %s: want a positive duration", errUsage, *timeout)
	}
	if *maxLag < 0 {
		return fmt.Errorf("%w: --max-lag %s: want a positive duration or 0", errUsage, *maxLag)
	}
	cfg, mappings, err := loadMappings(*cfgPath, stderr)
	if err != nil {
		return err
	}
	st := gatherStatus(ctx, cfg, mappings, *timeout)
	st.Assess(*maxLag)
	if *format == formatJSON {
		err = writeJSON(stdout, st)
	} else {
		err = writeStatusText(stdout, st)
	}
	if err != nil {
		return err
	}
	if !st.Healthy {
		return fmt.Errorf("%w: %s", errUnhealthy, strings.Join(st.Problems, "; "))
	}
	return nil
}

// gatherStatus opens the buffer and the target of cfg and reads the
// status through them (replicator.ReadStatus), all within timeout: a
// server that does not answer in time is reported as such, by name.
func gatherStatus(ctx context.Context, cfg *config.Config, mappings []*transform.Mapping, timeout time.Duration) replicator.Status {
	// Every read follows readCtx, which ends a little before timeout so
	// that what was read can still be reported; a read that ignores it is
	// cut off at timeout and the server it waits for is named.
	grace := min(timeout/10, 500*time.Millisecond)
	readCtx, cancel := context.WithTimeout(ctx, timeout-grace)
	defer cancel()
	g := newStatusGatherer(cfg, mappings, timeout)
	done := make(chan replicator.Status, 1)
	go func() { done <- g.read(readCtx) }()
	select {
	case st := <-done:
		return st
	case <-time.After(timeout):
		return g.timedOut()
	}
}
