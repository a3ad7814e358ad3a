package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/verify"
)

// TestVerifyWhileSyncRuns: verify runs while the workload writes to every
// collection and one document is updated without pause, and reports no
// difference that is only a change in flight, while a tampered row that no
// event will repair is found and named. The hot document is either equal
// or listed as in flight, never as a difference.
func TestVerifyWhileSyncRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL, NATS and MongoDB")
	}
	h := newHarness(t, harnessOptions{})
	h.start()
	time.Sleep(time.Second) // capture starts at "now": write after it has
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	advisories := h.mongo.Client.Database(strings.Split(h.ns.Advisories, ".")[0]).Collection(strings.Split(h.ns.Advisories, ".")[1])
	fixed := bson.D{{Key: "_id", Value: "VERIFY-FIXED"}, {Key: "tenantId", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}},
		{Key: "severity", Value: "low"}, {Key: "revision", Value: int64(1)}}
	hot := bson.D{{Key: "_id", Value: "VERIFY-HOT"}, {Key: "tenantId", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}},
		{Key: "severity", Value: "low"}, {Key: "revision", Value: int64(0)}}
	if _, err := advisories.InsertMany(ctx, []any{fixed, hot}); err != nil {
		t.Fatal(err)
	}
	if err := h.generator(7, workload.Options{}).Run(ctx, 0, 1500); err != nil {
		t.Fatal(err)
	}
	h.waitEqual(90 * time.Second)

	// The tampering: a column no event of VERIFY-FIXED will write again.
	root := h.mappings[0].Tables()[0]
	if _, err := h.pool.Exec(ctx, fmt.Sprintf("UPDATE %s SET severity = 'tampered' WHERE id = 'VERIFY-FIXED'", root.Name)); err != nil {
		t.Fatal(err)
	}

	// The load while verify runs: the mixed workload, and the hot
	// document updated as fast as the source takes it.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := h.generator(8, workload.Options{}).Run(ctx, 400, 0); err != nil && !errors.Is(err, context.Canceled) {
			errs <- fmt.Errorf("workload: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		for i := int64(1); ctx.Err() == nil; i++ {
			_, err := advisories.UpdateByID(ctx, "VERIFY-HOT", bson.D{{Key: "$set", Value: bson.D{{Key: "revision", Value: i}}}})
			if err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("hot updates: %w", err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	buf, _ := h.openBuffer()
	if err := buf.BindPositions(ctx); err != nil {
		t.Fatal(err)
	}
	deps := verify.Deps{Source: h.mongo.Client, Target: h.pool, Applied: replicator.AppliedWaiter(buf, h.pool, h.cfg.ForCapture().Source, config.UnitLookup(h.mappings))}
	for pass := range 2 {
		for _, m := range h.mappings {
			rep, err := verify.Collection(ctx, deps, m, verify.Config{ChunkSize: 100, CatchUpTimeout: time.Minute})
			if err != nil {
				t.Fatalf("pass %d: verify %s: %v", pass, m.Namespace(), err)
			}
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			if rep.Note != "" {
				t.Errorf("pass %d: %s: %s", pass, m.Namespace(), rep.Note)
			}
			var got []string
			for _, tr := range rep.Tables {
				for _, d := range tr.Differences.Rows {
					got = append(got, fmt.Sprintf("%s %s %s", tr.Table, d.Kind, keyText(d.Key)))
				}
			}
			want := []string{}
			if m == h.mappings[0] {
				want = []string{root.Name + " different id=VERIFY-FIXED"}
			}
			if strings.Join(got, "; ") != strings.Join(want, "; ") || rep.Equal != (len(want) == 0) {
				b, _ := json.MarshalIndent(rep, "", "  ")
				t.Errorf("pass %d: %s: differences %q, want %q:\n%s", pass, m.Namespace(), got, want, b)
			}
			for _, k := range rep.InFlight.Keys {
				if m != h.mappings[0] || keyText(k.Key) != "id=VERIFY-HOT" {
					// The workload's documents settle within the rounds;
					// only the hot one may not.
					t.Logf("pass %d: %s: in flight after %d re-checks: %s", pass, m.Namespace(), rep.Rechecks, keyText(k.Key))
				}
			}
			t.Logf("pass %d: %s: %d documents, %d re-checks, %d in flight", pass, m.Namespace(), rep.Documents, rep.Rechecks, rep.InFlight.Count)
		}
	}
}

func keyText(kv []verify.KeyValue) string {
	parts := make([]string, len(kv))
	for i, k := range kv {
		v := "NULL"
		if k.Value != nil {
			v = *k.Value
		}
		parts[i] = k.Column + "=" + v
	}
	return strings.Join(parts, ",")
}
