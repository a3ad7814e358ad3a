package main

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/verify"
	"github.com/mongopg/replicator/transform"
)

// Bounds of the Markdown report; the JSON report keeps everything.
const (
	mdMaxTenants = 50  // tenant rows per table
	mdMaxValue   = 200 // characters of one value
)

// writeCutoverMarkdown writes doc for a reviewer: the verdict and its
// reasons first, then each step with tables of counts, tenants and
// differences.
func writeCutoverMarkdown(b *bytes.Buffer, doc *cutoverDoc) {
	fmt.Fprintf(b, "# Cutover report: %s\n\n", doc.Verdict)
	fmt.Fprintf(b, "| | |\n|---|---|\n")
	fmt.Fprintf(b, "| Verdict | **%s** |\n", doc.Verdict)
	fmt.Fprintf(b, "| Collections | %s |\n", codeList(doc.Selected))
	if doc.Module != "" {
		fmt.Fprintf(b, "| Module | %s |\n", mdCell(doc.Module))
	}
	fmt.Fprintf(b, "| Started | %s |\n", mdTime(doc.StartedAt))
	fmt.Fprintf(b, "| Finished | %s (%s) |\n", mdTime(doc.FinishedAt), doc.FinishedAt.Sub(doc.StartedAt).Round(time.Millisecond))
	fmt.Fprintf(b, "| Config | %s |\n", mdCell(doc.Config))
	fmt.Fprintf(b, "| Replicator | %s |\n", mdCell(doc.Version.String()))
	fmt.Fprintf(b, "| JSON report | %s |\n\n", mdCell(doc.Files.JSON))
	if doc.Pass {
		b.WriteString("Every collection drained, verified equal and has no unresolved dead letter.\n\n")
	} else {
		b.WriteString("## Problems\n\n")
		for _, p := range doc.Problems {
			fmt.Fprintf(b, "- %s\n", mdText(p))
		}
		b.WriteString("\n")
	}
	writeDrainMarkdown(b, &doc.Drain)
	writeCaptureMarkdown(b, &doc.Capture)
	b.WriteString("## 3. Verification\n\n")
	for i := range doc.Collections {
		writeCollectionMarkdown(b, &doc.Collections[i])
	}
	writeDeadLettersMarkdown(b, doc.Collections)
}

