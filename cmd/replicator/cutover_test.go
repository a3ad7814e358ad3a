package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/verify"
)

// cutoverFixture is a replicator running in this process (`replicator
// run`) between a MongoDB, an in-process NATS and a fresh PostgreSQL
// database, with three collections: DB.advisories (the design example's
// mapping, with tenants) and DB.notes make up the module "DB.", and
// SHOP.items another one.
type cutoverFixture struct {
	env               *mongotest.Env
	cfg               string
	pool              *pgxpool.Pool
	vuln, shop        string // database names
	advisories, notes string // namespaces of the module vuln+"."
	items             string
	stop              func()
}

func newCutoverFixture(t *testing.T) *cutoverFixture {
	t.Helper()
	f := &cutoverFixture{env: mongotest.New(t)}
	f.vuln, f.shop = f.env.Database("vuln"), f.env.Database("shop")
	f.advisories, f.notes, f.items = f.vuln+".advisories", f.vuln+".notes", f.shop+".items"
	var advisories []any
	for i := range 30 {
		advisories = append(advisories, advisoryDoc(i))
	}
	f.insert(t, f.advisories, advisories...)
	f.insert(t, f.notes, bson.D{{Key: "_id", Value: "n1"}, {Key: "body", Value: "first"}}, bson.D{{Key: "_id", Value: "n2"}, {Key: "body", Value: "second"}})
	f.insert(t, f.items, bson.D{{Key: "_id", Value: "i1"}, {Key: "qty", Value: 3}})

	url := testenv.PostgresURL(t)
	f.pool = testenv.Pool(t, url)
	nats := testenv.NATS(t)
	yaml := fmt.Sprintf(`source:
  uri: %q
buffer:
  nats_url: %q
  heartbeat_interval: 500ms
target:
  url: %q
log:
  level: warn
collections:
  - source: %s
    table: vuln.advisories
    key: [id]
    tenant_id: { column: tenant_id }
    columns:
      id:           { path: _id,        type: text }
      tenant_id:    { path: tenantId,   type: uuid, required: true }
      severity:     { path: severity,   type: text }
      cvss:         { path: metrics.cvss, type: numeric }
      published_at: { path: published,  type: timestamptz }
    document: { column: doc, include: rest }
    children:
      - path: affected
        table: vuln.advisory_affected
        parent_key: advisory_id
        ordinal: ordinal
        columns:
          purl:   { path: purl,   type: text }
          ranges: { path: ranges, type: jsonb }
    on_error: dead_letter
  - source: %s
    table: vuln.notes
    key: [id]
    columns:
      id:   { path: _id, type: text }
      body: { path: body, type: text }
  - source: %s
    table: shop.items
    key: [id]
    columns:
      id:  { path: _id, type: text }
      qty: { path: qty, type: bigint }
`, f.env.URI, nats.URL, url, f.advisories, f.notes, f.items)
	f.cfg = filepath.Join(t.TempDir(), "replicator.yaml")
	if err := os.WriteFile(f.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	return f
}

func (f *cutoverFixture) insert(t *testing.T, ns string, docs ...any) {
	t.Helper()
	db, coll, _ := strings.Cut(ns, ".")
	if _, err := f.env.Client.Database(db).Collection(coll).InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
}

// start runs `replicator run` (or another pipeline command: capture,
// apply) until stop, or the test's end.
func (f *cutoverFixture) start(t *testing.T, command ...string) {
	t.Helper()
	name := "run"
	if len(command) > 0 {
		name = command[0]
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runMain(ctx, []string{name, "--config", f.cfg, "--metrics-listen", "off"}, logs, logs)
	}()
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("replicator %s: exit %d\n%s", name, code, logs.String())
				}
			case <-time.After(60 * time.Second):
				t.Errorf("replicator %s did not stop within 60s\n%s", name, logs.String())
			}
		})
	}
	t.Cleanup(f.stop)
}

