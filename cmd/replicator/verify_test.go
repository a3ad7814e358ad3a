package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/verify"
)

// verifyFixture is one MongoDB with the design example's collection,
// copied into a fresh PostgreSQL database by `replicator snapshot`.
type verifyFixture struct {
	cfg  string
	pool *pgxpool.Pool
}

// advisoryDoc is document i of the fixture: two tenants, a decimal with a
// trailing zero, a date, 0–3 affected packages whose ranges are jsonb.
func advisoryDoc(i int) bson.D {
	tenant := bson.Binary{Subtype: 4, Data: []byte(fmt.Sprintf("tenant-%d-0123456", i%2))[:16]}
	cvss, _ := bson.ParseDecimal128(fmt.Sprintf("%d.50", i%10))
	aff := bson.A{}
	for j := range i % 4 {
		aff = append(aff, bson.D{{Key: "purl", Value: fmt.Sprintf("pkg:npm/lib-%d@%d.0.0", i, j)},
			{Key: "ranges", Value: bson.A{bson.D{{Key: "type", Value: "SEMVER"}, {Key: "events", Value: bson.A{
				bson.D{{Key: "introduced", Value: "0"}}, bson.D{{Key: "fixed", Value: fmt.Sprintf("%d.0.1", j)}}}}}}}})
	}
	return bson.D{{Key: "_id", Value: fmt.Sprintf("GHSA-%02d", i)}, {Key: "tenantId", Value: tenant},
		{Key: "severity", Value: []string{"low", "moderate", "high", "critical"}[i%4]},
		{Key: "metrics", Value: bson.D{{Key: "cvss", Value: cvss}}},
		{Key: "published", Value: bson.NewDateTimeFromTime(time.Date(2025, 1, 1+i, 3, 4, 5, 0, time.UTC))},
		{Key: "affected", Value: aff}, {Key: "summary", Value: fmt.Sprintf("advisory %d", i)}}
}

// newVerifyFixture loads 30 advisories (and extra documents) into a
// MongoDB of its own and snapshots them with the command. The mapping is
// design.yaml's with its tenant_id column declared as the tenant.
func newVerifyFixture(t *testing.T, extra ...bson.D) *verifyFixture {
	t.Helper()
	env := mongotest.New(t)
	if env.Real() {
		t.Skip("writes to the fixed database vuln")
	}
	ctx := context.Background()
	docs := []any{}
	for i := range 30 {
		docs = append(docs, advisoryDoc(i))
	}
	for _, d := range extra {
		docs = append(docs, d)
	}
	if _, err := env.Client.Database("vuln").Collection("advisories").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(designConfig)
	if err != nil {
		t.Fatal(err)
	}
	url := testenv.PostgresURL(t)
	yaml := strings.NewReplacer(
		"mongodb://127.0.0.1:27017/?replicaSet=rs0", env.URI,
		"postgres://postgres@127.0.0.1:5432/app", url,
		"./replicator-data", filepath.Join(t.TempDir(), "data"),
		"    key: [id]\n", "    key: [id]\n    tenant_id: { column: tenant_id }\n",
	).Replace(string(raw))
	f := &verifyFixture{cfg: filepath.Join(t.TempDir(), "replicator.yaml"), pool: testenv.Pool(t, url)}
	if err := os.WriteFile(f.cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, "snapshot", "--config", f.cfg, "--progress", "log"); code != 0 {
		t.Fatalf("snapshot: code %d\n%s%s", code, out, errs)
	}
	return f
}

func (f *verifyFixture) exec(t *testing.T, sql string) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// verifyJSON runs verify --format json and decodes its document.
func (f *verifyFixture) verifyJSON(t *testing.T, wantCode int, args ...string) verifyDoc {
	t.Helper()
	code, out, errs := run(t, append([]string{"verify", "--config", f.cfg, "--format", "json", "--chunk-size", "8"}, args...)...)
	if code != wantCode {
		t.Fatalf("verify: code %d, want %d\n%s%s", code, wantCode, out, errs)
	}
	var doc verifyDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("verify output: %v\n%s", err, out)
	}
	if len(doc.Collections) != 1 || len(doc.Collections[0].Tables) != 2 {
		t.Fatalf("verify: want one collection with two tables:\n%s", out)
	}
	return doc
}

func TestVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	t.Run("equal", func(t *testing.T) {
		f := newVerifyFixture(t)
		code, out, errs := run(t, "verify", "--config", f.cfg, "--chunk-size", "8")
		if code != 0 {
			t.Fatalf("code %d\n%s%s", code, out, errs)
		}
		for _, w := range []string{"vuln.advisories: equal (30 documents read, 0 skipped by the filter)",
			"table vuln.advisories: equal", "rows      expected 30, actual 30", "table vuln.advisory_affected: equal",
			"rows      expected 43, actual 43", "verify: PASS: 1 collection(s)"} {
			if !strings.Contains(out, w) {
				t.Errorf("missing %q in:\n%s", w, out)
			}
		}
		if !strings.Contains(errs, "verify vuln.advisories: 30 documents read") {
			t.Errorf("no progress on stderr:\n%s", errs)
		}
		doc := f.verifyJSON(t, 0, "--all")
		root := doc.Collections[0].Tables[0]
		if !doc.Equal || doc.Verdict != "PASS" || root.ExpectedChecksum != root.ActualChecksum || root.ExpectedChecksum == "" {
			t.Errorf("not equal: %+v", doc)
		}
		if len(root.Tenants) != 2 || root.Tenants[0].ExpectedRows != 15 || root.Tenants[0].ActualRows != 15 {
			t.Errorf("tenants: %+v", root.Tenants)
		}
	})

	t.Run("repair fixes what verify found", func(t *testing.T) {
		f := newVerifyFixture(t)
		f.exec(t, `UPDATE vuln.advisories SET severity = 'none' WHERE id = 'GHSA-03'`)
		f.exec(t, `DELETE FROM vuln.advisories WHERE id = 'GHSA-07'`)
		f.exec(t, `INSERT INTO vuln.advisories (id, tenant_id, _cdc_ts, _cdc_inc, _cdc_seq)
			VALUES ('GHSA-99', '11111111-1111-4111-8111-111111111111', 1, 1, 0)`)
		f.exec(t, `UPDATE vuln.advisory_affected SET purl = 'pkg:npm/evil@6.6.6' WHERE advisory_id = 'GHSA-02' AND ordinal = 1`)
		f.exec(t, `INSERT INTO vuln.advisory_affected (advisory_id, ordinal, tenant_id, purl) SELECT 'GHSA-04', 99, tenant_id, 'pkg:npm/extra@1' FROM vuln.advisories WHERE id = 'GHSA-04'`)
		code, out, errs := run(t, "verify", "--config", f.cfg, "--format", "json", "--chunk-size", "8", "--repair")
		if code != 0 {
			t.Fatalf("verify --repair: code %d\n%s%s", code, out, errs)
		}
		var doc verifyDoc
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		r := doc.Collections[0].Repair
		if r == nil || r.Documents != 4 || r.Deleted != 1 || r.Skipped != 0 || r.Unattributed != 0 || !doc.Equal {
			t.Fatalf("repair %+v, equal %v:\n%s\n%s", r, doc.Equal, out, errs)
		}
		if !strings.Contains(errs, "verify vuln.advisories: repaired: 4 document(s) copied again (0 gone or not transformable), 1 row(s) deleted, 0 extra child row(s) without a document; verifying again") {
			t.Errorf("stderr:\n%s", errs)
		}
		// A plain verification agrees, and the deleted row left a
		// tombstone as a delete event would.
		f.verifyJSON(t, 0)
		var n int
		if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM replicator.tombstones WHERE table_name = 'vuln.advisories' AND key = '{GHSA-99}'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("tombstone of GHSA-99: %d, %v", n, err)
		}
	})

	t.Run("sample", func(t *testing.T) {
		f := newVerifyFixture(t)
		// GHSA-28 and GHSA-29 are the newest of their tenants; GHSA-03 is
		// not sampled.
		f.exec(t, `UPDATE vuln.advisories SET severity = 'none' WHERE id IN ('GHSA-03', 'GHSA-29')`)
		doc := f.verifyJSON(t, 1, "--sample", "2", "--no-recheck")
		r := doc.Collections[0]
		root := r.Tables[0]
		if r.Sample == nil || r.Sample.PerTenant != 2 || r.Sample.Tenants != 2 || len(r.Sample.Unmatched) != 0 || r.Documents != 4 {
			t.Fatalf("sample %+v, documents %d", r.Sample, r.Documents)
		}
		if root.ExpectedRows != 4 || root.ActualRows != 4 || root.Differences.Total != 1 || *root.Differences.Rows[0].Key[0].Value != "GHSA-29" {
			t.Errorf("sampled root: %d/%d rows, differences %+v", root.ExpectedRows, root.ActualRows, root.Differences)
		}
		code, out, errs := run(t, "verify", "--config", f.cfg, "--sample", "2", "--no-recheck")
		if code != 1 || !strings.Contains(out, "sample: the 2 newest documents of each of 2 tenant(s); only their rows are compared") {
			t.Errorf("code %d\n%s%s", code, out, errs)
		}
		// A tenant PostgreSQL holds that no document has makes it differ.
		f.exec(t, `INSERT INTO vuln.advisories (id, tenant_id, _cdc_ts, _cdc_inc, _cdc_seq)
			VALUES ('GHSA-98', '22222222-2222-4222-8222-222222222222', 1, 1, 0)`)
		doc = f.verifyJSON(t, 1, "--sample", "2", "--no-recheck")
		if sm := doc.Collections[0].Sample; len(sm.Unmatched) != 1 || sm.Unmatched[0] != "22222222-2222-4222-8222-222222222222" || doc.Collections[0].Tables[0].Differences.Total != 1 {
			t.Errorf("unmatched tenant: %+v", doc.Collections[0])
		}
	})

	t.Run("tampering is found and named", func(t *testing.T) {
		f := newVerifyFixture(t)
		f.exec(t, `UPDATE vuln.advisories SET severity = 'none' WHERE id = 'GHSA-03'`) // changed column
		f.exec(t, `DELETE FROM vuln.advisories WHERE id = 'GHSA-07'`)                  // deleted row, its 3 children with it
		f.exec(t, `INSERT INTO vuln.advisories (id, tenant_id, _cdc_ts, _cdc_inc, _cdc_seq)
			VALUES ('GHSA-99', '11111111-1111-4111-8111-111111111111', 1, 1, 0)`) // extra row
		f.exec(t, `UPDATE vuln.advisory_affected SET purl = 'pkg:npm/evil@6.6.6' WHERE advisory_id = 'GHSA-02' AND ordinal = 1`) // changed child row
		doc := f.verifyJSON(t, 1, "--collection", "vuln.advisories")
		if doc.Equal || doc.Verdict != "FAIL" {
			t.Fatalf("verdict %s", doc.Verdict)
		}
		root, kids := doc.Collections[0].Tables[0], doc.Collections[0].Tables[1]
		if d := root.Differences; d.Total != 3 || d.Missing != 1 || d.Extra != 1 || d.Different != 1 {
			t.Errorf("root differences: %+v", d)
		}
		if root.ExpectedRows != 30 || root.ActualRows != 30 || root.ExpectedChecksum == root.ActualChecksum {
			t.Errorf("root counts %d/%d, checksums %s/%s", root.ExpectedRows, root.ActualRows, root.ExpectedChecksum, root.ActualChecksum)
		}
		got := map[string]string{}
		for _, r := range root.Differences.Rows {
			got[*r.Key[0].Value] = r.Kind
			if r.Kind == "different" {
				if len(r.Columns) != 1 || r.Columns[0].Column != "severity" || *r.Columns[0].Expected != "critical" || *r.Columns[0].Actual != "none" {
					t.Errorf("changed column: %+v", r.Columns)
				}
			}
		}
		if got["GHSA-03"] != "different" || got["GHSA-07"] != "missing" || got["GHSA-99"] != "extra" {
			t.Errorf("root rows: %v", got)
		}
		if d := kids.Differences; d.Total != 4 || d.Missing != 3 || d.Different != 1 {
			t.Errorf("child differences: %+v", d)
		}
		for _, r := range kids.Differences.Rows {
			if r.Kind == "different" && (*r.Key[0].Value != "GHSA-02" || *r.Key[1].Value != "1" || r.Columns[0].Column != "purl" ||
				*r.Columns[0].Actual != "pkg:npm/evil@6.6.6") {
				t.Errorf("changed child row: %+v %+v", r.Key, r.Columns)
			}
		}
		// The text report names them too, and --max-differences bounds the list.
		code, out, _ := run(t, "verify", "--config", f.cfg, "--max-differences", "1")
		for _, w := range []string{"vuln.advisories: DIFFERENT", "3 difference(s): 1 missing in PostgreSQL, 1 extra in PostgreSQL, 1 different",
			"different id=GHSA-03", `severity: expected "critical", actual "none"`, "… 2 more (--max-differences)", "verify: FAIL"} {
			if !strings.Contains(out, w) {
				t.Errorf("missing %q in:\n%s", w, out)
			}
		}
		if code != 1 {
			t.Errorf("code %d", code)
		}
	})

	t.Run("equal values in another form pass", func(t *testing.T) {
		f := newVerifyFixture(t)
		// jsonb keys in another order, numeric without its trailing zero,
		// the same instant in another zone.
		f.exec(t, `UPDATE vuln.advisory_affected SET ranges = '[{"events": [{"introduced": "0"}, {"fixed": "1.0.1"}], "type": "SEMVER"}]'
			WHERE advisory_id = 'GHSA-02' AND ordinal = 1`)
		f.exec(t, `UPDATE vuln.advisories SET cvss = 3.5, published_at = '2025-01-04 05:04:05+02', doc = '{"summary": "advisory 3"}' WHERE id = 'GHSA-03'`)
		var cvss string
		if err := f.pool.QueryRow(context.Background(), `SELECT cvss::text FROM vuln.advisories WHERE id = 'GHSA-03'`).Scan(&cvss); err != nil || cvss != "3.5" {
			t.Fatalf("cvss %q %v", cvss, err)
		}
		doc := f.verifyJSON(t, 0)
		for _, tr := range doc.Collections[0].Tables {
			if tr.ExpectedChecksum != tr.ActualChecksum {
				t.Errorf("%s: checksums %s, %s", tr.Table, tr.ExpectedChecksum, tr.ActualChecksum)
			}
		}
	})

	t.Run("dead letters", func(t *testing.T) {
		// No tenantId: the required tenant is missing, the snapshot
		// dead-letters the document.
		f := newVerifyFixture(t, bson.D{{Key: "_id", Value: "GHSA-BAD"}, {Key: "severity", Value: "low"}})
		// Rows PostgreSQL holds for it (an older version) are explained too.
		f.exec(t, `INSERT INTO vuln.advisories (id, tenant_id, _cdc_ts, _cdc_inc, _cdc_seq)
			VALUES ('GHSA-BAD', '11111111-1111-4111-8111-111111111111', 1, 1, 0);
			INSERT INTO vuln.advisory_affected (advisory_id, ordinal, tenant_id, purl)
			VALUES ('GHSA-BAD', 0, '11111111-1111-4111-8111-111111111111', 'pkg:npm/old@1')`)
		doc := f.verifyJSON(t, 1)
		r := doc.Collections[0]
		if r.DeadLettered.Count != 1 || r.DeadLettered.Documents[0].DocumentKey != `{"_id":"GHSA-BAD"}` ||
			len(r.DeadLettered.Documents[0].DeadLetters) != 1 || r.TransformErrors.Count != 0 {
			t.Fatalf("dead lettered %+v, transform errors %+v", r.DeadLettered, r.TransformErrors)
		}
		for _, tr := range r.Tables {
			if tr.Differences.Total != 0 {
				t.Errorf("%s: differences %+v", tr.Table, tr.Differences)
			}
		}
		code, out, _ := run(t, "verify", "--config", f.cfg)
		if code != 1 || !strings.Contains(out, `dead-lettered: {"_id":"GHSA-BAD"} (dead letter `) {
			t.Errorf("code %d:\n%s", code, out)
		}
		// Resolved, the dead letter no longer explains it: a transform error.
		id := r.DeadLettered.Documents[0].DeadLetters[0]
		if code, out, errs := run(t, "dlq", "resolve", fmt.Sprint(id), "--config", f.cfg); code != 0 {
			t.Fatalf("dlq resolve: %s%s", out, errs)
		}
		r = f.verifyJSON(t, 1).Collections[0]
		if r.DeadLettered.Count != 0 || r.TransformErrors.Count != 1 || !strings.Contains(r.TransformErrors.Documents[0].Error, "required") {
			t.Errorf("dead lettered %+v, transform errors %+v", r.DeadLettered, r.TransformErrors)
		}
	})

	t.Run("usage and unreachable target", func(t *testing.T) {
		t.Setenv("REPLICATOR_TARGET_URL", "")
		if code, _, errs := run(t, "verify", "--config", designConfig, "--collection", "no.such"); code != 2 || !strings.Contains(errs, `collection "no.such" is not in`) {
			t.Errorf("unknown collection: code %d %s", code, errs)
		}
		if code, _, errs := run(t, "verify", "--config", designConfig, "--all", "--collection", "vuln.advisories"); code != 2 {
			t.Errorf("--all with --collection: code %d %s", code, errs)
		}
		t.Setenv("REPLICATOR_TARGET_URL", "postgres://postgres@127.0.0.1:1/app?connect_timeout=2")
		if code, _, errs := run(t, "verify", "--config", designConfig); code != 1 || !strings.Contains(errs, "replicator verify: target:") {
			t.Errorf("unreachable target: code %d %s", code, errs)
		}
	})
}

