package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/mongopg/replicator/replicator"
)

// writeStatusText prints st for people: the capture position, the holds,
// the buffer, what could not be read, and a table of the collections.
func writeStatusText(w io.Writer, st replicator.Status) error {
	c := st.Capture
	switch p := c.Position; {
	case p != nil:
		fmt.Fprintf(w, "capture (source %s): cluster time %d.%d (%s, %s behind), saved %s ago\n  token %s\n",
			c.Source, p.ClusterTime.T, p.ClusterTime.I, p.Time.Format(time.RFC3339), secs(p.LagSeconds, time.Millisecond),
			secs(p.AgeSeconds, time.Millisecond), p.Token)
	case c.Error != "":
		fmt.Fprintf(w, "capture (source %s): position not read: %s\n", c.Source, c.Error)
	default:
		fmt.Fprintf(w, "capture (source %s): no position saved yet (capture never ran)\n", c.Source)
	}
	for _, h := range st.Holds {
		state := "held"
		if h.Released {
			state = fmt.Sprintf("released at %d.%d for a resync", h.ReleasedAt.T, h.ReleasedAt.I)
		}
		fmt.Fprintf(w, "capture %s %s since %s: %s\n  to recover: %s\n", state, h.Collection,
			h.Since.Format(time.RFC3339), h.Reason, h.Recovery)
	}
	if b := st.Buffer; b.Reachable {
		fmt.Fprintf(w, "buffer: stream %s at %s, %d messages, %.1f MB, sequences %d–%d\n",
			b.Stream, b.URL, b.Messages, float64(b.Bytes)/1e6, b.FirstSeq, b.LastSeq)
	} else {
		fmt.Fprintf(w, "buffer: %s unreachable: %s\n", b.URL, b.Error)
	}
	if st.Target.Error != "" {
		fmt.Fprintf(w, "apply checkpoints: %s\n", st.Target.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\ncollection\tapplied seq\tto apply\tsource time\tlag\tcommitted")
	for _, cs := range st.Collections {
		pending := "?"
		if cs.Pending != nil {
			pending = fmt.Sprint(*cs.Pending)
		}
		if cs.AppliedSeq == nil {
			fmt.Fprintf(tw, "%s\t-\t%s\t-\t-\t-\n", cs.Collection, pending)
			continue
		}
		src, lag := "-", "-"
		if cs.SourceTime != nil {
			src = cs.SourceTime.Format(time.RFC3339)
			lag = secs(*cs.LagSeconds, time.Millisecond)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s ago\n", cs.Collection, *cs.AppliedSeq, pending, src, lag, secs(*cs.CommittedAgeSeconds, time.Second))
	}
	return tw.Flush()
}

// secs prints a duration given in seconds, truncated to unit.
func secs(s float64, unit time.Duration) string {
	return time.Duration(s * float64(time.Second)).Truncate(unit).String()
}
