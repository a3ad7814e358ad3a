package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/workload"
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
