package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/transform"
)

// counterByLabel sums the named counter's samples by the value of one label.
func counterByLabel(t testing.TB, g prometheus.Gatherer, name, label string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// poisonTenant is a valid tenant id (a UUID binary).
var poisonTenant = bson.Binary{Subtype: 4, Data: []byte{0x5e, 0x1f, 0x2a, 0x33, 0x44, 0x55, 0x46, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}}

// poisonAdvisory is a well-formed advisory except for what mod changes.
func poisonAdvisory(id string, mod func(bson.D) bson.D) bson.D {
	d := bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: poisonTenant},
		{Key: "severity", Value: "high"},
		{Key: "revision", Value: int64(3)},
		{Key: "affected", Value: bson.A{
			bson.D{{Key: "purl", Value: "pkg:npm/poison@1.0.0"}, {Key: "ranges", Value: bson.A{}}},
			bson.D{{Key: "purl", Value: "pkg:npm/poison@2.0.0"}, {Key: "ranges", Value: bson.A{}}},
		}},
	}
	return mod(d)
}

func setField(d bson.D, key string, v any) bson.D {
	for i := range d {
		if d[i].Key == key {
			d[i].Value = v
			return d
		}
	}
	return append(d, bson.E{Key: key, Value: v})
}

// TestPoisonEndToEnd: while a mixed workload flows, documents that break
// the mapping (a string that is not a UUID in a uuid column, a required
// field missing, a string in an integer column) and a document that
// breaks a CHECK constraint of the target table are inserted. Each lands in
// replicator.dead_letters with its reason (the field path of the transform
// error; SQLSTATE 23514), none of them leaves a row (or a child row), the
// dead-letter counters count them, and every other document replicates
// (ARCHITECTURE.md, guarantee 6).
func TestPoisonEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The target tables exist before the first start so that a constraint
	// the mapping knows nothing about can be added.
	if err := replicator.Prepare(ctx, h.pool, h.mappings); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(ctx, `ALTER TABLE vuln.advisories ADD CONSTRAINT advisories_revision_check CHECK (revision >= 0)`); err != nil {
		t.Fatal(err)
	}

	h.start()
	time.Sleep(time.Second)
	g := h.generator(51, workload.Options{})
	var wg sync.WaitGroup
	var genErr error
	genDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(genDone)
		genErr = g.Run(ctx, 0, 3000)
	}()
	// The poison goes in amid the workload.
	for g.Stats().Events < 1000 {
		select {
		case <-genDone:
			t.Fatalf("workload ended early: %v", genErr)
		case <-time.After(10 * time.Millisecond):
		}
	}

	type poison struct {
		ns, id   string
		doc      bson.D
		stage    string
		reason   string
		path     string // field path the dead letter names
		sqlstate string
	}
	statementID := bson.NewObjectID()
	poisons := []poison{
		{ns: h.ns.Advisories, id: "POISON-not-a-uuid",
			doc:   poisonAdvisory("POISON-not-a-uuid", func(d bson.D) bson.D { return setField(d, "tenantId", "not-a-uuid") }),
			stage: "transform", reason: "transform", path: "tenantId"},
		{ns: h.ns.Statements, id: statementID.Hex(),
			doc: bson.D{{Key: "_id", Value: statementID}, {Key: "vulnerabilityId", Value: "CVE-2026-00001"}, {Key: "status", Value: "fixed"},
				{Key: "products", Value: bson.A{bson.D{{Key: "purl", Value: "pkg:npm/poison@1.0.0"}}}}},
			stage: "transform", reason: "transform", path: "tenantId"},
		{ns: h.ns.Runs, id: "poison-run-queued",
			doc: bson.D{{Key: "_id", Value: "poison-run-queued"}, {Key: "tenantId", Value: poisonTenant},
				{Key: "state", Value: "running"}, {Key: "stats", Value: bson.D{{Key: "queued", Value: "lots"}}}},
			stage: "transform", reason: "transform", path: "stats.queued"},
		// jsonb cannot hold the raw event (\u0000): the dead letter keeps
		// the transform's reason and path, with the raw bytes instead.
		{ns: h.ns.Runs, id: "poison-run-nul",
			doc: bson.D{{Key: "_id", Value: "poison-run-nul"}, {Key: "tenantId", Value: poisonTenant},
				{Key: "state", Value: "run\x00ning"}, {Key: "stats", Value: bson.D{{Key: "queued", Value: int32(1)}}}},
			stage: "transform", reason: "transform", path: "state"},
		{ns: h.ns.Advisories, id: "POISON-check",
			doc:   poisonAdvisory("POISON-check", func(d bson.D) bson.D { return setField(d, "revision", int64(-1)) }),
			stage: "apply", reason: "constraint", path: "", sqlstate: "23514"},
	}
	for _, p := range poisons {
		db, coll, _ := strings.Cut(p.ns, ".")
		if _, err := h.mongo.Client.Database(db).Collection(coll).InsertOne(ctx, p.doc); err != nil {
			t.Fatalf("insert poison %s: %v", p.id, err)
		}
		time.Sleep(100 * time.Millisecond) // amid the workload's events
	}
	wg.Wait()
	if genErr != nil {
		t.Fatal(genErr)
	}
	// More good documents after the poison still flow.
	if err := h.generator(52, workload.Options{InitialDocs: 1}).Run(ctx, 0, 500); err != nil {
		t.Fatal(err)
	}

	type deadRow struct {
		collection, stage, reason, path, sqlstate, key, errText string
		hasRaw                                                  bool
	}
	readDead := func() []deadRow {
		rows, err := h.pool.Query(ctx, `SELECT collection, stage, reason, coalesce(field_path, ''), coalesce(sqlstate, ''),
coalesce(document_key, ''), error, raw_event IS NOT NULL OR raw_bytes IS NOT NULL FROM replicator.dead_letters ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []deadRow
		for rows.Next() {
			var d deadRow
			if err := rows.Scan(&d.collection, &d.stage, &d.reason, &d.path, &d.sqlstate, &d.key, &d.errText, &d.hasRaw); err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	var dead []deadRow
	for {
		if err := h.failed(); err != nil {
			t.Fatalf("pipeline failed: %v", err)
		}
		if dead = readDead(); len(dead) >= len(poisons) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	// No poison left a root or a child row.
	for _, p := range poisons {
		for _, m := range h.mappings {
			if m.Namespace() != p.ns {
				continue
			}
			for _, def := range m.Tables() {
				col := def.Key[0]
				var n int
				if err := h.pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s::text = $1", def.Name, col), p.id).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("poison %s left %d rows in %s", p.id, n, def.Name)
				}
			}
		}
	}

	// Each poison has its dead letter, and there are no others.
	matched := make([]bool, len(dead))
	for _, p := range poisons {
		found := false
		for i, d := range dead {
			if matched[i] || d.collection != p.ns || !strings.Contains(d.key, p.id) {
				continue
			}
			matched[i], found = true, true
			if d.stage != p.stage || d.reason != p.reason || d.sqlstate != p.sqlstate || !d.hasRaw || d.errText == "" {
				t.Errorf("poison %s: dead letter stage %q reason %q sqlstate %q raw %v error %q; want stage %q reason %q sqlstate %q with the raw event",
					p.id, d.stage, d.reason, d.sqlstate, d.hasRaw, d.errText, p.stage, p.reason, p.sqlstate)
			}
			if p.path != "" && d.path != p.path {
				t.Errorf("poison %s: dead letter field path %q, want %q (error %q)", p.id, d.path, p.path, d.errText)
			}
			t.Logf("dead letter %s: stage %s, reason %s, field %q, sqlstate %q: %s", p.id, d.stage, d.reason, d.path, d.sqlstate, d.errText)
		}
		if !found {
			t.Errorf("poison %s in %s has no dead letter", p.id, p.ns)
		}
	}
	for i, d := range dead {
		if !matched[i] {
			t.Errorf("unexpected dead letter: %+v", d)
		}
	}

	// replicator_dead_letters_total counts them by collection.
	want := map[string]float64{}
	for _, p := range poisons {
		want[p.ns]++
	}
	got := counterByLabel(t, h.reg, "replicator_dead_letters_total", "collection")
	for _, m := range h.mappings {
		if ns := m.Namespace(); got[ns] != want[ns] {
			t.Errorf("replicator_dead_letters_total{collection=%q} = %v, want %v", ns, got[ns], want[ns])
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Everything but the poison replicated. Removing the poison documents
	// from MongoDB makes the comparison exact for every other document:
	// any lost, extra or different row still shows.
	for _, p := range poisons {
		db, coll, _ := strings.Cut(p.ns, ".")
		var id any = p.id
		if p.ns == h.ns.Statements {
			id = statementID
		}
		res, err := h.mongo.Client.Database(db).Collection(coll).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		if err != nil {
			t.Fatal(err)
		}
		if res.DeletedCount != 1 {
			t.Fatalf("poison %s: deleted %d documents", p.id, res.DeletedCount)
		}
	}
	r := h.waitEqual(30 * time.Second)
	t.Logf("equal apart from the poison: %s", totalRows(r))
	if n := deadLetters(t, h.pool); n != len(poisons) {
		t.Fatalf("%d dead letters, want %d", n, len(poisons))
	}
}

// TestPoisonHaltEndToEnd: a collection configured with on_error: halt stops
// at a document that breaks a constraint, without a dead letter, while the
// other collections keep replicating and the pipeline keeps running.
func TestPoisonHaltEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range h.cfg.Collections {
		if h.cfg.Collections[i].Source == h.ns.Runs {
			h.cfg.Collections[i].OnError = transform.OnErrorHalt
		}
	}
	var err error
	if h.mappings, err = h.cfg.Mappings(); err != nil {
		t.Fatal(err)
	}
	if err := replicator.Prepare(ctx, h.pool, h.mappings); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(ctx, `ALTER TABLE scheduler.runs ADD CONSTRAINT runs_cost_check CHECK (cost >= 0)`); err != nil {
		t.Fatal(err)
	}

	h.start()
	time.Sleep(time.Second)
	if err := h.generator(61, workload.Options{}).Run(ctx, 0, 1500); err != nil {
		t.Fatal(err)
	}
	cost, err := bson.ParseDecimal128("-1.5")
	if err != nil {
		t.Fatal(err)
	}
	db, coll, _ := strings.Cut(h.ns.Runs, ".")
	if _, err := h.mongo.Client.Database(db).Collection(coll).InsertOne(ctx, bson.D{{Key: "_id", Value: "poison-run-cost"},
		{Key: "tenantId", Value: poisonTenant}, {Key: "state", Value: "queued"}, {Key: "cost", Value: cost}}); err != nil {
		t.Fatal(err)
	}
	if err := h.generator(62, workload.Options{InitialDocs: 1}).Run(ctx, 0, 1500); err != nil {
		t.Fatal(err)
	}

	// The other collections catch up.
	runsTables := map[string]bool{}
	for _, m := range h.mappings {
		if m.Namespace() == h.ns.Runs {
			for _, def := range m.Tables() {
				runsTables[def.Name] = true
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := h.failed(); err != nil {
			t.Fatalf("pipeline stopped: %v", err)
		}
		r, err := workload.Compare(ctx, h.mongo.Client, h.pool, h.mappings)
		if err != nil {
			t.Fatal(err)
		}
		var others workload.Report
		for _, d := range r {
			if !runsTables[d.Table] {
				others = append(others, d)
			} else if d.Table == "scheduler.runs" && d.Missing <= 1 {
				// Only the poison itself missing: the later runs applied.
				t.Fatalf("%s replicated past a poison document although it says on_error: halt:\n%s", h.ns.Runs, r)
			}
		}
		if others.Equal() {
			t.Logf("other collections equal: %s", totalRows(others))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other collections not equal after 30s:\n%s", others)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// The halted collection stays where it stopped, short of its stream's
	// end, with the poison unapplied and no dead letter; the pipeline runs on.
	buf, stream := h.openBuffer()
	first, err := checkpoints.Get(ctx, h.pool, h.ns.Runs)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	second, err := checkpoints.Get(ctx, h.pool, h.ns.Runs)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, buf.Subject(h.ns.Runs))
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq != second.Seq || second.Seq >= last.Sequence {
		t.Errorf("%s checkpoint moved from %d to %d (stream end %d); want it halted short of the end", h.ns.Runs, first.Seq, second.Seq, last.Sequence)
	}
	var n int
	if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM scheduler.runs WHERE id = 'poison-run-cost'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the poison run was applied")
	}
	if n := deadLetters(t, h.pool); n != 0 {
		t.Errorf("%d dead letters; on_error: halt writes none", n)
	}
	if err := h.failed(); err != nil {
		t.Fatalf("pipeline stopped: %v", err)
	}
	// The others still reach their subjects' ends (heartbeats keep coming).
	for _, other := range []string{h.ns.Advisories, h.ns.Statements} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, err := stream.GetLastMsgForSubject(ctx, buf.Subject(other))
			if err != nil {
				t.Fatal(err)
			}
			cp, err := checkpoints.Get(ctx, h.pool, other)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Seq >= m.Sequence && cp.Seq > second.Seq {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s checkpoint %d, stream end %d: not flowing", other, cp.Seq, m.Sequence)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("%s halted at checkpoint %d of %d", h.ns.Runs, second.Seq, last.Sequence)
}
