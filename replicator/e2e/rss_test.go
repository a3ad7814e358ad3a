package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/internal/workload"
)

// BenchmarkBacklogRSS (e): the real binary (`run`) starts
// with a backlog of BACKLOG_EVENTS (default 200,000) inserts waiting in
// MongoDB and drains it; the metric is the binary's peak RSS (VmHWM) and
// the drain rate.
//
// Progress is read from the binary's own /metrics (applied insert events):
// polling count(*) on tables growing to a million rows would scan them
// every time and take PostgreSQL's CPU from the drain being measured. The
// row count is checked once, after the drain.
//
// RSS_GOMEMLIMIT=LIMIT runs the binary with GOMEMLIMIT=LIMIT (Go's soft
// memory limit), e.g. 384MiB.
//
// RSS_PROFILE_DIR=DIR turns on metrics.pprof and saves a heap profile of
// the binary into DIR every 10 s of the drain (heap-NNN.pb.gz, for
// `go tool pprof`).
func BenchmarkBacklogRSS(b *testing.B) {
	events := int64(200_000)
	if n := os.Getenv("BACKLOG_EVENTS"); n != "" {
		events, _ = strconv.ParseInt(n, 10, 64)
	}
	bin := buildBinary(b)
	env := mongotest.New(b)
	ns := workload.InDatabase(env.Database("rss"))
	// An external nats-server (the test's) by default: the figure is the
	// replicator's own memory. RSS_EMBEDDED_NATS=1 runs the default
	// deployment, JetStream embedded in the replicator, whose file store
	// keeps recently written blocks and the duplicate window's message ids
	// in the same process (README, Performance).
	natsURL := ""
	if os.Getenv("RSS_EMBEDDED_NATS") == "" {
		natsURL = testenv.NATS(b).URL
	}
	pgURL := testenv.PostgresURL(b)
	dir := b.TempDir()
	profDir := os.Getenv("RSS_PROFILE_DIR")
	cfgPath, _ := writeConfig(b, dir, workload.ConfigParams{
		Namespaces: ns, SourceURI: env.URI, TargetURL: pgURL, NatsURL: natsURL,
		DataDir: filepath.Join(dir, "data"), LogLevel: "warn", Pprof: profDir != "",
	})
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
	addr := freeLoopbackAddr(b)
	metricsURL := "http://" + addr + "/metrics"
	start := time.Now()
	var procEnv []string
	if lim := os.Getenv("RSS_GOMEMLIMIT"); lim != "" {
		procEnv = []string{"GOMEMLIMIT=" + lim}
	}
	p = startBinaryEnv(b, bin, logf, procEnv, "run", "--config", cfgPath, "--metrics-listen", addr)
	defer p.kill(b)
	// 15 minutes, or 1 ms per event for backlogs above 900,000.
	deadline := time.Now().Add(max(15*time.Minute, time.Duration(events)*time.Millisecond))
	var peak int64
	nextProfile, profiles := time.Now().Add(10*time.Second), 0
	for {
		if profDir != "" && time.Now().After(nextProfile) {
			saveProfile(b, "http://"+addr+"/debug/pprof/heap", filepath.Join(profDir, fmt.Sprintf("heap-%03d.pb.gz", profiles)))
			nextProfile, profiles = nextProfile.Add(10*time.Second), profiles+1
		}
		if hwm := vmHWM(p.cmd.Process.Pid); hwm > peak {
			peak = hwm
		}
		n := appliedInserts(metricsURL)
		if n >= events {
			break
		}
		select {
		case err := <-p.done:
			p.done <- err // for the deferred kill
			b.Fatalf("replicator exited after %d of %d events: %v", n, events, err)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("backlog not drained: %d of %d events applied after %s", n, events, time.Since(start).Truncate(time.Second))
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(start)
	b.ReportMetric(float64(peak)/1e6, "peak-rss-MB")
	b.ReportMetric(float64(events)/took.Seconds(), "drain-events/s")
	b.Logf("(e) backlog of %d events drained in %s (%.0f events/s); peak RSS of the replicator %.0f MB",
		events, took.Truncate(time.Millisecond), float64(events)/took.Seconds(), float64(peak)/1e6)
	var rows int64
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM vuln.advisories) + (SELECT count(*) FROM vex.statements) + (SELECT count(*) FROM scheduler.runs)").Scan(&rows); err != nil {
		b.Fatal(err)
	}
	if rows != events {
		b.Fatalf("%d insert events applied but %d rows in the target tables", events, rows)
	}
}

// saveProfile writes the body of GET url to path.
func saveProfile(t testing.TB, url, path string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Logf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Fatal(err)
	}
}

// freeLoopbackAddr is a loopback address whose port was free a moment ago.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// appliedInserts sums replicator_apply_events_total{operation="insert"}
// over the collections at url (0 while the endpoint is not up).
func appliedInserts(url string) int64 {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "replicator_apply_events_total{") || !strings.Contains(line, `operation="insert"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			n += v
		}
	}
	return int64(n)
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