func (f *cutoverFixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// cutover runs the command with --format json into a directory of its
// own and returns the exit code, the document it printed, the document of
// the JSON file (checked to be the same), the Markdown file and stderr.
func (f *cutoverFixture) cutover(t *testing.T, wantCode int, args ...string) (cutoverDoc, string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "reports")
	args = append([]string{"cutover", "--config", f.cfg, "--out", dir, "--format", "json"}, args...)
	start := time.Now()
	code, out, errs := run(t, args...)
	t.Logf("cutover %s: exit %d in %s", strings.Join(args[3:], " "), code, time.Since(start).Round(time.Millisecond))
	if code != wantCode {
		t.Fatalf("cutover: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, out, errs)
	}
	var doc cutoverDoc
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not the report: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("report files: %v, want one .md and one .json", entries)
	}
	stamp := "cutover-" + doc.StartedAt.Format("20060102T150405Z")
	if doc.Files.Markdown != filepath.Join(dir, stamp+".md") || doc.Files.JSON != filepath.Join(dir, stamp+".json") {
		t.Errorf("files %+v, want %s.md and .json in %s", doc.Files, stamp, dir)
	}
	for _, p := range []string{doc.Files.Markdown, doc.Files.JSON} {
		if !strings.Contains(errs, "cutover report: "+p) {
			t.Errorf("path %s not printed:\n%s", p, errs)
		}
	}
	js, err := os.ReadFile(doc.Files.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if string(js) != out {
		t.Errorf("the JSON file differs from the document printed:\nfile:\n%s\nstdout:\n%s", js, out)
	}
	md, err := os.ReadFile(doc.Files.Markdown)
	if err != nil {
		t.Fatal(err)
	}
	return doc, string(md), errs
}

// TestCutover runs the hand-off against a running replicator: equal data
// passes; a tampered row, an unresolved dead letter or a replicator that
// is not running fail it, each named in both reports.
func TestCutover(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	f := newCutoverFixture(t)
	// Written while the replicator runs, before the drain's target: the
	// drain must wait for them.
	f.insert(t, f.notes, bson.D{{Key: "_id", Value: "n3"}, {Key: "body", Value: "third"}})
	db, coll, _ := strings.Cut(f.advisories, ".")
	if _, err := f.env.Client.Database(db).Collection(coll).UpdateOne(context.Background(),
		bson.D{{Key: "_id", Value: "GHSA-05"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "severity", Value: "critical"}}}}); err != nil {
		t.Fatal(err)
	}

	t.Run("module passes", func(t *testing.T) {
		doc, md, errs := f.cutover(t, 0, "--module", f.vuln+".")
		if doc.Verdict != "PASS" || !doc.Pass || len(doc.Problems) != 0 {
			t.Fatalf("verdict %s: %v", doc.Verdict, doc.Problems)
		}
		if want := []string{f.advisories, f.notes}; fmt.Sprint(doc.Selected) != fmt.Sprint(want) || doc.Module != f.vuln+"." {
			t.Errorf("selected %v (module %q), want %v", doc.Selected, doc.Module, want)
		}
		// Step 1: every collection's checkpoint at or past the target,
		// nothing pending, capture past it too.
		d := doc.Drain
		if !d.Drained || d.TargetClusterTime.IsZero() || d.Capture == nil || !d.CaptureReached || len(d.Collections) != 2 {
			t.Fatalf("drain: %+v", d)
		}
		for _, c := range d.Collections {
			if !c.Drained || c.Pending == nil || *c.Pending != 0 || c.ClusterTime == nil || c.ClusterTime.Before(d.TargetClusterTime) ||
				c.AppliedSeq == nil || *c.AppliedSeq == 0 || c.Waiting != "" {
				t.Errorf("drain of %s: %+v", c.Collection, c)
			}
		}
		// Step 2: the capture position and the source's time.
		c := doc.Capture
		if c.Position == nil || c.Position.Token == "" || c.Position.ClusterTime.Before(d.TargetClusterTime) ||
			c.SourceClusterTime == nil || c.SourceClusterTime.Before(d.TargetClusterTime) || c.Error != "" || c.RecordedAt.IsZero() {
			t.Errorf("capture: %+v", c)
		}
		// Steps 3 and 4: a verify report per collection, no dead letters.
		if len(doc.Collections) != 2 {
			t.Fatalf("collections: %+v", doc.Collections)
		}
		adv, notes := doc.Collections[0], doc.Collections[1]
		if adv.Verify == nil || !adv.Verify.Equal || adv.Verify.Documents != 30 || len(adv.Verify.Tables) != 2 ||
			adv.Verify.Tables[0].ExpectedRows != 30 || adv.Verify.Tables[0].ExpectedChecksum != adv.Verify.Tables[0].ActualChecksum ||
			len(adv.Verify.Tables[0].Tenants) != 2 {
			t.Errorf("advisories: %+v", adv.Verify)
		}
		if notes.Verify == nil || !notes.Verify.Equal || notes.Verify.Documents != 3 || notes.Verify.Tables[0].ActualRows != 3 {
			t.Errorf("notes (n3 written before the cutover): %+v", notes.Verify)
		}
		for _, cc := range doc.Collections {
			if cc.DeadLetters.Unresolved != 0 || len(cc.DeadLetters.First) != 0 || !cc.Drained {
				t.Errorf("%s: %+v", cc.Collection, cc)
			}
		}
		for _, w := range []string{"# Cutover report: PASS", "| Verdict | **PASS** |", "## 1. Drain", "## 2. Capture position",
			"| Resume token | `" + c.Position.Token + "` |",
			fmt.Sprintf("| `vuln.advisories` | 30 | 30 | `%s` | `%s` | none |", adv.Verify.Tables[0].ExpectedChecksum, adv.Verify.Tables[0].ActualChecksum),
			"#### `vuln.advisories`: rows per tenant (`tenant_id`)", "| `vuln.notes` | 3 | 3 |",
			"## 4. Dead letters outstanding", "| `" + f.notes + "` | 0 |"} {
			if !strings.Contains(md, w) {
				t.Errorf("Markdown lacks %q:\n%s", w, md)
			}
		}
		if strings.Contains(md, f.items) {
			t.Errorf("Markdown names %s, outside the module:\n%s", f.items, md)
		}
		for _, w := range []string{"cutover: draining 2 collection(s) to source cluster time", "cutover: drained in",
			"verify " + f.advisories + ": 30 documents read"} {
			if !strings.Contains(errs, w) {
				t.Errorf("stderr lacks %q:\n%s", w, errs)
			}
		}
	})

	t.Run("text output", func(t *testing.T) {
		dir := t.TempDir()
		code, out, errs := run(t, "cutover", "--config", f.cfg, "--out", dir, "--collection", f.items)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		for _, w := range []string{f.items + ": drained; equal (1 documents, 1 tables); 0 unresolved dead letter(s)",
			"cutover: PASS: 1 collection(s)", "report: " + dir + "/cutover-"} {
			if !strings.Contains(out, w) {
				t.Errorf("stdout lacks %q:\n%s", w, out)
			}
		}
	})

	t.Run("tampered row fails", func(t *testing.T) {
		f.exec(t, `UPDATE vuln.advisories SET severity = 'none' WHERE id = 'GHSA-03'`)
		defer f.exec(t, `UPDATE vuln.advisories SET severity = 'critical' WHERE id = 'GHSA-03'`)
		doc, md, errs := f.cutover(t, 1, "--collection", f.advisories)
		if doc.Verdict != "FAIL" || doc.Pass || !doc.Drain.Drained {
			t.Fatalf("verdict %s, drained %v", doc.Verdict, doc.Drain.Drained)
		}
		r := doc.Collections[0].Verify
		if r == nil || r.Equal || r.Tables[0].Differences.Different != 1 || r.Tables[0].Differences.Total != 1 {
			t.Fatalf("verify: %+v", r)
		}
		row := r.Tables[0].Differences.Rows[0]
		if row.Kind != verify.Different || *row.Key[0].Value != "GHSA-03" || row.Columns[0].Column != "severity" ||
			*row.Columns[0].Expected != "critical" || *row.Columns[0].Actual != "none" {
			t.Errorf("difference: %+v %+v", row.Key, row.Columns)
		}
		if len(doc.Problems) != 1 || !strings.Contains(doc.Problems[0], f.advisories+" differs: table vuln.advisories: 1 difference(s) (0 missing, 0 extra, 1 different)") {
			t.Errorf("problems: %v", doc.Problems)
		}
		for _, w := range []string{"# Cutover report: FAIL", "## Problems", "### `" + f.advisories + "`: DIFFERENT",
			"#### `vuln.advisories`: differences (1: 0 missing in PostgreSQL, 0 extra in PostgreSQL, 1 different)",
			"| different | `id=GHSA-03` | `severity` | `critical` | `none` |"} {
			if !strings.Contains(md, w) {
				t.Errorf("Markdown lacks %q:\n%s", w, md)
			}
		}
		if !strings.Contains(errs, "replicator cutover: FAIL: "+f.advisories+" differs: table vuln.advisories") {
			t.Errorf("stderr: %s", errs)
		}
	})

	t.Run("unresolved dead letter fails", func(t *testing.T) {
		// No tenantId: the required tenant is missing, capture
		// dead-letters the insert. Deleting the document leaves the data
		// equal and the dead letter unresolved.
		f.insert(t, f.advisories, bson.D{{Key: "_id", Value: "GHSA-BAD"}, {Key: "severity", Value: "low"}})
		if _, err := f.env.Client.Database(db).Collection(coll).DeleteOne(context.Background(), bson.D{{Key: "_id", Value: "GHSA-BAD"}}); err != nil {
			t.Fatal(err)
		}
		doc, md, _ := f.cutover(t, 1, "--collection", f.advisories, "--collection", f.notes)
		adv := doc.Collections[0]
		if !doc.Drain.Drained || adv.Verify == nil || !adv.Verify.Equal || doc.Collections[1].DeadLetters.Unresolved != 0 {
			t.Fatalf("drained %v, verify %+v", doc.Drain.Drained, adv.Verify)
		}
		dl := adv.DeadLetters
		if dl.Unresolved != 1 || len(dl.First) != 1 || dl.First[0].DocumentKey != `{"_id":"GHSA-BAD"}` || dl.First[0].Stage != "transform" {
			t.Fatalf("dead letters: %+v", dl)
		}
		want := fmt.Sprintf("%s: 1 unresolved dead letter(s) (replicator dlq list --collection %s)", f.advisories, f.advisories)
		if doc.Verdict != "FAIL" || len(doc.Problems) != 1 || doc.Problems[0] != want {
			t.Errorf("verdict %s: %v", doc.Verdict, doc.Problems)
		}
		for _, w := range []string{"| `" + f.advisories + "` | **1** |", fmt.Sprintf("| %d | `%s` | transform |", dl.First[0].ID, f.advisories),
			"`{\"_id\":\"GHSA-BAD\"}`"} {
			if !strings.Contains(md, w) {
				t.Errorf("Markdown lacks %q:\n%s", w, md)
			}
		}
		// Resolved, the same cutover passes.
		if code, out, errs := run(t, "dlq", "resolve", fmt.Sprint(dl.First[0].ID), "--config", f.cfg); code != 0 {
			t.Fatalf("dlq resolve: %s%s", out, errs)
		}
		f.cutover(t, 0, "--collection", f.advisories)
	})

	t.Run("no replicator running times out", func(t *testing.T) {
		f.stop()
		f.insert(t, f.notes, bson.D{{Key: "_id", Value: "n4"}, {Key: "body", Value: "after the stop"}})
		start := time.Now()
		doc, md, errs := f.cutover(t, 1, "--collection", f.notes, "--timeout", "4s")
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("took %s with --timeout 4s", took)
		}
		d := doc.Drain
		if d.Drained || len(d.Collections) != 1 || d.Collections[0].Drained || d.CaptureReached {
			t.Fatalf("drain: %+v", d)
		}
		want := f.notes + ": no replicator is running: its checkpoint (cluster time "
		if !strings.Contains(d.Error, "not drained within 4s (target cluster time ") || !strings.Contains(d.Error, want) ||
			!strings.Contains(d.Error, "capture's position is behind the target") || !strings.Contains(d.Error, "capture: position at cluster time ") {
			t.Errorf("drain error: %s", d.Error)
		}
		if !strings.Contains(errs, "replicator cutover: FAIL: drain: not drained within 4s (target cluster time ") || !strings.Contains(errs, want) {
			t.Errorf("stderr does not name the collection and why:\n%s", errs)
		}
		if !strings.Contains(errs, "cutover: waiting for 1 of 1 collection(s)") || !strings.Contains(errs, "  "+f.notes+": ") {
			t.Errorf("no progress on stderr:\n%s", errs)
		}
		if c := doc.Collections[0]; c.Verify != nil || c.VerifySkipped == "" || c.Drained {
			t.Errorf("verified though not drained: %+v", c)
		}
		for _, w := range []string{"# Cutover report: FAIL", "**Not drained within 4s**", "Capture: position at cluster time ", "| `" + f.notes + "` | **no** |",
			"### `" + f.notes + "`: not verified"} {
			if !strings.Contains(md, w) {
				t.Errorf("Markdown lacks %q:\n%s", w, md)
			}
		}
	})

	t.Run("capture alone: no applier", func(t *testing.T) {
		f.start(t, "capture")
		defer f.stop()
		f.insert(t, f.notes, bson.D{{Key: "_id", Value: "n5"}, {Key: "body", Value: "captured, not applied"}})
		doc, _, errs := f.cutover(t, 1, "--collection", f.notes, "--timeout", "5s")
		c := doc.Drain.Collections[0]
		if doc.Drain.Drained || c.Drained || c.Pending == nil || *c.Pending == 0 || !doc.Drain.CaptureReached {
			t.Fatalf("drain: %+v", doc.Drain)
		}
		want := fmt.Sprintf("%s: no replicator is applying: its checkpoint (cluster time %d.%d) has not moved for ", f.notes, c.ClusterTime.T, c.ClusterTime.I)
		if !strings.Contains(errs, want) || !strings.Contains(errs, fmt.Sprintf(" with %d message(s) pending", *c.Pending)) {
			t.Errorf("stderr does not say that nothing applies:\n%s", errs)
		}
	})

	t.Run("replicator back: drains and passes", func(t *testing.T) {
		f.start(t)
		doc, _, _ := f.cutover(t, 0, "--collection", f.notes)
		if r := doc.Collections[0].Verify; r == nil || !r.Equal || r.Documents != 5 {
			t.Errorf("notes: %+v", r)
		}
	})
}

