package verify_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/replicator/verify"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/transform"
)

// EnvBenchDocs overrides the documents BenchmarkVerify loads.
const EnvBenchDocs = "VERIFY_BENCH_DOCS"

const defaultBenchDocs = 200_000

// benchMapping is BenchmarkSnapshotLoad's mapping (uuid, numeric,
// timestamptz, jsonb, a child table), in database DB.
const benchMapping = `
source: DB.advisories
table: bench.advisories
columns:
  id:        { path: _id, type: text }
  tenant_id: { path: tenantId, type: uuid }
  severity:  { path: severity, type: text }
  cvss:      { path: cvss, type: numeric }
  published: { path: published, type: timestamptz }
document: { column: doc, include: rest }
children:
  - path: affected
    table: bench.advisory_affected
    columns:
      purl: { path: purl, type: text }
`

// changed is how many rows the changed sub-benchmark alters in PostgreSQL.
const changed = 100

// BenchmarkVerify verifies a large collection (VERIFY_BENCH_DOCS documents,
// default 200,000, of about 1 KB with two child rows each) that a snapshot
// loaded into PostgreSQL, and compares its rate with the snapshot's on the
// same data in the same run. Loading MongoDB is not timed.
//
//   - snapshot_p1, snapshot_p4: a snapshot (snapshot.Run, 1 and 4
//     cursors; 4 is the default) into the emptied tables. The last one
//     leaves the tables loaded for the verifications.
//   - workers=1, workers=2: verify.Collection of the equal collection;
//     the report must be Equal.
//   - changed=100: the same after an UPDATE of a mapped column in 100 rows
//     (NoRecheck); the report must count exactly those 100 differences.
//
// Each reports docs/s and, for the verifications, verify/snapshot: the rate
// over the median snapshot_p4 rate measured so far in this process (when
// the snapshots are filtered out, the tables are loaded untimed and no
// ratio is reported). read_s and compare_s split a verification at the end
// of reading (Config.Progress): reading, transforming and staging the rows
// with COPY, then the checksums and the row-by-row join of differing
// buckets. Memory: peak_live_heap_MB is the most heap any garbage
// collection during the run found reachable, above the live heap before it
// (which holds the emulator's documents); rss_growth_MB is the peak
// resident size (VmHWM, reset through /proc/self/clear_refs) above the
// resident size before the run. Both include the in-process MongoDB
// emulator serving the reads.
func BenchmarkVerify(b *testing.B) {
	n := defaultBenchDocs
	if s := os.Getenv(EnvBenchDocs); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("%s=%q: want a positive number of documents", EnvBenchDocs, s)
		}
		n = v
	}
	ctx := context.Background()
	env := mongotest.New(b, mongotest.Options{OplogMaxEvents: 1000})
	db := env.Database("verifybench")
	var cc transform.CollectionConfig
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(benchMapping, "DB.", db+".")), &cc); err != nil {
		b.Fatal(err)
	}
	m, err := transform.Compile(cc)
	if err != nil {
		b.Fatal(err)
	}
	pool := testenv.Postgres(b)
	if err := schemas.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, transform.DDL([]*transform.Mapping{m})); err != nil {
		b.Fatal(err)
	}
	seed(b, env.Client.Database(db).Collection("advisories"), n)

	// load empties the tables and runs a snapshot of the collection into
	// them with par cursors, timed from the start of snapshot.Run.
	load := func(b *testing.B, par int) time.Duration {
		exec(b, pool, "TRUNCATE bench.advisories CASCADE; TRUNCATE replicator.snapshot_runs CASCADE; CHECKPOINT")
		start := time.Now()
		deps := snapshot.Deps{Source: env.Client, Target: pool, Mappings: []*transform.Mapping{m}}
		if err := snapshot.Run(ctx, deps, snapshot.Config{Parallelism: par}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var snapRates []float64 // snapshot_p4's, for verify/snapshot
	loaded := false
	for _, par := range []int{1, 4} {
		b.Run(fmt.Sprintf("snapshot_p%d", par), func(b *testing.B) {
			b.StopTimer()
			for range b.N {
				w := watchMemory()
				b.StartTimer()
				elapsed := load(b, par)
				b.StopTimer()
				w.report(b)
				rate := float64(n) / elapsed.Seconds()
				b.ReportMetric(rate, "docs/s")
				if par == 4 {
					snapRates = append(snapRates, rate)
				}
				settle(b, pool)
				loaded = true
			}
		})
	}
	if !loaded {
		load(b, snapshot.DefaultParallelism)
		settle(b, pool)
	}
	run := func(b *testing.B, cfg verify.Config, check func(verify.Report) error) {
		b.StopTimer()
		deps := verify.Deps{Source: env.Client, Target: pool}
		for range b.N {
			var start time.Time
			var read time.Duration
			cfg.Progress = func(_ string, _ int64, done bool) {
				if done {
					read = time.Since(start)
				}
			}
			w := watchMemory()
			b.StartTimer()
			start = time.Now()
			rep, err := verify.Collection(ctx, deps, m, cfg)
			elapsed := time.Since(start)
			b.StopTimer()
			w.report(b)
			if err != nil {
				b.Fatal(err)
			}
			if rep.Documents != int64(n) {
				b.Fatalf("verify read %d documents, want %d", rep.Documents, n)
			}
			if err := check(rep); err != nil {
				b.Fatal(err)
			}
			rate := float64(n) / elapsed.Seconds()
			b.ReportMetric(rate, "docs/s")
			if len(snapRates) > 0 {
				b.ReportMetric(rate/median(snapRates), "verify/snapshot")
			}
			b.ReportMetric(read.Seconds(), "read_s")
			b.ReportMetric((elapsed - read).Seconds(), "compare_s")
		}
	}
	equal := func(rep verify.Report) error {
		if !rep.Equal {
			return fmt.Errorf("verify: not equal: %s", summary(rep))
		}
		return nil
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			run(b, verify.Config{Workers: workers}, equal)
		})
	}
	b.Run(fmt.Sprintf("changed=%d", changed), func(b *testing.B) {
		b.StopTimer()
		exec(b, pool, fmt.Sprintf(`UPDATE bench.advisories SET severity = 'changed'
 WHERE id IN (SELECT id FROM bench.advisories ORDER BY md5(id) LIMIT %d)`, changed))
		run(b, verify.Config{NoRecheck: true}, func(rep verify.Report) error {
			root, child := rep.Tables[0].Differences, rep.Tables[1].Differences
			if rep.Equal || root.Total != changed || root.Different != changed || child.Total != 0 {
				return fmt.Errorf("verify: want exactly %d different root rows: %s", changed, summary(rep))
			}
			return nil
		})
		exec(b, pool, "UPDATE bench.advisories SET severity = 'high' WHERE severity = 'changed'")
	})
}

