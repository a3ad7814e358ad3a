package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/transform"
)

// BenchmarkEndToEnd measures, in one run on the same PostgreSQL:
//
//	(a) end-to-end insert throughput: a backlog of DRAIN_EVENTS (default
//	    50,000) inserts is committed in MongoDB while the replicator is
//	    stopped; it then starts and moves them through the change stream,
//	    transform, JetStream and the applier. Reported: documents/s from
//	    its start until every insert is committed in PostgreSQL, capture's
//	    read-and-publish rate, a raw text COPY of the same rows into copies
//	    of the same tables (same keys, indexes and foreign keys; timed
//	    before the drain, on a quiet server), and the ratio. The workload generator does not run meanwhile, so on a small
//	    machine its CPU is not charged to the replicator;
//	(a') the same with live inserts (the generator running concurrently):
//	    end to end then follows the rate MongoDB accepts inserts;
//	(d) apply lag p50/p99 at a steady rate of half the live maximum.
//
// Progress is read from the pipeline's own counters: polling count(*) on
// the growing tables would cost PostgreSQL as much CPU as the COPYs.
//
// E2E_PARTITIONS=N splits each collection into N partitions (each applied
// by its own consumer and transactions, in parallel).
//
// DRAIN_CPUPROFILE=FILE writes a CPU profile of the drain (a) alone (the
// benchmark process: pipeline, NATS server and emulator).
func BenchmarkEndToEnd(b *testing.B) {
	events := int64(50_000)
	if n := os.Getenv("DRAIN_EVENTS"); n != "" {
		events, _ = strconv.ParseInt(n, 10, 64)
	}
	h := newHarness(b, harnessOptions{})
	if n, _ := strconv.Atoi(os.Getenv("E2E_PARTITIONS")); n > 1 {
		for _, ns := range []string{h.ns.Advisories, h.ns.Statements, h.ns.Runs} {
			h.setPartitions(ns, n)
		}
	}
	replicator.TuneGC(h.cfg) // as the replicator binary does
	ctx := context.Background()
	h.start()
	time.Sleep(time.Second)
	if err := h.stop(); err != nil { // the position is saved at T0
		b.Fatal(err)
	}
	g := workload.New(h.mongo.Client, h.ns, workload.Options{Seed: 9, InsertOnly: true, InsertBatch: 1000})
	if err := g.Run(ctx, 0, events); err != nil {
		b.Fatal(err)
	}
	// The raw COPY runs first, on a quiet server: measured after the drain
	// it raced autovacuum and the checkpointer catching up on the drain's
	// writes, and its rate varied by half from run to run.
	rows, err := snapshotRows(ctx, h, h.mappings)
	if err != nil {
		b.Fatal(err)
	}
	settle(b, h)
	pgBefore := postgresCPU()
	copyDur, copied, err := rawCopy(ctx, h.pool, h.mappings, rows)
	if err != nil {
		b.Fatal(err)
	}
	pgCopy := postgresCPU() - pgBefore
	settle(b, h)
	stopProfile := startCPUProfile(b, os.Getenv("DRAIN_CPUPROFILE"))
	b.ResetTimer()
	selfBefore, pgBefore := selfCPU(), postgresCPU()
	start := time.Now()
	h.start()
	captured := waitCounter(b, h, "replicator_capture_events_total", "insert", events, 10*time.Minute)
	applied := waitCounter(b, h, "replicator_apply_events_total", "insert", events, 10*time.Minute)
	b.StopTimer()
	selfDrain, pgDrain := selfCPU()-selfBefore, postgresCPU()-pgBefore
	stopProfile()
	per100k := func(d time.Duration) float64 { return d.Seconds() * 100_000 / float64(events) }
	if pgCopy > 0 {
		// The benchmark process holds the pipeline and the NATS server, and
		// the emulator too unless REPLICATOR_TEST_MONGO_URI names one
		// running apart (README, Performance).
		b.ReportMetric(per100k(selfDrain), "process-cpu-s/100k")
		b.ReportMetric(per100k(pgDrain), "pg-drain-cpu-s/100k")
		b.ReportMetric(per100k(pgCopy), "pg-copy-cpu-s/100k")
		where := "in this process"
		if os.Getenv(mongotest.EnvURI) != "" {
			where = "apart"
		}
		b.Logf("CPU per 100,000 documents: this process %.2f s (pipeline, NATS server; the MongoDB emulator %s), PostgreSQL %.2f s during the drain and %.2f s for the raw COPY",
			per100k(selfDrain), where, per100k(pgDrain), per100k(pgCopy))
	}
	capTook, took := captured.Sub(start), applied.Sub(start)
	waitRows(b, h.pool, events, time.Minute)
	rate, copyRate := float64(events)/took.Seconds(), float64(events)/copyDur.Seconds()
	b.ReportMetric(float64(events)/capTook.Seconds(), "capture-docs/s")
	b.ReportMetric(rate, "e2e-docs/s")
	b.ReportMetric(copyRate, "copy-docs/s")
	b.ReportMetric(rate/copyRate, "e2e/copy")
	b.Logf("(a) backlog of %d inserts (%d rows with children): capture read and published them at %.0f docs/s, end to end %.0f docs/s; raw COPY %.0f docs/s (%.0f rows/s); ratio %.2f",
		events, copied, float64(events)/capTook.Seconds(), rate, copyRate, float64(copied)/copyDur.Seconds(), rate/copyRate)

	// (a') live inserts.
	const live = 30_000
	base := counterSum(b, h, "replicator_apply_events_total", "insert")
	lg := workload.New(h.mongo.Client, h.ns, workload.Options{Seed: 99, InsertOnly: true, InsertBatch: 500})
	start = time.Now()
	if err := lg.Run(ctx, 0, live); err != nil {
		b.Fatal(err)
	}
	inserted := time.Since(start)
	liveRate := float64(live) / waitCounter(b, h, "replicator_apply_events_total", "insert", int64(base)+live, 5*time.Minute).Sub(start).Seconds()
	b.ReportMetric(float64(live)/inserted.Seconds(), "live-mongo-insert-docs/s")
	b.ReportMetric(liveRate, "live-e2e-docs/s")
	b.Logf("(a') %d live inserts: MongoDB accepted them at %.0f docs/s, end to end %.0f docs/s", live, float64(live)/inserted.Seconds(), liveRate)

	// (d) lag at half the live maximum, once PostgreSQL has statistics of
	// the tables the drain filled (settle), as autovacuum gives them within
	// its naptime after a backlog: the plans of the applier's statements
	// depend on them.
	settle(b, h)
	rate = liveRate / 2
	lg = workload.New(h.mongo.Client, h.ns, workload.Options{Seed: 100, InsertOnly: true, InsertBatch: 10})
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- lg.Run(lctx, rate/10, 0) }()
	var samples []float64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	time.Sleep(2 * time.Second)
