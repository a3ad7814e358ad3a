package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/internal/mongoemu"
	"github.com/mongopg/replicator/internal/workload"
)

// progress prints per-collection counts and lag every second until ctx
// ends. On a terminal it redraws the same lines. It keeps nothing from one
// tick to the next but the line count.
func progress(ctx context.Context, out io.Writer, g prometheus.Gatherer, gen *workload.Generator, ns workload.Namespaces,
	oplog func() mongoemu.OplogStats) error {
	tty := false
	if f, ok := out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	names := []string{ns.Advisories, ns.Statements, ns.Runs}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lines := 0
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s := snapshot(g)
		var b strings.Builder
		if tty && lines > 0 {
			fmt.Fprintf(&b, "\033[%dA", lines)
		}
		fmt.Fprintf(&b, "%-18s %10s %10s %8s %10s\033[K\n", "collection", "captured", "applied", "pending", "apply lag")
		for _, n := range names {
			fmt.Fprintf(&b, "%-18s %10.0f %10.0f %8.0f %9.1fs\033[K\n", n,
				s.sum("replicator_capture_events_total", n, ""),
				s.sum("replicator_apply_events_total", n, "heartbeat"),
				s.sum("replicator_buffer_pending_messages", n, ""),
				s.sum("replicator_apply_lag_seconds", n, ""))
		}
		st := gen.Stats()
		fmt.Fprintf(&b, "workload %d events in %s · capture lag %.1fs · dead letters %.0f · oplog %.0f MB · RSS %.0f MB\033[K\n",
			st.Events, time.Since(start).Truncate(time.Second), s.sum("replicator_capture_lag_seconds", "", ""),
			s.sum("replicator_dead_letters_total", "", ""), float64(oplog().Bytes)/1e6, s.sum("process_resident_memory_bytes", "", "")/1e6)
		lines = len(names) + 2
		if !tty {
			b.WriteString("\n")
		}
		if _, err := io.WriteString(out, b.String()); err != nil {
			return err
		}
	}
}

type samples map[string][]sample

type sample struct {
	collection, operation string
	v                     float64
}

func snapshot(g prometheus.Gatherer) samples {
	out := samples{}
	mfs, err := g.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var s sample
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "collection":
					s.collection = l.GetValue()
				case "operation":
					s.operation = l.GetValue()
				}
			}
			switch {
			case m.GetCounter() != nil:
				s.v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s.v = m.GetGauge().GetValue()
			}
			out[mf.GetName()] = append(out[mf.GetName()], s)
		}
	}
	return out
}

// sum adds the samples of name for collection ("" any), leaving out one
// operation ("" none).
func (s samples) sum(name, collection, except string) float64 {
	var t float64
	for _, x := range s[name] {
		if (collection == "" || x.collection == collection) && (except == "" || x.operation != except) {
			t += x.v
		}
	}
	return t
}