// seed inserts n documents shaped like BenchmarkSnapshotLoad's: about 1 KB
// each, with two elements in the child array.
func seed(b *testing.B, coll *mongo.Collection, n int) {
	b.Helper()
	const batch = 1000
	docs := make([]any, 0, batch)
	for i := range n {
		docs = append(docs, bson.D{
			{Key: "_id", Value: bson.NewObjectID()},
			{Key: "tenantId", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{byte(i)}, 16)}},
			{Key: "severity", Value: "high"},
			{Key: "cvss", Value: float64(i%100) / 10},
			{Key: "published", Value: time.Unix(int64(i), 0).UTC()},
			{Key: "summary", Value: strings.Repeat("x", 700)},
			{Key: "affected", Value: bson.A{bson.D{{Key: "purl", Value: fmt.Sprintf("pkg:npm/a%d@1", i)}}, bson.D{{Key: "purl", Value: "pkg:npm/b@2"}}}},
		})
		if len(docs) == batch || i == n-1 {
			if _, err := coll.InsertMany(context.Background(), docs); err != nil {
				b.Fatal(err)
			}
			docs = docs[:0]
		}
	}
}

// settle leaves the loaded tables as a while after a snapshot: vacuumed
// and analyzed, so no autovacuum runs into the next measurement.
func settle(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	exec(b, pool, "VACUUM (ANALYZE) bench.advisories, bench.advisory_affected")
	exec(b, pool, "CHECKPOINT")
}

func exec(b *testing.B, pool *pgxpool.Pool, sql string) {
	b.Helper()
	if _, err := pool.Exec(context.Background(), sql); err != nil {
		b.Fatal(err)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func summary(rep verify.Report) string {
	var parts []string
	for _, t := range rep.Tables {
		parts = append(parts, fmt.Sprintf("%s: %d expected, %d actual, %d differences (%d missing, %d extra, %d different)",
			t.Table, t.ExpectedRows, t.ActualRows, t.Differences.Total, t.Differences.Missing, t.Differences.Extra, t.Differences.Different))
	}
	return fmt.Sprintf("%d documents, %d transform errors, %d dead-lettered; %s",
		rep.Documents, rep.TransformErrors.Count, rep.DeadLettered.Count, strings.Join(parts, "; "))
}

// memWatch follows the live heap while a run goes on, and resets the
// peak resident size so the run's own peak can be read after it.
type memWatch struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	base    uint64 // live heap after a collection, before the run
	peak    uint64
	gcs     uint32 // collections before the run
	rssBase int64  // kB; -1 when the peak could not be reset
}

// liveHeap is the heap the last collection found reachable.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func watchMemory() *memWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &memWatch{stop: make(chan struct{}), base: liveHeap(), gcs: ms.NumGC, rssBase: -1}
	w.peak = w.base
	if os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil {
		w.rssBase = procStatus("VmRSS")
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.peak = max(w.peak, liveHeap())
			}
		}
	}()
	return w
}

// report stops the sampling and reports the peaks above the bases:
// peak_live_heap_MB (the most any collection during the run found
// reachable) and rss_growth_MB.
func (w *memWatch) report(b *testing.B) {
	close(w.stop)
	w.wg.Wait()
	peak := max(w.peak, liveHeap())
	b.ReportMetric(float64(peak-w.base)/(1<<20), "peak_live_heap_MB")
	if w.rssBase >= 0 {
		if hwm := procStatus("VmHWM"); hwm >= 0 {
			b.ReportMetric(float64(hwm-w.rssBase)/1024, "rss_growth_MB")
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.Logf("live heap before the run %.0f MB; %d collections during it", float64(w.base)/(1<<20), ms.NumGC-w.gcs)
}

// procStatus returns a kB field of /proc/self/status, -1 when unknown.
func procStatus(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for l := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return v
		}
	}
	return -1
}
