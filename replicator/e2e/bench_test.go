package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/replicator/workload"
	"github.com/mongopg/replicator/transform"
)

// BenchmarkEndToEnd measures, in one run on the same PostgreSQL:
//
//	(a) end-to-end insert throughput (documents/s from the first insert in
//	    MongoDB until every row is in PostgreSQL) and a raw text COPY of the
//	    same rows into copies of the same tables, and their ratio;
//	(d) apply lag p50/p99 at a steady rate of half the measured maximum.
func BenchmarkEndToEnd(b *testing.B) {
	h := newHarness(b, harnessOptions{})
	ctx := context.Background()
	const docs = 30_000
	h.start()
	time.Sleep(time.Second)
	g := workload.New(h.mongo.Client, h.ns, workload.Options{Seed: 99, InsertOnly: true, InsertBatch: 500})
	start := time.Now()
	if err := g.Run(ctx, 0, docs); err != nil {
		b.Fatal(err)
	}
	inserted := time.Since(start)
	waitRows(b, h.pool, docs, 5*time.Minute)
	e2e := time.Since(start)
	b.StopTimer()
	rows, err := snapshotRows(ctx, h, h.mappings)
	if err != nil {
		b.Fatal(err)
	}
	copyDur, copied, err := rawCopy(ctx, h.pool, h.mappings, rows)
	if err != nil {
		b.Fatal(err)
	}
	e2eRate := float64(docs) / e2e.Seconds()
	copyRate := float64(docs) / copyDur.Seconds()
	b.ReportMetric(float64(docs)/inserted.Seconds(), "mongo-insert-docs/s")
	b.ReportMetric(e2eRate, "e2e-docs/s")
	b.ReportMetric(copyRate, "copy-docs/s")
	b.ReportMetric(e2eRate/copyRate, "e2e/copy")
	b.Logf("(a) %d docs (%d rows with children): MongoDB inserts %.0f docs/s, end to end %.0f docs/s, raw COPY %.0f docs/s (%.0f rows/s), ratio %.2f",
		docs, copied, float64(docs)/inserted.Seconds(), e2eRate, copyRate, float64(copied)/copyDur.Seconds(), e2eRate/copyRate)

	// (d) lag at half the maximum, single-document mixed operations.
	rate := e2eRate / 2
	lg := workload.New(h.mongo.Client, h.ns, workload.Options{Seed: 100, InsertOnly: true, InsertBatch: 10})
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
// their primary keys, and returns the time the COPYs took.
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
			if _, err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING INDEXES)", cp, cp, def.Name)); err != nil {
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

var copyEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)
