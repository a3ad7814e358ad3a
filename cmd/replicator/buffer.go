package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/schemas/envelope"
)

func bufferCommand() command {
	return command{
		name:    "buffer",
		summary: "show one collection's buffer messages in readable form (JSON Lines)",
		run:     runBuffer,
	}
}

func runBuffer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want `buffer show`", errUsage)
	}
	switch args[0] {
	case "show":
		return runBufferShow(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, "Inspect the buffer (the NATS JetStream stream between capture and apply)\n"+
			"without changing it. Buffer messages are encoded envelopes, which `nats stream\n"+
			"get` cannot show readably; `buffer show` decodes them.\n\n"+
			"Usage:\n  replicator buffer show --collection C [--seq N [--count K] | --last K] [--config FILE] [--nats-url URL]\n\n"+
			"Run 'replicator buffer show --help' for its flags.")
		return nil
	}
	return fmt.Errorf("%w: unknown subcommand %q (want show)", errUsage, args[0])
}

const defaultShowCount = 10

func runBufferShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Show one collection's buffer messages, decoded, as JSON Lines (one JSON object\n" +
		"per line, for jq): the stream sequence, subject, stored time, Nats-Msg-Id and\n" +
		"the envelope; a message that does not decode shows the error and its raw data\n" +
		"(\"raw\", or \"raw_base64\" when it is not UTF-8). By default the last 10\n" +
		"messages; --seq N shows --count messages from the collection's first message\n" +
		"at or after stream sequence N; --last K the last K. Read-only: it never acks\n" +
		"and never touches the applier's consumers, so it is safe while the replicator\n" +
		"runs. Without --nats-url it reaches the buffer through the config file\n" +
		"(starting the embedded server on data_dir when no replicator runs).\n\n" +
		"Example:\n" +
		"  replicator buffer show --config F --collection vuln.advisories --last 3 | jq .envelope.op"
	fs := newFlagSet("buffer show", "buffer show --collection C [--seq N [--count K] | --last K] [--config FILE] [--nats-url URL]", summary, stderr)
	cfgPath := fs.String("config", "replicator.yaml", "config `file` (its collections and buffer sections are used)")
	collection := fs.String("collection", "", "source `namespace` db.collection, one of the config's collections (a partitioned one: one partition, db.collection$p0of4)")
	seqFlag := fs.String("seq", "", "start at this stream `sequence`: the collection's first message at or after it")
	countFlag := fs.String("count", "", "with --seq: show `K` messages (default 10)")
	lastFlag := fs.String("last", "", "show the last `K` messages (default: the last 10)")
	natsURL := fs.String("nats-url", "", "NATS `URL` of the buffer (instead of the config file's buffer section)")
	streamFlag := fs.String("stream", "", "JetStream `stream` (with --nats-url; default: the config's buffer.stream)")
	prefixFlag := fs.String("subject-prefix", "", "subject `prefix` (with --nats-url; default: the config's buffer.subject_prefix)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *collection == "" {
		return fmt.Errorf("%w: want --collection db.collection", errUsage)
	}
	if *seqFlag != "" && *lastFlag != "" {
		return fmt.Errorf("%w: give --seq or --last, not both", errUsage)
	}
	if *countFlag != "" && *seqFlag == "" {
		return fmt.Errorf("%w: --count goes with --seq (for the last K messages use --last K)", errUsage)
	}
	if *natsURL == "" && (*streamFlag != "" || *prefixFlag != "") {
		return fmt.Errorf("%w: --stream and --subject-prefix go with --nats-url (otherwise the config's buffer section names them)", errUsage)
	}
	var (
		start uint64
		n     = defaultShowCount
		err   error
	)
	if *seqFlag != "" {
		if start, err = strconv.ParseUint(*seqFlag, 10, 64); err != nil {
			return fmt.Errorf("%w: --seq %q: want a stream sequence, e.g. 120000", errUsage, *seqFlag)
		}
		if *countFlag != "" {
			if n, err = positive("--count", *countFlag); err != nil {
				return err
			}
		}
	} else if *lastFlag != "" {
		if n, err = positive("--last", *lastFlag); err != nil {
			return err
		}
	}

	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return reportConfig(err, stderr)
	}
	ns, part := envelope.ParseUnit(*collection)
	if err := knownCollection(cfg, ns); err != nil {
		return err
	}
	if maps, err := cfg.Mappings(); err == nil && !part.Partitioned() {
		if units := config.UnitLookup(maps)(ns); len(units) > 1 {
			return fmt.Errorf("%w: %s has %d partitions, each a subject of its own: name one with --collection (%s … %s)",
				errUsage, ns, len(units), units[0], units[len(units)-1])
		}
	}
	buf, err := openBuffer(ctx, cfg, *natsURL, *streamFlag, *prefixFlag)
	if err != nil {
		return err
	}
	defer buf.Close()
	r := buffer.ShowRange{From: start, Count: n}
	if *seqFlag != "" {
		r.From = max(start, 1)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	return buf.Cause(buf.Show(ctx, *collection, r, func(m buffer.ShownMessage) error { return enc.Encode(m) }))
}

// knownCollection checks that ns is one of the config's collections.
func knownCollection(cfg *config.Config, ns string) error {
	var names []string
	for _, c := range cfg.Collections {
		if c.Source == ns {
			return nil
		}
		names = append(names, c.Source)
	}
	return fmt.Errorf("%w: collection %q is not in %s; configured: %s", errUsage, ns, cfg.File, strings.Join(names, ", "))
}

func positive(name, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: %s %q: want a positive number", errUsage, name, s)
	}
	return n, nil
}
