package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mongopg/replicator/sink"
)

func dlqCommand() command {
	return command{
		name:    "dlq",
		summary: "list, show and resolve dead letters",
		run:     runDLQ,
	}
}

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want `dlq list`, `dlq show ID` or `dlq resolve ID`", errUsage)
	}
	const summary = "Dead letters are events that could not be decoded, transformed or applied,\n" +
		"kept with the raw event, the error, the field path and the SQLSTATE. Resolved\n" +
		"ones no longer count toward a collection's dead_letter_threshold."
	fs := newFlagSet("dlq "+args[0], "dlq list [--collection C] [--all] [--format text|json] | show ID | resolve ID [--note TEXT]", summary, stderr)
	var tf targetFlags
	tf.register(fs)
	collection := fs.String("collection", "", "only this source `namespace`")
	all := fs.Bool("all", false, "include resolved dead letters")
	limit := fs.Int("limit", 100, "at most `n` rows")
	note := fs.String("note", "", "resolution `note`")
	format := registerFormat(fs)
	sub := args[0]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fs.Usage()
		return nil
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	var id int64
	if sub == "show" || sub == "resolve" {
		if len(pos) != 1 {
			return fmt.Errorf("%w: dlq %s needs one dead letter ID", errUsage, sub)
		}
		if id, err = strconv.ParseInt(pos[0], 10, 64); err != nil {
			return fmt.Errorf("%w: dead letter ID %q is not a number", errUsage, pos[0])
		}
	} else if sub != "list" {
		return fmt.Errorf("%w: unknown subcommand %q (want list, show or resolve)", errUsage, sub)
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	if *format != formatText && sub != "list" {
		return fmt.Errorf("%w: --format goes with dlq list", errUsage)
	}
	pool, _, err := tf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch sub {
	case "list":
		dls, err := sink.ListDeadLetters(ctx, pool, sink.DeadLetterFilter{Collection: *collection, Resolved: *all, Limit: *limit})
		if err != nil {
			return err
		}
		if *format == formatJSON {
			return writeJSON(stdout, newDeadLettersDoc(dls))
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "id\tcollection\tstage\treason\tsqlstate\tseq\tdocument\tcreated\terror")
		for _, d := range dls {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Collection, d.Stage, d.Reason, dash(d.SQLState),
				d.StreamSeq, dash(d.DocumentKey), d.CreatedAt.UTC().Format(time.RFC3339), firstLine(d.Error, 80))
		}
		return tw.Flush()
	case "show":
		d, err := sink.GetDeadLetter(ctx, pool, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "id:           %d\ncollection:   %s\nstage:        %s\nreason:       %s\nerror:        %s\n", d.ID, d.Collection, d.Stage, d.Reason, d.Error)
		fmt.Fprintf(stdout, "field path:   %s\nsqlstate:     %s\ndocument key: %s\nbuffer seq:   %d\ncreated:      %s\n",
			dash(d.FieldPath), dash(d.SQLState), dash(d.DocumentKey), d.StreamSeq, d.CreatedAt.UTC().Format(time.RFC3339Nano))
		if !d.ResolvedAt.IsZero() {
			fmt.Fprintf(stdout, "resolved:     %s %s\n", d.ResolvedAt.UTC().Format(time.RFC3339), d.Note)
		}
		switch {
		case d.RawEvent != nil:
			var pretty strings.Builder
			var v any
			if json.Unmarshal(d.RawEvent, &v) == nil {
				b, _ := json.MarshalIndent(v, "", "  ")
				pretty.Write(b)
			} else {
				pretty.Write(d.RawEvent)
			}
			fmt.Fprintf(stdout, "raw event:\n%s\n", pretty.String())
		case d.RawBytes != nil:
			fmt.Fprintf(stdout, "raw bytes (%d, not JSON):\n%q\n", len(d.RawBytes), d.RawBytes)
		}
		return nil
	default:
		if err := sink.ResolveDeadLetter(ctx, pool, id, *note); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "dead letter %d resolved\n", id)
		return nil
	}
}

// parseInterleaved parses flags that may come before or after positional
// arguments and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
