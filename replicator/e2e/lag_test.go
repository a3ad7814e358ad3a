package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/workload"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestIdleLag: caught up and idle for 10 s, every apply lag gauge and the
// capture lag read under 3 s (ARCHITECTURE.md, guarantee 9).
func TestIdleLag(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.start()
	time.Sleep(500 * time.Millisecond)
	ctx := context.Background()
	if err := h.generator(3, workload.Options{}).Run(ctx, 0, 500); err != nil {
		t.Fatal(err)
	}
	h.waitEqual(60 * time.Second)
	time.Sleep(10 * time.Second)
	apply := gauges(t, h.reg, "replicator_apply_lag_seconds")
	if len(apply) != 3 {
		t.Fatalf("apply lag gauges: %v, want one per collection", apply)
	}
	for labels, v := range apply {
		if v >= 3 {
			t.Errorf("idle apply lag %s = %.2fs, want < 3s", labels, v)
		}
	}
	for labels, v := range gauges(t, h.reg, "replicator_capture_lag_seconds") {
		if v >= 3 {
			t.Errorf("idle capture lag %s = %.2fs, want < 3s", labels, v)
		}
	}
	t.Logf("idle apply lag: %v", apply)
}

// TestLagUnderClockSkew: the source's clock runs a minute ahead of this
// host's. The skew is measured and exported, and when the apply of one
// collection stalls while its events keep coming, its apply lag grows from
// the first second (ARCHITECTURE.md, guarantee 9) instead of reading 0
// until the minute has passed, as it would if the source's wall times
// were compared with this host's clock.
func TestLagUnderClockSkew(t *testing.T) {
	const ahead = time.Minute
	h := newHarness(t, harnessOptions{mongo: mongotest.Options{ClockOffset: ahead}})
	h.mongo.RequireEmulator("a source clock a minute ahead")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h.start()
	buf, _ := h.openBuffer()
	waitStarted(t, ctx, buf)
	if err := h.generator(5, workload.Options{}).Run(ctx, 0, 300); err != nil {
		t.Fatal(err)
	}
	h.waitEqual(time.Minute)
	skew := gauges(t, h.reg, "replicator_capture_source_clock_skew_seconds")[""]
	if skew < ahead.Seconds()-2 || skew > ahead.Seconds()+2 {
		t.Fatalf("measured skew %.2fs, want %v", skew, ahead)
	}

	// Events keep coming to the advisories the whole time; its apply
	// stalls behind a lock.
	db, coll, _ := strings.Cut(h.ns.Advisories, ".")
	c := h.mongo.Client.Database(db).Collection(coll)
	wctx, stopWriting := context.WithCancel(ctx)
	written := make(chan error, 1)
	go func() {
		for i := 0; wctx.Err() == nil; i++ {
			if _, err := c.InsertOne(wctx, bson.D{{Key: "_id", Value: fmt.Sprintf("skew-%d", i)}, {Key: "tenantId", Value: poisonTenant}}); err != nil && wctx.Err() == nil {
				written <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		written <- nil
	}()
	time.Sleep(time.Second) // applied: the checkpoint's source time is recent
	tx, err := h.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, `LOCK TABLE vuln.advisories IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	locked := time.Now()
	time.Sleep(5 * time.Second)
	lag := gauges(t, h.reg, "replicator_apply_lag_seconds")["collection="+h.ns.Advisories]
	stalled := time.Since(locked).Seconds()
	capLag := gauges(t, h.reg, "replicator_capture_lag_seconds")[""]
	_ = tx.Rollback(ctx)
	stopWriting()
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	t.Logf("apply stalled for %.1fs: apply lag %.2fs, capture lag %.2fs, skew %.2fs", stalled, lag, capLag, skew)
	if lag < stalled-2 || lag > stalled+2 {
		t.Fatalf("apply lag %.2fs after a %.1fs stall, want about the stall", lag, stalled)
	}
	if capLag > 2 {
		t.Fatalf("capture lag %.2fs while reading live events", capLag)
	}
	h.waitEqual(time.Minute)
}
