package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/mongopg/replicator/replicator/verify"
)

// writeVerifyText prints verify's report for an operator: per collection
// its verdict, then per table the counts, checksums and differences.
func writeVerifyText(w io.Writer, doc verifyDoc) error {
	b := bufio.NewWriter(w)
	for _, r := range doc.Collections {
		fmt.Fprintf(b, "%s: %s (%d documents read, %d skipped by the filter)\n", r.Collection, verdict(r.Equal), r.Documents, r.Skipped)
		if sm := r.Sample; sm != nil {
			fmt.Fprintf(b, "  sample: the %d newest documents of each of %d tenant(s); only their rows are compared\n", sm.PerTenant, sm.Tenants)
			for _, t := range sm.Unmatched {
				fmt.Fprintf(b, "  tenant %s: PostgreSQL has rows, no document in MongoDB has it\n", t)
			}
		}
		for _, t := range r.Tables {
			writeTableText(b, t)
		}
		writeDocumentsText(b, "transform error", r.TransformErrors)
		writeDocumentsText(b, "dead-lettered", r.DeadLettered)
		writeInFlightText(b, r)
	}
	fmt.Fprintf(b, "verify: %s: %d collection(s), %s\n", doc.Verdict, len(doc.Collections), doc.FinishedAt.Sub(doc.StartedAt).Round(1e6))
	return b.Flush()
}

func verdict(equal bool) string {
	if equal {
		return "equal"
	}
	return "DIFFERENT"
}

func writeTableText(b *bufio.Writer, t verify.TableReport) {
	d := t.Differences
	state := "equal"
	if d.Total > 0 {
		state = fmt.Sprintf("%d difference(s): %d missing in PostgreSQL, %d extra in PostgreSQL, %d different", d.Total, d.Missing, d.Extra, d.Different)
	}
	fmt.Fprintf(b, "  table %s: %s\n", t.Table, state)
	fmt.Fprintf(b, "    rows      expected %d, actual %d\n", t.ExpectedRows, t.ActualRows)
	fmt.Fprintf(b, "    checksum  expected %s, actual %s\n", t.ExpectedChecksum, t.ActualChecksum)
	// Every tenant whose counts differ, and the first equal ones: a table
	// of thousands of tenants stays readable (JSON keeps them all).
	equalShown := 0
	for _, tc := range t.Tenants {
		mark := ""
		if tc.ExpectedRows != tc.ActualRows {
			mark = "  ≠"
		} else if equalShown++; equalShown > textTenants {
			continue
		}
		fmt.Fprintf(b, "    %s %s: expected %d, actual %d%s\n", t.TenantColumn, textOrNull(tc.Tenant), tc.ExpectedRows, tc.ActualRows, mark)
	}
	if equalShown > textTenants {
		fmt.Fprintf(b, "    … %d more tenants with equal counts (--format json lists them)\n", equalShown-textTenants)
	}
	for _, r := range d.Rows {
		keys := make([]string, len(r.Key))
		for i, k := range r.Key {
			keys[i] = k.Column + "=" + textOrNull(k.Value)
		}
		fmt.Fprintf(b, "    %-9s %s\n", r.Kind, strings.Join(keys, " "))
		for _, c := range r.Columns {
			fmt.Fprintf(b, "      %s: expected %s, actual %s\n", c.Column, quoteOrNull(c.Expected), quoteOrNull(c.Actual))
		}
	}
	if shown := int64(len(d.Rows)); shown < d.Total {
		fmt.Fprintf(b, "    … %d more (--max-differences)\n", d.Total-shown)
	}
}

// textTenants is how many tenants with equal counts a table lists.
const textTenants = 20

// writeInFlightText prints how the differences were re-checked and the
// documents still changing after the last round.
func writeInFlightText(b *bufio.Writer, r verify.Report) {
	if r.Rechecks > 0 {
		fmt.Fprintf(b, "  compared again %d time(s) after the applier caught up\n", r.Rechecks)
	}
	if r.Note != "" {
		fmt.Fprintf(b, "  note: %s\n", r.Note)
	}
	for _, k := range r.InFlight.Keys {
		keys := make([]string, len(k.Key))
		for i, kv := range k.Key {
			keys[i] = kv.Column + "=" + textOrNull(kv.Value)
		}
		fmt.Fprintf(b, "  in flight (still changing, not compared): %s", strings.Join(keys, " "))
		if k.DocumentKey != "" {
			fmt.Fprintf(b, " %s", k.DocumentKey)
		}
		b.WriteByte('\n')
	}
	if shown := int64(len(r.InFlight.Keys)); shown < r.InFlight.Count {
		fmt.Fprintf(b, "  … %d more in flight (--max-differences)\n", r.InFlight.Count-shown)
	}
}

// deadLetterIDs lists a document's dead letters: "17, 18".
func deadLetterIDs(ids []int64) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprint(id)
	}
	return strings.Join(out, ", ")
}

func writeDocumentsText(b *bufio.Writer, what string, l verify.DocumentList) {
	for _, d := range l.Documents {
		fmt.Fprintf(b, "  %s: %s", what, d.DocumentKey)
		if len(d.DeadLetters) > 0 {
			fmt.Fprintf(b, " (dead letter %s)", deadLetterIDs(d.DeadLetters))
		}
		if d.Error != "" {
			fmt.Fprintf(b, ": %s", firstLine(d.Error, 200))
		}
		b.WriteByte('\n')
	}
	if shown := int64(len(l.Documents)); shown < l.Count {
		fmt.Fprintf(b, "  … %d more %s documents (--max-differences)\n", l.Count-shown, what)
	}
}

func textOrNull(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}

func quoteOrNull(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}