func writeDrainMarkdown(b *bytes.Buffer, d *cutoverDrain) {
	b.WriteString("## 1. Drain\n\n")
	fmt.Fprintf(b, "Target: the source's majority cluster time when the cutover started, %s. ", mdCT(d.TargetClusterTime))
	if d.Drained {
		fmt.Fprintf(b, "Drained in %s (%s to %s).\n\n", d.FinishedAt.Sub(d.StartedAt).Round(time.Millisecond), mdTime(d.StartedAt), mdTime(d.FinishedAt))
	} else {
		fmt.Fprintf(b, "**Not drained within %s**: the collections below say what they were waiting for.\n\n", time.Duration(d.TimeoutSeconds*float64(time.Second)))
	}
	switch p := d.Capture; {
	case p != nil:
		fmt.Fprintf(b, "Capture position at the last reading: %s, saved %s.\n\n", mdCT(p.ClusterTime), mdTime(p.SavedAt))
	}
	if !d.CaptureReached && d.CaptureWaiting != "" {
		fmt.Fprintf(b, "Capture: %s.\n\n", mdText(d.CaptureWaiting))
	}
	b.WriteString("| Collection | Drained | Applied seq | Checkpoint cluster time | Pending | Committed | Waiting for |\n")
	b.WriteString("|---|---|---:|---|---:|---|---|\n")
	for _, c := range d.Collections {
		seq, ct, pending, committed := "–", "–", "–", "–"
		if c.AppliedSeq != nil {
			seq = fmt.Sprint(*c.AppliedSeq)
		}
		if c.ClusterTime != nil {
			ct = mdCT(*c.ClusterTime)
		}
		if c.Pending != nil {
			pending = fmt.Sprint(*c.Pending)
		}
		if c.CommittedAt != nil {
			committed = mdTime(*c.CommittedAt)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", mdCell(c.Collection), yesNo(c.Drained), seq, ct, pending, committed, mdText(c.Waiting))
	}
	b.WriteString("\n")
}

func writeCaptureMarkdown(b *bytes.Buffer, c *cutoverCapture) {
	b.WriteString("## 2. Capture position\n\n| | |\n|---|---|\n")
	fmt.Fprintf(b, "| Source | %s |\n", mdCell(c.Source))
	if p := c.Position; p != nil {
		fmt.Fprintf(b, "| Capture cluster time | %s |\n", mdCT(p.ClusterTime))
		if p.Token != "" {
			fmt.Fprintf(b, "| Resume token | %s |\n", mdCell(p.Token))
		} else {
			b.WriteString("| Resume token | none: a start time, capture resumes at the cluster time |\n")
		}
		fmt.Fprintf(b, "| Saved at | %s |\n", mdTime(p.SavedAt))
	} else {
		b.WriteString("| Capture position | none |\n")
	}
	if c.SourceClusterTime != nil {
		fmt.Fprintf(b, "| Source cluster time | %s |\n", mdCT(*c.SourceClusterTime))
	}
	fmt.Fprintf(b, "| Recorded at | %s |\n", mdTime(c.RecordedAt))
	if c.Error != "" {
		fmt.Fprintf(b, "| Error | %s |\n", mdText(c.Error))
	}
	b.WriteString("\n")
}

func writeCollectionMarkdown(b *bytes.Buffer, c *cutoverCollection) {
	r := c.Verify
	switch {
	case c.VerifyError != "":
		fmt.Fprintf(b, "### %s: not verified\n\nVerify failed: %s\n\n", mdCode(c.Collection), mdText(c.VerifyError))
		return
	case r == nil:
		fmt.Fprintf(b, "### %s: not verified\n\n%s.\n\n", mdCode(c.Collection), mdText(firstUpper(c.VerifySkipped)))
		return
	}
	state := "equal"
	if !r.Equal {
		state = "DIFFERENT"
	}
	fmt.Fprintf(b, "### %s: %s\n\n", mdCode(c.Collection), state)
	fmt.Fprintf(b, "%d documents read, %d skipped by the filter; %d fail to transform; %d dead-lettered; %d still changing (in flight); compared again %d time(s) after the applier caught up.\n\n",
		r.Documents, r.Skipped, r.TransformErrors.Count, r.DeadLettered.Count, r.InFlight.Count, r.Rechecks)
	if r.Note != "" {
		fmt.Fprintf(b, "Note: %s\n\n", mdText(r.Note))
	}
	b.WriteString("| Table | Expected rows | Actual rows | Expected checksum | Actual checksum | Differences |\n")
	b.WriteString("|---|---:|---:|---|---|---|\n")
	for _, t := range r.Tables {
		d := t.Differences
		diff := "none"
		if d.Total > 0 {
			diff = fmt.Sprintf("**%d**: %d missing, %d extra, %d different", d.Total, d.Missing, d.Extra, d.Different)
		}
		fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s |\n", mdCell(t.Table), t.ExpectedRows, t.ActualRows,
			mdCell(t.ExpectedChecksum), mdCell(t.ActualChecksum), diff)
	}
	b.WriteString("\n")
	for _, t := range r.Tables {
		writeTenantsMarkdown(b, &t)
	}
	for _, t := range r.Tables {
		writeDifferencesMarkdown(b, &t)
	}
	writeDocumentsMarkdown(b, "Documents that fail to transform", r.TransformErrors)
	writeDocumentsMarkdown(b, "Dead-lettered documents", r.DeadLettered)
}

// writeTenantsMarkdown lists a table's rows per tenant, those whose counts
// differ first, at most mdMaxTenants of them.
func writeTenantsMarkdown(b *bytes.Buffer, t *verify.TableReport) {
	if len(t.Tenants) == 0 {
		return
	}
	ts := append([]verify.TenantCounts(nil), t.Tenants...)
	sort.SliceStable(ts, func(i, j int) bool {
		return ts[i].ExpectedRows != ts[i].ActualRows && ts[j].ExpectedRows == ts[j].ActualRows
	})
	fmt.Fprintf(b, "#### %s: rows per tenant (%s)\n\n", mdCode(t.Table), mdCode(t.TenantColumn))
	b.WriteString("| Tenant | Expected rows | Actual rows | |\n|---|---:|---:|---|\n")
	for i, tc := range ts {
		if i == mdMaxTenants {
			fmt.Fprintf(b, "\n… %d more tenants (all of them are in the JSON report)\n", len(ts)-mdMaxTenants)
			break
		}
		mark := ""
		if tc.ExpectedRows != tc.ActualRows {
			mark = "**differs**"
		}
		fmt.Fprintf(b, "| %s | %d | %d | %s |\n", mdValue(tc.Tenant), tc.ExpectedRows, tc.ActualRows, mark)
	}
	b.WriteString("\n")
}

