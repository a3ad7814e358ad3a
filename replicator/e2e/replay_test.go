package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/transform"
)

// rowVersion is a root row's version: (_cdc_ts, _cdc_inc, _cdc_seq).
type rowVersion struct{ ts, inc, seq int64 }

func (v rowVersion) less(o rowVersion) bool {
	if v.ts != o.ts {
		return v.ts < o.ts
	}
	if v.inc != o.inc {
		return v.inc < o.inc
	}
	return v.seq < o.seq
}

// rootVersions reads every root row's version, by table and key text.
func rootVersions(ctx context.Context, pool *pgxpool.Pool, mappings []*transform.Mapping) (map[string]map[string]rowVersion, error) {
	out := map[string]map[string]rowVersion{}
	for _, m := range mappings {
		root := m.Tables()[0]
		rows, err := pool.Query(ctx, fmt.Sprintf("SELECT %s::text, _cdc_ts, _cdc_inc, _cdc_seq FROM %s", root.Key[0], root.Name))
		if err != nil {
			return nil, err
		}
		vs := map[string]rowVersion{}
		for rows.Next() {
			var k string
			var v rowVersion
			if err := rows.Scan(&k, &v.ts, &v.inc, &v.seq); err != nil {
				rows.Close()
				return nil, err
			}
			vs[k] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out[root.Name] = vs
	}
	return out, nil
}

// tableContents returns every mapped table's rows as PostgreSQL's text
// form of the whole row (version columns included), sorted.
func tableContents(t testing.TB, pool *pgxpool.Pool, mappings []*transform.Mapping) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	for _, m := range mappings {
		for _, def := range m.Tables() {
			rows, err := pool.Query(ctx, fmt.Sprintf("SELECT x::text FROM %s x", def.Name))
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				all = append(all, s)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			slices.Sort(all)
			out[def.Name] = all
		}
	}
	return out
}

// appliedEvents sums replicator_apply_events_total over the operations that
// wrote (or guarded) rows: everything but heartbeats and duplicates.
func appliedEvents(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "replicator_apply_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var col, op string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "collection":
					col = l.GetValue()
				case "operation":
					op = l.GetValue()
				}
			}
			if op == "heartbeat" || op == "duplicate" {
				continue
			}
			out[col] += m.GetCounter().GetValue()
		}
	}
	return out
}

