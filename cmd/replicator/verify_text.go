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
		for _, t := range r.Tables {
			writeTableText(b, t)
		}
		writeDocumentsText(b, "transform error", r.TransformErrors)
		writeDocumentsText(b, "dead-lettered", r.DeadLettered)
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
	for _, tc := range t.Tenants {
		mark := ""
		if tc.ExpectedRows != tc.ActualRows {
			mark = "  ≠"
		}
		fmt.Fprintf(b, "    %s %s: expected %d, actual %d%s\n", t.TenantColumn, textOrNull(tc.Tenant), tc.ExpectedRows, tc.ActualRows, mark)
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

func writeDocumentsText(b *bufio.Writer, what string, l verify.DocumentList) {
	for _, d := range l.Documents {
		fmt.Fprintf(b, "  %s: %s", what, d.DocumentKey)
		if len(d.DeadLetters) > 0 {
			ids := make([]string, len(d.DeadLetters))
			for i, id := range d.DeadLetters {
				ids[i] = fmt.Sprint(id)
			}
			fmt.Fprintf(b, " (dead letter %s)", strings.Join(ids, ", "))
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