// TestVerifyTextBounds: the text report lists every tenant whose counts
// differ but only the first equal ones, and shows the re-checks, the
// note and the documents still in flight.
func TestVerifyTextBounds(t *testing.T) {
	str := func(s string) *string { return &s }
	tr := verify.TableReport{Table: "app.t", Key: []string{"id"}, TenantColumn: "tenant_id"}
	for i := range 50 {
		n := int64(3)
		if i == 41 {
			n = 2
		}
		tr.Tenants = append(tr.Tenants, verify.TenantCounts{Tenant: str(fmt.Sprintf("t%02d", i)), ExpectedRows: 3, ActualRows: n})
	}
	rep := verify.Report{Collection: "app.c", Tables: []verify.TableReport{tr}, Rechecks: 2, Note: "why not",
		InFlight: verify.KeyList{Count: 3, Keys: []verify.KeyReport{{DocumentKey: `{"_id":"h"}`, Key: []verify.KeyValue{{Column: "id", Value: str("h")}}}}}}
	var out strings.Builder
	if err := writeVerifyText(&out, verifyDoc{Verdict: "FAIL", Collections: []verify.Report{rep}}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"tenant_id t19: expected 3, actual 3\n",
		"tenant_id t41: expected 3, actual 2  ≠\n",
		"… 29 more tenants with equal counts (--format json lists them)\n",
		"compared again 2 time(s) after the applier caught up\n",
		"note: why not\n",
		`in flight (still changing, not compared): id=h {"_id":"h"}` + "\n",
		"… 2 more in flight (--max-differences)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("text report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "t20:") {
		t.Errorf("text report lists a 21st equal tenant:\n%s", got)
	}
}