// writeDifferencesMarkdown lists a table's differing rows: one line per
// missing or extra row, one per differing column of a different row.
func writeDifferencesMarkdown(b *bytes.Buffer, t *verify.TableReport) {
	d := t.Differences
	if d.Total == 0 {
		return
	}
	fmt.Fprintf(b, "#### %s: differences (%d: %d missing in PostgreSQL, %d extra in PostgreSQL, %d different)\n\n",
		mdCode(t.Table), d.Total, d.Missing, d.Extra, d.Different)
	b.WriteString("| Kind | Key | Column | Expected (MongoDB) | Actual (PostgreSQL) |\n|---|---|---|---|---|\n")
	for _, r := range d.Rows {
		keys := make([]string, len(r.Key))
		for i, k := range r.Key {
			keys[i] = k.Column + "=" + textOrNull(k.Value)
		}
		key := mdCell(strings.Join(keys, " "))
		if len(r.Columns) == 0 {
			fmt.Fprintf(b, "| %s | %s | | | |\n", r.Kind, key)
		}
		for _, c := range r.Columns {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", r.Kind, key, mdCell(c.Column), mdValue(c.Expected), mdValue(c.Actual))
		}
	}
	if shown := int64(len(d.Rows)); shown < d.Total {
		fmt.Fprintf(b, "\n… %d more differing rows not listed (the first %d per table are; the counts are complete)\n", d.Total-shown, shown)
	}
	b.WriteString("\n")
}

func writeDocumentsMarkdown(b *bytes.Buffer, title string, l verify.DocumentList) {
	if l.Count == 0 {
		return
	}
	fmt.Fprintf(b, "#### %s (%d)\n\n", title, l.Count)
	for _, d := range l.Documents {
		fmt.Fprintf(b, "- %s", mdCode(d.DocumentKey))
		if len(d.DeadLetters) > 0 {
			fmt.Fprintf(b, " (dead letter %s)", deadLetterIDs(d.DeadLetters))
		}
		if d.Error != "" {
			fmt.Fprintf(b, ": %s", mdText(firstLine(d.Error, mdMaxValue)))
		}
		b.WriteString("\n")
	}
	if shown := int64(len(l.Documents)); shown < l.Count {
		fmt.Fprintf(b, "- … %d more\n", l.Count-shown)
	}
	b.WriteString("\n")
}

func writeDeadLettersMarkdown(b *bytes.Buffer, cs []cutoverCollection) {
	b.WriteString("## 4. Dead letters outstanding\n\n| Collection | Unresolved |\n|---|---:|\n")
	var listed []deadLetterJSON
	for _, c := range cs {
		n := fmt.Sprint(c.DeadLetters.Unresolved)
		if c.DeadLetters.Error != "" {
			n = "not counted: " + mdText(c.DeadLetters.Error)
		} else if c.DeadLetters.Unresolved > 0 {
			n = "**" + n + "**"
		}
		fmt.Fprintf(b, "| %s | %s |\n", mdCell(c.Collection), n)
		listed = append(listed, c.DeadLetters.First...)
	}
	b.WriteString("\n")
	if len(listed) == 0 {
		return
	}
	fmt.Fprintf(b, "The oldest unresolved ones (at most %d per collection; `replicator dlq list` shows all, `dlq show ID` one, `dlq resolve ID` resolves it):\n\n", cutoverDeadLettersListed)
	b.WriteString("| Id | Collection | Stage | Reason | Document | Created | Error |\n|---:|---|---|---|---|---|---|\n")
	for _, d := range listed {
		doc := "–"
		if d.DocumentKey != "" {
			doc = mdCell(d.DocumentKey)
		}
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s |\n", d.ID, mdCell(d.Collection), d.Stage, mdText(d.Reason), doc,
			mdTime(d.CreatedAt), mdText(firstLine(d.Error, mdMaxValue)))
	}
	b.WriteString("\n")
}

// mdText escapes s for running text and table cells: one line, no
// Markdown or HTML markup.
func mdText(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", " ")
	var out strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '[', ']', '|', '<':
			out.WriteByte('\\')
		}
		out.WriteRune(r)
	}
	return out.String()
}

// mdCode is s as an inline code span, shortened to mdMaxValue characters.
func mdCode(s string) string {
	if utf8.RuneCountInString(s) > mdMaxValue {
		s = string([]rune(s)[:mdMaxValue]) + "…"
	}
	s = strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || s == "" {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// mdCell is mdCode for a table cell, whose pipes must be escaped even in
// code.
func mdCell(s string) string { return strings.ReplaceAll(mdCode(s), "|", `\|`) }

// mdValue is a SQL value in a table cell; nil is NULL.
func mdValue(s *string) string {
	if s == nil {
		return "*NULL*"
	}
	return mdCell(*s)
}

func mdTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func mdCT(ct transform.ClusterTime) string { return replicator.FormatClusterTime(ct) }

func codeList(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = mdCell(n)
	}
	return strings.Join(out, ", ")
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "**no**"
}

func firstUpper(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + s[n:]
}
