package snapshot

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/mongopg/replicator/transform"
)

func TestFmtETA(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{{-1, "?"}, {0, "0:00"}, {9 * time.Second, "0:09"}, {61 * time.Second, "1:01"}, {3*time.Hour + 2*time.Minute + 3*time.Second, "3:02:03"}}
	for _, tc := range tests {
		if got := fmtETA(tc.d); got != tc.want {
			t.Errorf("fmtETA(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	tr := newTracker("db.coll", KindSnapshot, 1000, 0)
	tr.start = time.Now().Add(-10 * time.Second)
	tr.committed.Store(400)
	tr.inflight.Store(100)
	tr.setState(StateCopying)
	line := progressLine(tr, 10)
	for _, want := range []string{"db.coll    [###############...............]", " 50.0%", "500/1000 docs", "ETA 0:10", "copying"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	tr.committed.Store(1200)
	tr.inflight.Store(0)
	tr.setState(StateDone)
	if line := progressLine(tr, 7); !strings.Contains(line, "100.0%") || !strings.Contains(line, "1200/1200") {
		t.Errorf("done line %q", line)
	}
}

func TestProgressOutput(t *testing.T) {
	var term, logs bytes.Buffer
	a, b := newTracker("a.one", KindSnapshot, 10, 0), newTracker("b.two", KindResync, 20, 5)
	p := &progress{out: &term, terminal: true, log: slog.New(slog.NewTextHandler(&logs, nil)), interval: time.Second}
	p.add(a)
	p.add(b)
	p.report()
	p.report()
	if got := strings.Count(term.String(), "\n"); got != 4 {
		t.Fatalf("terminal output has %d lines, want 2 per redraw:\n%s", got, term.String())
	}
	if !strings.Contains(term.String(), "\x1b[2A") {
		t.Fatal("second redraw does not move the cursor back up")
	}
	p.terminal = false
	p.report()
	if got := strings.Count(logs.String(), "snapshot progress"); got != 2 {
		t.Fatalf("%d log lines, want one per collection:\n%s", got, logs.String())
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.setState("db.c", StateCopying)
	m.chunkDone("db.c", 10)
	m.setRemaining("db.c", 5)
	m.addSwept("db.c", 1)
	m.historyLost.Inc()
	m.recoveryFails.Add(0)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	states := 0
	for _, mf := range mfs {
		if mf.GetName() == "replicator_snapshot_state" {
			for _, s := range mf.GetMetric() {
				states += int(s.GetGauge().GetValue())
			}
		}
	}
	if states != 1 {
		t.Fatalf("%d states set to 1, want exactly one", states)
	}
}

func TestCopyText(t *testing.T) {
	var c copyText
	c.field(true, transform.Text("x\ty"))
	c.field(false, transform.Null)
	c.field(false, transform.Text("line\nbreak\r\\"))
	c.endRow()
	want := `x\ty` + "\t" + `\N` + "\t" + `line\nbreak\r\\` + "\n"
	if got := c.buf.String(); got != want {
		t.Fatalf("copy text %q, want %q", got, want)
	}
}