// TestReplayEndToEnd: after a mixed workload has replicated, every
// collection's apply checkpoint is rewound to 0 with the real
// `replicator checkpoints set` while the pipeline runs. Everything is
// applied again: the tables end byte-identical, no row's version ever
// decreases (nor does a row vanish or a deleted one come back) while the
// replay runs, and the checkpoints end at the stream's end again
// (ARCHITECTURE.md, guarantee 2, replay).
func TestReplayEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	h := newHarness(t, harnessOptions{})
	// Small batches: the replay crosses many transactions, most holding only
	// part of a document's history, so a write that skipped the version
	// guard would move rows back (one batch of the whole history would end
	// on each document's newest version anyway).
	h.cfg.Apply.BatchSize = 40
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	h.start()
	time.Sleep(time.Second)
	g := h.generator(41, workload.Options{})
	if err := g.Run(ctx, 0, 3000); err != nil {
		t.Fatal(err)
	}
	st := g.Stats()
	for _, op := range []string{"insert", "update_set", "replace", "delete", "reinsert", "transaction"} {
		if st.Ops[op] == 0 {
			t.Fatalf("workload issued no %s: %v", op, st.Ops)
		}
	}
	r := h.waitEqual(45 * time.Second)
	t.Logf("equal before replay: %s", totalRows(r))

	buf, stream := h.openBuffer()
	// lastSeq is the stream's last sequence on a collection's subject.
	lastSeq := func(ns string) uint64 {
		m, err := stream.GetLastMsgForSubject(ctx, buf.Subject(ns))
		if err != nil {
			t.Fatalf("last message of %s: %v", ns, err)
		}
		return m.Sequence
	}
	// caughtUp: every checkpoint is at its subject's last message.
	caughtUp := func() (bool, string) {
		var parts []string
		ok := true
		for _, m := range h.mappings {
			last := lastSeq(m.Namespace())
			cp, err := checkpoints.Get(ctx, h.pool, m.Namespace())
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, fmt.Sprintf("%s: checkpoint %d, stream %d", m.Namespace(), cp.Seq, last))
			if cp.Seq < last {
				ok = false
			}
		}
		return ok, strings.Join(parts, "; ")
	}
	deadline := time.Now().Add(15 * time.Second)
	for ok, _ := caughtUp(); !ok; ok, _ = caughtUp() {
		if time.Now().After(deadline) {
			_, s := caughtUp()
			t.Fatalf("checkpoints not at the stream's end before the replay: %s", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := deadLetters(t, h.pool); n != 0 {
		t.Fatalf("%d dead letters before the replay", n)
	}

	before := tableContents(t, h.pool, h.mappings)
	versions, err := rootVersions(ctx, h.pool, h.mappings)
	if err != nil {
		t.Fatal(err)
	}
	appliedBefore := appliedEvents(t, h.reg)
	for _, m := range h.mappings {
		if appliedBefore[m.Namespace()] < 100 {
			t.Fatalf("%s: only %.0f events applied before the replay", m.Namespace(), appliedBefore[m.Namespace()])
		}
	}

	// The sampler polls every root row's version while the replay runs.
	var (
		samples    int
		violations []string
		mu         sync.Mutex
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			cur, err := rootVersions(ctx, h.pool, h.mappings)
			mu.Lock()
			if err != nil {
				violations = append(violations, "sample: "+err.Error())
				mu.Unlock()
				return
			}
			samples++
			for table, vs := range versions {
				for k, v := range vs {
					got, ok := cur[table][k]
					switch {
					case !ok:
						violations = append(violations, fmt.Sprintf("%s %s vanished during the replay (version %v)", table, k, v))
					case got.less(v):
						violations = append(violations, fmt.Sprintf("%s %s moved back from %v to %v", table, k, v, got))
					}
				}
				for k, got := range cur[table] {
					if _, ok := vs[k]; !ok {
						violations = append(violations, fmt.Sprintf("%s %s appeared during the replay (version %v)", table, k, got))
					}
				}
			}
			n := len(violations)
			mu.Unlock()
			if n > 20 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	// Rewind every collection with the real command while the pipeline runs.
	cfgPath, _ := writeConfig(t, t.TempDir(), workload.ConfigParams{
		Namespaces: h.ns, SourceURI: h.mongo.URI, TargetURL: h.pgURL, NatsURL: h.nats.URL,
		DataDir: t.TempDir(), LogLevel: "warn",
	})
	for _, m := range h.mappings {
		out, err := exec.CommandContext(ctx, bin, "checkpoints", "set", "--config", cfgPath,
			"--collection", m.Namespace(), "--seq", "0").CombinedOutput()
		if err != nil {
			t.Fatalf("checkpoints set %s: %v\n%s", m.Namespace(), err, out)
		}
		t.Logf("%s", strings.TrimSpace(string(out)))
	}

	// Wait until every collection has re-applied what it had applied and
	// its checkpoint is back at the stream's end.
	deadline = time.Now().Add(40 * time.Second)
	for {
		if err := h.failed(); err != nil {
			t.Fatalf("pipeline failed: %v", err)
		}
		applied := appliedEvents(t, h.reg)
		replayed := true
		for _, m := range h.mappings {
			ns := m.Namespace()
			if applied[ns]-appliedBefore[ns] < appliedBefore[ns] {
				replayed = false
			}
		}
		ok, s := caughtUp()
		if replayed && ok {
			t.Logf("after the replay: %s", s)
			for _, m := range h.mappings {
				ns := m.Namespace()
				t.Logf("%s: %.0f events applied before, %.0f re-applied", ns, appliedBefore[ns], applied[ns]-appliedBefore[ns])
			}
			break
		}
		if time.Now().After(deadline) {
			var parts []string
			for _, m := range h.mappings {
				ns := m.Namespace()
				parts = append(parts, fmt.Sprintf("%s %.0f of %.0f", ns, applied[ns]-appliedBefore[ns], appliedBefore[ns]))
			}
			t.Fatalf("replay incomplete after 40s: re-applied %s; %s", strings.Join(parts, ", "), s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		if len(violations) > 10 {
			violations = violations[:10]
		}
		t.Fatalf("during the replay (%d samples):\n%s", samples, strings.Join(violations, "\n"))
	}
	if samples < 5 {
		t.Fatalf("only %d samples during the replay", samples)
	}
	t.Logf("%d samples of every root row's version during the replay", samples)

	after := tableContents(t, h.pool, h.mappings)
	for _, m := range h.mappings {
		for _, def := range m.Tables() {
			b, a := before[def.Name], after[def.Name]
			if !slices.Equal(b, a) {
				var diff []string
				for _, s := range b {
					if _, found := slices.BinarySearch(a, s); !found && len(diff) < 3 {
						diff = append(diff, "gone:    "+s)
					}
				}
				for _, s := range a {
					if _, found := slices.BinarySearch(b, s); !found && len(diff) < 6 {
						diff = append(diff, "changed: "+s)
					}
				}
				t.Errorf("%s changed by the replay: %d rows before, %d after\n%s", def.Name, len(b), len(a), strings.Join(diff, "\n"))
			}
		}
	}
	if n := deadLetters(t, h.pool); n != 0 {
		t.Fatalf("%d dead letters after the replay", n)
	}
	h.waitEqual(10 * time.Second)
}
