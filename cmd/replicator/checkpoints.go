package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/redact"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/sink"
)

func checkpointsCommand() command {
	return command{
		name:    "checkpoints",
		summary: "list apply checkpoints, or rewind one collection's (replay)",
		run:     runCheckpoints,
	}
}

func runCheckpoints(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want `checkpoints list` or `checkpoints set`", errUsage)
	}
	switch args[0] {
	case "list":
		return runCheckpointsList(ctx, args[1:], stdout, stderr)
	case "set":
		return runCheckpointsSet(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, "Show each collection's apply checkpoint (the last applied buffer sequence, its\n"+
			"source time and the lag), or rewind one collection's checkpoint to replay from\n"+
			"the buffer: the applier re-applies from there, and the version guard keeps\n"+
			"every row from moving backwards. Replay reaches back as far as buffer.max_age.\n\n"+
			"Usage:\n  replicator checkpoints list [--config FILE | --target URL]\n"+
			"  replicator checkpoints set --collection C (--seq N | --time T) [--force] [--config FILE]\n\n"+
			"Run 'replicator checkpoints list --help' or 'replicator checkpoints set --help' for their flags.")
		return nil
	}
	return fmt.Errorf("%w: unknown subcommand %q (want list or set)", errUsage, args[0])
}

func runCheckpointsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "List each collection's apply checkpoint: the last applied buffer sequence,\n" +
		"the source cluster and wall time it reached, the lag behind that time, and\n" +
		"when it was committed. `replicator status` adds the capture position."
	fs := newFlagSet("checkpoints list", "checkpoints list [--config FILE | --target URL] [--format text|json]", summary, stderr)
	var tf targetFlags
	tf.register(fs)
	format := registerFormat(fs)
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
	list, err := checkpoints.List(ctx, pool)
	if err != nil {
		return err
	}
	now := time.Now()
	if *format == formatJSON {
		doc := checkpointsDoc{Checkpoints: make([]replicator.CheckpointStatus, 0, len(list))}
		for _, c := range list {
			doc.Checkpoints = append(doc.Checkpoints, replicator.NewCheckpointStatus(c, now))
		}
		return writeJSON(stdout, doc)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "collection\tapplied seq\tcluster time\tsource time\tlag\tcommitted")
	for _, c := range list {
		ct, src, lag := "-", "-", "-"
		if !c.ClusterTime.IsZero() {
			ct = fmt.Sprintf("%d.%d", c.ClusterTime.T, c.ClusterTime.I)
		}
		if !c.WallTime.IsZero() {
			src = c.WallTime.UTC().Format(time.RFC3339)
			lag = c.Lag(now).Truncate(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s ago\n", c.Collection, c.Seq, ct, src, lag, now.Sub(c.UpdatedAt).Truncate(time.Second))
	}
	return tw.Flush()
}

// checkpointsDoc is the document of `checkpoints list --format json`.
type checkpointsDoc struct {
	Checkpoints []replicator.CheckpointStatus `json:"checkpoints"`
}

func runCheckpointsSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Rewind one collection's apply checkpoint so the applier re-applies from\n" +
		"there (replay). --seq N makes N the last applied buffer sequence (0: replay\n" +
		"everything the buffer holds); --time T replays from the collection's first\n" +
		"message at or after T (RFC 3339). Safe while the applier runs: it notices and\n" +
		"restarts delivery; the version guard never moves a row backwards. A partitioned\n" +
		"collection has one checkpoint per partition: --time moves every partition;\n" +
		"--seq needs one partition's name (db.collection$p0of4, as `checkpoints list` shows)."
	fs := newFlagSet("checkpoints set", "checkpoints set --collection C (--seq N | --time T) [--force] [--config FILE | --target URL --nats-url URL]", summary, stderr)
	var tf targetFlags
	tf.register(fs)
	collection := fs.String("collection", "", "source `namespace` db.collection, or one partition of it (db.collection$p0of4)")
	seqFlag := fs.String("seq", "", "last applied buffer `sequence` to set")
	timeFlag := fs.String("time", "", "replay from this `time` (RFC 3339)")
	force := fs.Bool("force", false, "allow moving the checkpoint forward (skips events)")
	natsURL := fs.String("nats-url", "", "NATS `URL` of the buffer (instead of the config file's buffer section)")
	stream := fs.String("stream", "", "JetStream `stream` (with --nats-url; default: the config's buffer.stream, else "+buffer.DefaultStream+")")
	prefix := fs.String("subject-prefix", "", "subject `prefix` (with --nats-url; default: the config's buffer.subject_prefix, else "+buffer.DefaultSubjectPrefix+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *collection == "" || (*seqFlag == "") == (*timeFlag == "") {
		return fmt.Errorf("%w: want --collection and exactly one of --seq or --time", errUsage)
	}
	var (
		seq uint64
		at  time.Time
		err error
	)
	if *seqFlag != "" {
		if seq, err = strconv.ParseUint(*seqFlag, 10, 64); err != nil {
			return fmt.Errorf("%w: --seq %q: %v", errUsage, *seqFlag, err)
		}
	} else if at, err = time.Parse(time.RFC3339Nano, *timeFlag); err != nil {
		return fmt.Errorf("%w: --time %q: want RFC 3339, e.g. 2026-11-27T05:00:00Z", errUsage, *timeFlag)
	}
	pool, cfg, err := tf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()

	buf, err := openBuffer(ctx, cfg, *natsURL, *stream, *prefix)
	if err != nil {
		// err starts with "buffer:" (buffer.Connect).
		if *timeFlag != "" {
			return fmt.Errorf("%w (--time needs the buffer)", err)
		}
		fmt.Fprintf(stderr, "warning: %v; a running applier notices the reset by itself\n", redact.Error(err))
	} else {
		defer buf.Close()
	}
	units := []string{*collection}
	if cfg != nil {
		if maps, err := cfg.Mappings(); err == nil {
			units = config.UnitLookup(maps)(*collection)
		}
	}
	if len(units) == 1 && units[0] == *collection {
		// Without the config's mappings, the rows say whether a bare
		// namespace is partitioned.
		if parts, err := partitionRows(ctx, pool, *collection); err != nil {
			return err
		} else if len(parts) > 0 {
			units = parts
		}
	}
	if len(units) > 1 && *seqFlag != "" {
		return fmt.Errorf("%w: %s has %d partitions, each with its own checkpoint and sequences: name one with --collection (%s … %s), or replay by --time",
			errUsage, *collection, len(units), units[0], units[len(units)-1])
	}
	for _, unit := range units {
		if err := setCheckpoint(ctx, pool, buf, unit, seq, at, *timeFlag != "", *force, stdout); err != nil {
			return err
		}
	}
	return nil
}

// partitionRows lists the checkpoint rows of ns's partitions when ns has
// no row of its own (nil otherwise).
func partitionRows(ctx context.Context, pool *pgxpool.Pool, ns string) ([]string, error) {
	list, err := checkpoints.List(ctx, pool)
	if err != nil {
		return nil, err
	}
	var parts []string
	for _, c := range list {
		if c.Collection == ns {
			return nil, nil
		}
		if col, p := envelope.ParseUnit(c.Collection); col == ns && p.Partitioned() {
			parts = append(parts, c.Collection)
		}
	}
	return parts, nil
}

// setCheckpoint moves one apply unit's checkpoint to seq, or to the
// message before the first of its subject at or after at (byTime), and
// drops its consumer so a running applier restarts delivery.
func setCheckpoint(ctx context.Context, pool *pgxpool.Pool, buf *buffer.Buffer, unit string, seq uint64, at time.Time, byTime, force bool, stdout io.Writer) error {
	if byTime {
		s, ok, err := checkpoints.SeqBefore(ctx, buf.JetStream(), buf.Config().Stream, buf.UnitSubject(unit), at)
		if err != nil {
			return buf.Cause(err)
		}
		if !ok {
			fmt.Fprintf(stdout, "%s: the buffer holds no message at or after %s; nothing to replay\n", unit, at.Format(time.RFC3339Nano))
			return nil
		}
		seq = s
	}
	prev, err := checkpoints.Set(ctx, pool, unit, seq, checkpoints.SetOptions{AllowForward: force})
	if err != nil {
		return err
	}
	if buf != nil {
		if err := sink.DropUnitConsumers(ctx, buf.JetStream(), buf.Config().Stream, unit); err != nil {
			return buf.Cause(err)
		}
	}
	fmt.Fprintf(stdout, "%s: checkpoint moved from %d to %d; the applier re-applies from buffer sequence %d\n", unit, prev.Seq, seq, seq+1)
	return nil
}

// openBuffer reaches the buffer without changing it (buffer.Connect):
// through --nats-url when given, with the config file's credentials and TLS
// files when there is one, else through the config file's buffer section
// (starting the embedded server on data_dir when no replicator runs).
// stream and prefix override the config's names when not empty.
func openBuffer(ctx context.Context, cfg *config.Config, natsURL, stream, prefix string) (*buffer.Buffer, error) {
	var bc buffer.Config
	switch {
	case cfg != nil:
		bc = cfg.ForBuffer()
	case natsURL == "":
		return nil, errors.New("no buffer: give --nats-url or a config file")
	}
	if natsURL != "" {
		bc.URL = natsURL
	}
	if stream != "" {
		bc.Stream = stream
	}
	if prefix != "" {
		bc.SubjectPrefix = prefix
	}
	return buffer.Connect(ctx, bc, nil) // its errors start with "buffer:"
}