loop:
	for {
		select {
		case <-lctx.Done():
			break loop
		case <-tick.C:
			for _, v := range gauges(b, h.reg, "replicator_apply_lag_seconds") {
				samples = append(samples, v)
			}
		}
	}
	// The workload stops when lctx ends; only an earlier error is a failure.
	if err := <-done; err != nil && lctx.Err() == nil {
		b.Fatal(err)
	}
	sort.Float64s(samples)
	if len(samples) > 0 {
		p50, p99 := samples[len(samples)/2], samples[len(samples)*99/100]
		b.ReportMetric(p50, "lag-p50-s")
		b.ReportMetric(p99, "lag-p99-s")
		b.Logf("(d) at %.0f docs/s: apply lag p50 %.3fs p99 %.3fs (%d samples)", rate, p50, p99, len(samples))
	}
}

// startCPUProfile starts a CPU profile into path ("": none) and returns
// its stop.
func startCPUProfile(b *testing.B, path string) (stop func()) {
	b.Helper()
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// settle lets PostgreSQL finish background work (statistics of freshly
// loaded tables, dirty buffers) before a timed phase.
func settle(b *testing.B, h *harness) {
	b.Helper()
	for _, q := range []string{"VACUUM ANALYZE", "CHECKPOINT"} {
		if _, err := h.pool.Exec(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}

// counterSum sums counter name's series whose operation label is op.
func counterSum(t testing.TB, h *harness, name, op string) float64 {
	t.Helper()
	return counterByLabel(t, h.reg, name, "operation")[op]
}

// waitCounter waits until counterSum reaches want and returns when.
func waitCounter(t testing.TB, h *harness, name, op string, want int64, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if int64(counterSum(t, h, name, op)) >= want {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{operation=%q} at %.0f of %d after %s", name, op, counterSum(t, h, name, op), want, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitRows(b *testing.B, pool *pgxpool.Pool, want int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		var n int64
		err := pool.QueryRow(context.Background(),
			"SELECT (SELECT count(*) FROM vuln.advisories) + (SELECT count(*) FROM vex.statements) + (SELECT count(*) FROM scheduler.runs)").Scan(&n)
		if err == nil && n >= want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d rows after %s (%v)", n, want, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// snapshotRows transforms every document as the e2e comparison does.
func snapshotRows(ctx context.Context, h *harness, mappings []*transform.Mapping) (map[string][][]transform.Value, error) {
	out := map[string][][]transform.Value{}
	for _, m := range mappings {
		db, coll, _ := strings.Cut(m.Namespace(), ".")
		cur, err := h.mongo.Client.Database(db).Collection(coll).Find(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		for cur.Next(ctx) {
			mut, err := m.SnapshotRow(cur.Current, transform.ClusterTime{})
			if errors.Is(err, transform.ErrSkipped) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[mut.Table] = append(out[mut.Table], mut.Values)
			for _, ch := range mut.Children {
				out[ch.Table] = append(out[ch.Table], ch.Rows...)
			}
		}
		cur.Close(ctx)
	}
	return out, nil
}

// rawCopy COPYs rows (text format) into empty copies of the tables, with
// their primary keys, indexes and foreign keys, and returns the time the
// COPYs took.
func rawCopy(ctx context.Context, pool *pgxpool.Pool, mappings []*transform.Mapping, rows map[string][][]transform.Value) (time.Duration, int, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Release()
	var total time.Duration
	n := 0
	for _, m := range mappings {
		for _, def := range m.Tables() {
			cp := strings.ReplaceAll(def.Name, ".", ".copy_")
			if _, err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s CASCADE; CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING INDEXES)", cp, cp, def.Name)); err != nil {
				return 0, 0, err
			}
			if err := copyForeignKeys(ctx, conn.Conn(), def.Name, cp); err != nil {
				return 0, 0, err
			}
			var cols []string
			for _, c := range def.Columns {
				cols = append(cols, `"`+c.Name+`"`)
			}
			var buf bytes.Buffer
			for _, r := range rows[def.Name] {
				for i, v := range r {
					if i > 0 {
						buf.WriteByte('\t')
					}
					if !v.Valid {
						buf.WriteString(`\N`)
						continue
					}
					buf.WriteString(copyEscaper.Replace(v.Text))
				}
				buf.WriteByte('\n')
				n++
			}
			// Root tables also carry the version columns: give them values.
			sql := fmt.Sprintf("COPY %s (%s) FROM STDIN", cp, strings.Join(cols, ", "))
			if def.Root == "" {
				if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER _cdc_ts SET DEFAULT 0, ALTER _cdc_inc SET DEFAULT 0, ALTER _cdc_seq SET DEFAULT 0", cp)); err != nil {
					return 0, 0, err
				}
			}
			start := time.Now()
			if _, err := conn.Conn().PgConn().CopyFrom(ctx, &buf, sql); err != nil {
				return 0, 0, fmt.Errorf("copy %s: %w", cp, err)
			}
			total += time.Since(start)
		}
	}
	return total, n, nil
}

// copyForeignKeys gives the copy cp of table name the foreign keys of name,
// each referencing the copy of its referenced table (parents are copied
// first), so the raw COPY pays the same constraint checks as the applier.
func copyForeignKeys(ctx context.Context, conn *pgx.Conn, name, cp string) error {
	rows, err := conn.Query(ctx, `SELECT pg_get_constraintdef(c.oid), c.confrelid::regclass::text
FROM pg_constraint c WHERE c.conrelid = $1::regclass AND c.contype = 'f' ORDER BY c.conname`, name)
	if err != nil {
		return err
	}
	type fk struct{ def, ref string }
	var fks []fk
	for rows.Next() {
		var f fk
		if err := rows.Scan(&f.def, &f.ref); err != nil {
			return err
		}
		fks = append(fks, f)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, f := range fks {
		refCopy := strings.ReplaceAll(f.ref, ".", ".copy_")
		def := strings.Replace(f.def, "REFERENCES "+f.ref+"(", "REFERENCES "+refCopy+"(", 1)
		if def == f.def {
			return fmt.Errorf("copy foreign key of %s: cannot retarget %q", name, f.def)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD %s", cp, def)); err != nil {
			return fmt.Errorf("copy foreign key of %s: %w", name, err)
		}
	}
	return nil
}

var copyEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)
