package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/workload"
)

// BenchmarkBacklogRSS (e): the real binary (`run`, external NATS) starts
// with a backlog of BACKLOG_EVENTS (default 200,000) inserts waiting in
// MongoDB and drains it; the metric is the binary's peak RSS (VmHWM) and
// the drain rate.
func BenchmarkBacklogRSS(b *testing.B) {
	events := int64(200_000)
	if n := os.Getenv("BACKLOG_EVENTS"); n != "" {
		events, _ = strconv.ParseInt(n, 10, 64)
	}
	bin := buildBinary(b)
	env := mongotest.New(b)
	ns := workload.InDatabase(env.Database("rss"))
	nats := testenv.NATS(b)
	pgURL := testenv.PostgresURL(b)
	dir := b.TempDir()
	yaml := workload.ConfigYAML(workload.ConfigParams{
		Namespaces: ns, SourceURI: env.URI, TargetURL: pgURL, NatsURL: nats.URL,
		DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
	})
	cfgPath := filepath.Join(dir, "replicator.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "replicator.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	// First start: the capture position is saved at T0, then stop.
	p := startProc(b, bin, cfgPath, logf)
	time.Sleep(3 * time.Second)
	p.kill(b)

	ctx := context.Background()
	g := workload.New(env.Client, ns, workload.Options{Seed: 5, InsertOnly: true, InsertBatch: 1000})
	if err := g.Run(ctx, 0, events); err != nil {
		b.Fatal(err)
	}
	pool := testenv.Pool(b, pgURL)
	start := time.Now()
	p = startProc(b, bin, cfgPath, logf)
	defer p.kill(b)
	deadline := time.Now().Add(15 * time.Minute)
	var peak int64
	for {
		if hwm := vmHWM(p.cmd.Process.Pid); hwm > peak {
			peak = hwm
		}
		var n int64
		_ = pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM vuln.advisories) + (SELECT count(*) FROM vex.statements) + (SELECT count(*) FROM scheduler.runs)").Scan(&n)
		if n >= events {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("backlog not drained: %d of %d rows", n, events)
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(start)
	b.ReportMetric(float64(peak)/1e6, "peak-rss-MB")
	b.ReportMetric(float64(events)/took.Seconds(), "drain-events/s")
	b.Logf("(e) backlog of %d events drained in %s (%.0f events/s); peak RSS of the replicator %.0f MB",
		events, took.Truncate(time.Millisecond), float64(events)/took.Seconds(), float64(peak)/1e6)
}

// vmHWM is a process's peak resident set size in bytes (0 if unknown).
func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
