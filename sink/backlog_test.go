package sink

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/internal/testenv"
)

// gaugeValue reads the gauge name with the one label value, or -1.
func gaugeValue(t testing.TB, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// TestBacklogWhilePostgresStalls: with the target table locked, the
// applier stops committing and stops fetching, while messages keep
// arriving; replicator_buffer_pending_messages must count them (delivered
// and undelivered) rather than keep what the last fetch saw.
func TestBacklogWhilePostgresStalls(t *testing.T) {
	ctx := context.Background()
	buf := newBuffer(t)
	pool := testDB(t, testenv.PostgresURL(t))
	reg := prometheus.NewRegistry()
	a, err := New(pool, []Collection{{Namespace: testNS, Tables: testTables()}},
		Config{Stream: testStream, SubjectPrefix: testPrefix, BatchSize: 50, BatchWait: 50 * time.Millisecond}, reg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx, buf.js) }()
	defer func() {
		cancel()
		<-done
	}()
	var last uint64
	for i := range 5 {
		last = buf.publish(t, buf.ts+uint32(i), item{id: fmt.Sprint("warm-", i), qty: 1}.mutation())
	}
	waitFor(t, "the first messages to apply", 20*time.Second, func() bool {
		var seq int64
		_ = pool.QueryRow(ctx, `SELECT stream_seq FROM replicator.apply_checkpoints WHERE collection = $1`, testNS).Scan(&seq)
		return uint64(seq) == last
	})

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `LOCK TABLE app.items IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	const stalled = 400
	for i := range stalled {
		buf.publish(t, buf.ts+100+uint32(i), item{id: fmt.Sprint("stalled-", i), qty: 1}.mutation())
	}
	waitFor(t, "the pending gauge to count the stalled messages", 20*time.Second, func() bool {
		return gaugeValue(t, reg, "replicator_buffer_pending_messages", testNS) == stalled
	})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backlog to drain", 30*time.Second, func() bool {
		return gaugeValue(t, reg, "replicator_buffer_pending_messages", testNS) == 0
	})
}

// TestStallIsLogged: a backlog with no commit for stallAfter is logged
// once (then every stallRepeat), and the end of the stall too.
func TestStallIsLogged(t *testing.T) {
	var out bytes.Buffer
	c := &collection{cfg: Collection{Namespace: testNS}, clock: &clock{},
		log: slog.New(slog.NewTextHandler(&out, nil))}
	c.clock.commit.Store(time.Now().Add(-2 * stallAfter).UnixNano())
	warned := c.checkStall(10, time.Time{})
	if warned.IsZero() || !strings.Contains(out.String(), "apply stalled") {
		t.Fatalf("no stall logged: %q", out.String())
	}
	out.Reset()
	if again := c.checkStall(10, warned); !again.Equal(warned) || out.Len() != 0 {
		t.Fatalf("stall logged again at once: %q", out.String())
	}
	if quiet := c.checkStall(0, warned); !quiet.IsZero() || !strings.Contains(out.String(), "apply resumed") {
		t.Fatalf("end of the stall not logged: %q", out.String())
	}
	c.clock.commit.Store(time.Now().UnixNano())
	out.Reset()
	if w := c.checkStall(10, time.Time{}); !w.IsZero() || out.Len() != 0 {
		t.Fatalf("a backlog with a recent commit logged as a stall: %q", out.String())
	}
}

// TestCountersStartAtZero: every collection's dead-letter and retry
// counters exist from the start, one series per reason, so an alert on
// increase() fires on the first dead letter or retry after a start.
func TestCountersStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(nil, []Collection{{Namespace: testNS, Tables: testTables()}},
		Config{Stream: "S", SubjectPrefix: "p"}, reg, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.GetMetric())
	}
	if n := series["replicator_dead_letters_total"]; n != len(deadLetterReasons) {
		t.Errorf("replicator_dead_letters_total has %d series at start, want %d", n, len(deadLetterReasons))
	}
	if n := series["replicator_apply_retries_total"]; n != len(retryReasons) {
		t.Errorf("replicator_apply_retries_total has %d series at start, want %d", n, len(retryReasons))
	}
}
