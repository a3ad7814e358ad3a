package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/sink"
)

func statusCommand() command {
	return command{
		name:    "status",
		summary: "show the capture position, the buffer and each collection's apply position and lag",
		run:     runStatus,
	}
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Show where capture is (the saved position in the buffer), what the buffer\n" +
		"holds, and per collection the applied buffer sequence, the messages still to\n" +
		"apply and the apply lag. It reads the buffer (starting the embedded server on\n" +
		"data_dir when no replicator runs) and PostgreSQL; it changes nothing."
	fs := newFlagSet("status", "status --config FILE", summary, stderr)
	cfgPath := fs.String("config", "replicator.yaml", "config `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, mappings, err := loadMappings(*cfgPath, stderr)
	if err != nil {
		return err
	}
	bcfg := cfg.ForBuffer()
	buf, err := buffer.Open(ctx, bcfg, nil)
	if err != nil {
		return err
	}
	defer buf.Close()
	now := time.Now()
	source := cfg.ForCapture().Source
	pos, err := buf.Positions().Load(ctx, source)
	switch {
	case errors.Is(err, buffer.ErrNoPosition):
		fmt.Fprintf(stdout, "capture (source %s): no position saved yet (capture never ran)\n", source)
	case err != nil:
		return err
	default:
		ct := time.Unix(int64(pos.ClusterTime.T), 0)
		fmt.Fprintf(stdout, "capture (source %s): cluster time %d.%d (%s, %s behind), saved %s ago\n  token %s\n",
			source, pos.ClusterTime.T, pos.ClusterTime.I, ct.UTC().Format(time.RFC3339), now.Sub(ct).Truncate(time.Millisecond),
			now.Sub(pos.SavedAt).Truncate(time.Millisecond), pos.Token)
	}
	holds, err := buf.Holds().List(ctx, source)
	if err != nil {
		return err
	}
	for _, h := range holds {
		state := "held"
		if h.Released() {
			state = fmt.Sprintf("released at %d.%d for a resync", h.ReleasedAt.T, h.ReleasedAt.I)
		}
		fmt.Fprintf(stdout, "capture %s %s since %s: %s\n  to recover: %s\n", state, h.Collection,
			h.Since.Format(time.RFC3339), h.Reason, h.Recovery)
	}
	js := buf.JetStream()
	bc := buf.Config()
	if s, err := js.Stream(ctx, bc.Stream); err == nil {
		st := s.CachedInfo().State
		fmt.Fprintf(stdout, "buffer: stream %s at %s, %d messages, %.1f MB, sequences %d–%d\n",
			bc.Stream, buf.URL(), st.Msgs, float64(st.Bytes)/1e6, st.FirstSeq, st.LastSeq)
	}

	var cps map[string]checkpoints.Checkpoint
	if cfg.Target.URL != "" {
		var list []checkpoints.Checkpoint
		pool, err := replicator.OpenTarget(ctx, cfg.Target.URL, replicator.TargetConns(cfg, 0))
		if err == nil {
			defer pool.Close()
			list, err = checkpoints.List(ctx, pool)
		}
		if err != nil {
			fmt.Fprintf(stdout, "apply checkpoints: %v\n", err)
		}
		cps = map[string]checkpoints.Checkpoint{}
		for _, c := range list {
			cps[c.Collection] = c
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\ncollection\tapplied seq\tto apply\tsource time\tlag\tcommitted")
	for _, m := range mappings {
		ns := m.Namespace()
		pending := "?"
		if c, err := js.Consumer(ctx, bc.Stream, sink.Durable(ns)); err == nil {
			if info, err := c.Info(ctx); err == nil {
				pending = fmt.Sprint(info.NumPending + uint64(info.NumAckPending))
			}
		}
		cp, ok := cps[ns]
		if !ok {
			fmt.Fprintf(tw, "%s\t-\t%s\t-\t-\t-\n", ns, pending)
			continue
		}
		src, lag := "-", "-"
		if !cp.WallTime.IsZero() {
			src = cp.WallTime.UTC().Format(time.RFC3339)
			lag = cp.Lag(now).Truncate(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s ago\n", ns, cp.Seq, pending, src, lag, now.Sub(cp.UpdatedAt).Truncate(time.Second))
	}
	return tw.Flush()
}
