package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/workload"
)

// TestContinuousVerify: run with verify enabled verifies the chosen
// collections pass after pass and exports each result. Caught up, both are
// equal with rows checked; a row changed in PostgreSQL behind the
// applier's back (no event will overwrite it) is one different row on a
// following pass; a pass that cannot compare is counted as an error, the
// pipeline runs on and the next pass compares again; a collection whose
// snapshot run has not finished is not verified; the stop is not delayed.
func TestContinuousVerify(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.cfg.Verify.Enabled = true
	h.cfg.Verify.Interval = 200 * time.Millisecond
	h.cfg.Verify.Collections = []string{h.ns.Advisories, h.ns.Runs}
	if err := h.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	adv, runs := h.ns.Advisories, h.ns.Runs
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h.start()
	buf, _ := h.openBuffer()
	waitStarted(t, ctx, buf)
	if err := h.generator(61, workload.Options{}).Run(ctx, 0, 300); err != nil {
		t.Fatal(err)
	}
	h.waitEqual(time.Minute)
	running := func() {
		if err := h.failed(); err != nil {
			t.Fatalf("pipeline stopped: %v", err)
		}
	}
	metric := func(name string) map[string]float64 { return gauges(t, h.reg, name) }

	// Caught up: both collections equal, with rows checked in every table,
	// in passes that started after the workload ended (a pass that ran
	// during it may have found its documents in flight, or the
	// collections still empty).
	passCount := func(ns string) float64 {
		var n float64
		for k, v := range metric("replicator_verify_passes_total") {
			if strings.HasPrefix(k, "collection="+ns+",") {
				n += v
			}
		}
		return n
	}
	baseAdv, baseRuns := passCount(adv), passCount(runs)
	waitFor(t, time.Minute, "both collections verified equal", running, func() (bool, string) {
		eq := metric("replicator_verify_equal")
		return eq["collection="+adv] == 1 && eq["collection="+runs] == 1 && passCount(adv) >= baseAdv+2 && passCount(runs) >= baseRuns+2,
			fmt.Sprintf("equal %v, passes %v/%v after %v/%v", eq, passCount(adv), passCount(runs), baseAdv, baseRuns)
	})
	rows := metric("replicator_verify_rows_checked_total")
	for _, table := range []string{"vuln.advisories", "vuln.advisory_affected"} {
		if rows["collection="+adv+",table="+table] <= 0 {
			t.Errorf("rows checked of %s: %v, want > 0", table, rows)
		}
	}
	if rows["collection="+runs+",table=scheduler.runs"] <= 0 {
		t.Errorf("rows checked of scheduler.runs: %v, want > 0", rows)
	}
	if docs := metric("replicator_verify_documents_checked_total"); docs["collection="+adv] <= 0 || docs["collection="+runs] <= 0 {
		t.Errorf("documents checked %v, want > 0 for both collections", docs)
	}
	for name, values := range map[string]map[string]float64{
		"replicator_verify_differences":           metric("replicator_verify_differences"),
		"replicator_verify_documents_unverified":  metric("replicator_verify_documents_unverified"),
		"replicator_verify_passes_total (errors)": filter(metric("replicator_verify_passes_total"), "result=error"),
	} {
		if len(values) == 0 {
			t.Errorf("%s: no samples", name)
		}
		for labels, v := range values {
			if v != 0 {
				t.Errorf("%s{%s} = %v after equal passes, want 0", name, labels, v)
			}
		}
	}
	for labels, ts := range metric("replicator_verify_last_pass_timestamp_seconds") {
		if age := time.Since(time.Unix(int64(ts), 0)); age < -time.Second || age > time.Minute {
			t.Errorf("last pass of %s ended %s ago", labels, age)
		}
	}
	for labels, d := range metric("replicator_verify_last_pass_duration_seconds") {
		if d <= 0 {
			t.Errorf("last pass duration of %s: %v", labels, d)
		}
	}
	if _, ok := metric("replicator_verify_equal")["collection="+h.ns.Statements]; ok {
		t.Errorf("%s is not in verify.collections but was verified", h.ns.Statements)
	}
	if t.Failed() {
		t.FailNow()
	}

	// A row changed in PostgreSQL directly: no event will overwrite it.
	tag, err := h.pool.Exec(ctx, `UPDATE vuln.advisories SET severity = 'tampered' WHERE id = (SELECT min(id) FROM vuln.advisories)`)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("tamper: %v %v", tag, err)
	}
	different := "collection=" + adv + ",kind=different,table=vuln.advisories"
	waitFor(t, time.Minute, "the changed row found", running, func() (bool, string) {
		d, eq := metric("replicator_verify_differences"), metric("replicator_verify_equal")
		return d[different] == 1 && eq["collection="+adv] == 0, fmt.Sprintf("differences %v, equal %v", d, eq)
	})
	for labels, v := range metric("replicator_verify_differences") {
		if labels != different && v != 0 {
			t.Errorf("differences{%s} = %v, want 0: only one row was changed", labels, v)
		}
	}
	if eq := metric("replicator_verify_equal"); eq["collection="+runs] != 1 {
		t.Errorf("equal %v: %s was not changed", eq, runs)
	}
	if p := metric("replicator_verify_passes_total"); p["collection="+adv+",result=different"] < 1 {
		t.Errorf("passes %v, want a different pass of %s", p, adv)
	}

	// A pass that cannot compare (a mapped table is gone) is an error; the
	// pipeline runs on, and once the table is back a pass compares again.
	passes := func(ns, result string) float64 {
		return metric("replicator_verify_passes_total")["collection="+ns+",result="+result]
	}
	if _, err := h.pool.Exec(ctx, `ALTER TABLE vuln.advisory_affected RENAME TO advisory_affected_away`); err != nil {
		t.Fatal(err)
	}
	errs := passes(adv, "error")
	waitFor(t, time.Minute, "a failed pass counted", running, func() (bool, string) {
		return passes(adv, "error") > errs, fmt.Sprintf("passes %v", metric("replicator_verify_passes_total"))
	})
	if _, err := h.pool.Exec(ctx, `ALTER TABLE vuln.advisory_affected_away RENAME TO advisory_affected`); err != nil {
		t.Fatal(err)
	}
	diffs := passes(adv, "different")
	waitFor(t, time.Minute, "a complete pass after the failed one", running, func() (bool, string) {
		return passes(adv, "different") > diffs, fmt.Sprintf("passes %v", metric("replicator_verify_passes_total"))
	})
	if d := metric("replicator_verify_differences"); d[different] != 1 {
		t.Errorf("differences after the failed pass: %v", d)
	}

	// An unfinished snapshot run of scheduler.runs (its rows would still
	// be copying): no pass of it counts until the run is done, while the
	// advisories go on being verified.
	if _, err := h.pool.Exec(ctx, `INSERT INTO replicator.snapshot_runs (collection, kind, t0_ts, t0_inc, state) VALUES ($1, 'snapshot', 0, 0, 'copying')`, runs); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	total := func(ns string) float64 {
		return passes(ns, "equal") + passes(ns, "different") + passes(ns, "error")
	}
	runsBefore, advBefore := total(runs), total(adv)
	waitFor(t, time.Minute, "two more passes of the advisories", running, func() (bool, string) {
		return total(adv) >= advBefore+2, fmt.Sprintf("passes %v", metric("replicator_verify_passes_total"))
	})
	if n := total(runs); n != runsBefore {
		t.Errorf("%s verified during its snapshot: passes %v → %v", runs, runsBefore, n)
	}
	if _, err := h.pool.Exec(ctx, `UPDATE replicator.snapshot_runs SET state = 'done' WHERE collection = $1 AND state = 'copying'`, runs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "scheduler.runs verified again", running, func() (bool, string) {
		return passes(runs, "equal") > 0 && total(runs) > runsBefore, fmt.Sprintf("passes %v", metric("replicator_verify_passes_total"))
	})

	// The stop does not wait for a pass.
	start := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stop took %s with verification running", took)
	}
	t.Logf("stopped in %s; passes %v", time.Since(start).Round(time.Millisecond), metric("replicator_verify_passes_total"))
}

// filter keeps the samples whose labels contain label ("name=value").
func filter(values map[string]float64, label string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range values {
		if slices.Contains(strings.Split(k, ","), label) {
			out[k] = v
		}
	}
	return out
}
