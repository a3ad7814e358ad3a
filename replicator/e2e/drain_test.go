package e2e

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/mongopg/replicator/replicator/workload"
)

// BenchmarkDrain: a backlog of DRAIN_EVENTS (default 50,000) inserts waits
// in MongoDB; the pipeline (in process) starts and drains it. Reported:
// capture's read-and-publish rate and the end-to-end rate, so the slower
// stage shows, and a raw text COPY of the same rows into copies of the
// same tables on the same PostgreSQL, with the ratio.
func BenchmarkDrain(b *testing.B) {
	events := int64(50_000)
	if n := os.Getenv("DRAIN_EVENTS"); n != "" {
		events, _ = strconv.ParseInt(n, 10, 64)
	}
	h := newHarness(b, harnessOptions{})
	h.start()
	time.Sleep(time.Second)
	if err := h.stop(); err != nil { // the position is saved at T0
		b.Fatal(err)
	}
	ctx := context.Background()
	g := workload.New(h.mongo.Client, h.ns, workload.Options{Seed: 9, InsertOnly: true, InsertBatch: 1000})
	if err := g.Run(ctx, 0, events); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	h.start()
	var captured time.Duration
	for {
		if captured == 0 {
			var n float64
			mfs, _ := h.reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == "replicator_capture_events_total" {
					for _, m := range mf.GetMetric() {
						n += m.GetCounter().GetValue()
					}
				}
			}
			if int64(n) >= events {
				captured = time.Since(start)
			}
		}
		var rows int64
		_ = h.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM vuln.advisories) + (SELECT count(*) FROM vex.statements) + (SELECT count(*) FROM scheduler.runs)").Scan(&rows)
		if rows >= events {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("not drained: %d rows", rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	if captured == 0 {
		captured = took
	}
	rows, err := snapshotRows(ctx, h, h.mappings)
	if err != nil {
		b.Fatal(err)
	}
	copyDur, copied, err := rawCopy(ctx, h.pool, h.mappings, rows)
	if err != nil {
		b.Fatal(err)
	}
	copyRate := float64(events) / copyDur.Seconds()
	b.ReportMetric(copyRate, "copy-docs/s")
	b.ReportMetric(float64(events)/took.Seconds()/copyRate, "e2e/copy")
	b.Logf("raw COPY of the same %d rows (documents and children): %s, %.0f docs/s; drain/COPY ratio %.2f",
		copied, copyDur.Truncate(time.Millisecond), copyRate, float64(events)/took.Seconds()/copyRate)
	b.ReportMetric(float64(events)/captured.Seconds(), "capture-events/s")
	b.ReportMetric(float64(events)/took.Seconds(), "e2e-events/s")
	b.Logf("drain of %d inserts: capture read+published them in %s (%.0f/s), applied in %s (%.0f/s)",
		events, captured.Truncate(time.Millisecond), float64(events)/captured.Seconds(), took.Truncate(time.Millisecond), float64(events)/took.Seconds())
}
