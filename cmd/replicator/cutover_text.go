package main

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/mongopg/replicator/replicator"
)

// writeCutoverText prints the short summary of a cutover: the verdict, a
// line per step and collection, the problems and the report files.
func writeCutoverText(w io.Writer, doc *cutoverDoc) error {
	b := bufio.NewWriter(w)
	d := &doc.Drain
	if d.Drained {
		fmt.Fprintf(b, "drain: every collection reached source cluster time %s in %s\n",
			replicator.FormatClusterTime(d.TargetClusterTime), d.FinishedAt.Sub(d.StartedAt).Round(time.Millisecond))
	} else {
		fmt.Fprintf(b, "drain: %s\n", d.Error)
	}
	c := &doc.Capture
	if p := c.Position; p != nil {
		fmt.Fprintf(b, "capture: cluster time %s, token %s\n", replicator.FormatClusterTime(p.ClusterTime), p.Token)
	}
	if c.SourceClusterTime != nil {
		fmt.Fprintf(b, "source: cluster time %s\n", replicator.FormatClusterTime(*c.SourceClusterTime))
	}
	if c.Error != "" {
		fmt.Fprintf(b, "capture: %s\n", c.Error)
	}
	for _, cc := range doc.Collections {
		v := ""
		switch r := cc.Verify; {
		case cc.VerifyError != "":
			v = "verify failed"
		case r == nil:
			v = "not verified"
		case r.Equal:
			v = fmt.Sprintf("equal (%d documents, %d tables)", r.Documents, len(r.Tables))
		default:
			v = "DIFFERENT: " + verifySummary(r)
		}
		drained := "drained"
		if !cc.Drained {
			drained = "NOT drained"
		}
		fmt.Fprintf(b, "%s: %s; %s; %d unresolved dead letter(s)\n", cc.Collection, drained, v, cc.DeadLetters.Unresolved)
	}
	fmt.Fprintf(b, "cutover: %s: %d collection(s), %s\n", doc.Verdict, len(doc.Selected), doc.FinishedAt.Sub(doc.StartedAt).Round(time.Millisecond))
	for _, p := range doc.Problems {
		fmt.Fprintf(b, "  - %s\n", p)
	}
	fmt.Fprintf(b, "report: %s\nreport: %s\n", doc.Files.Markdown, doc.Files.JSON)
	return b.Flush()
}