// TestCutoverUsage: a collection must be chosen, one way only; a module
// that matches nothing names the configured collections. Nothing is
// written, nor when a server cannot be reached.
func TestCutoverUsage(t *testing.T) {
	t.Setenv("REPLICATOR_TARGET_URL", "")
	dir := filepath.Join(t.TempDir(), "out")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no selection", nil, "name the collections to hand over: --collection DB.COLL (repeatable) or --module PREFIX"},
		{"both", []string{"--module", "vuln.", "--collection", "vuln.advisories"}, "--collection and --module exclude each other"},
		{"module matches nothing", []string{"--module", "shop."},
			`--module "shop.": no configured collection in ` + designConfig + " starts with it; configured: vuln.advisories"},
		{"empty module", []string{"--module", ""}, "--module needs a namespace prefix"},
		{"unknown collection", []string{"--collection", "no.such"}, `collection "no.such" is not in`},
		{"bad timeout", []string{"--module", "vuln.", "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
		{"argument", []string{"--module", "vuln.", "extra"}, `unexpected argument "extra"`},
		{"bad format", []string{"--module", "vuln.", "--format", "xml"}, `want text or json, not "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"cutover", "--config", designConfig, "--out", dir}, tc.args...)
			code, out, errs := run(t, args...)
			if code != 2 || !strings.Contains(errs, tc.want) || out != "" {
				t.Errorf("exit %d, want 2 and %q\nstdout: %s\nstderr: %s", code, tc.want, out, errs)
			}
		})
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("usage errors created %s: %v", dir, err)
	}
	// A server that cannot be reached is an error (exit 1) naming it, and
	// no report.
	t.Setenv("REPLICATOR_TARGET_URL", "postgres://postgres@127.0.0.1:1/app?connect_timeout=2")
	if code, _, errs := run(t, "cutover", "--config", designConfig, "--out", dir, "--module", "vuln."); code != 1 || !strings.Contains(errs, "replicator cutover: target:") {
		t.Errorf("unreachable target: exit %d\n%s", code, errs)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("a report was written without a cutover: %v %v", entries, err)
	}

	code, out, _ := run(t, "cutover", "--help")
	if code != 0 || !strings.Contains(out, "replicator cutover --config FILE (--collection DB.COLL ... | --module PREFIX)") ||
		!strings.Contains(out, "-timeout duration") || !strings.Contains(out, "Exit status: 0 PASS; 1 FAIL") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "help")
	if code != 0 || !strings.Contains(out, "cutover ") {
		t.Errorf("the command list lacks cutover:\n%s", out)
	}
}

// TestCutoverMarkdownBounds: the Markdown report lists at most 50 tenants
// per table (those whose counts differ first) and says how many more; a
// value with Markdown in it stays inside its cell.
func TestCutoverMarkdownBounds(t *testing.T) {
	rep := verify.Report{Collection: "db.c", Tables: []verify.TableReport{{Table: "s.t", Key: []string{"id"}, TenantColumn: "tenant_id",
		Differences: verify.Differences{Total: 1, Different: 1, Rows: []verify.Difference{{Kind: verify.Different,
			Key:     []verify.KeyValue{{Column: "id", Value: ptr("a|b")}},
			Columns: []verify.ColumnDifference{{Column: "note", Expected: ptr("x`y"), Actual: nil}}}}}}}}
	for i := range 120 {
		n := int64(i % 7)
		tc := verify.TenantCounts{Tenant: ptr(fmt.Sprintf("tenant-%03d", i)), ExpectedRows: n, ActualRows: n}
		if i == 100 {
			tc.ActualRows = n + 1
		}
		rep.Tables[0].Tenants = append(rep.Tables[0].Tenants, tc)
	}
	doc := &cutoverDoc{Verdict: "FAIL", Selected: []string{"db.c"},
		Collections: []cutoverCollection{{Collection: "db.c", Drained: true, Verify: &rep}}}
	var b bytes.Buffer
	writeCutoverMarkdown(&b, doc)
	md := b.String()
	if n := strings.Count(md, "| `tenant-"); n != 50 {
		t.Errorf("%d tenant rows, want 50", n)
	}
	for _, w := range []string{"… 70 more tenants (all of them are in the JSON report)", "| `tenant-100` | 2 | 3 | **differs** |",
		"| different | `id=a\\|b` | `note` | ``x`y`` | *NULL* |"} {
		if !strings.Contains(md, w) {
			t.Errorf("Markdown lacks %q:\n%s", w, md)
		}
	}
	if i, j := strings.Index(md, "tenant-100"), strings.Index(md, "tenant-000"); i < 0 || j < 0 || i > j {
		t.Errorf("the differing tenant is not listed first:\n%s", md)
	}
	js, err := json.Marshal(doc)
	if err != nil || strings.Count(string(js), `"tenant":"tenant-`) != 120 {
		t.Errorf("the JSON document does not keep every tenant: %v", err)
	}
}

func ptr(s string) *string { return &s }

// lockedBuffer is a bytes.Buffer safe for the replicator's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
