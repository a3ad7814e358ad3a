package capture

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mongopg/replicator/replicator/buffer"
)

// TestLostSeries: recoveries from lost history that follow each other back
// off (doubling) and end in an error after HistoryLostRetries; a quiet
// period of streaming starts a new series.
func TestLostSeries(t *testing.T) {
	c := &Capture{cfg: Config{URI: "x", HistoryLostRetries: 3, HistoryLostBackoff: 20 * time.Millisecond,
		HistoryLostQuiet: 300 * time.Millisecond}.WithDefaults(), log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	var s lostSeries
	var waits []time.Duration
	for i := range 3 {
		start := time.Now()
		if err := s.next(ctx, c, buffer.Position{}); err != nil {
			t.Fatalf("recovery %d refused: %v", i+1, err)
		}
		waits = append(waits, time.Since(start))
	}
	if waits[0] > 15*time.Millisecond {
		t.Errorf("the first recovery waited %v; it must start at once", waits[0])
	}
	if waits[1] < 20*time.Millisecond || waits[2] < 40*time.Millisecond {
		t.Errorf("waits %v: want at least 20ms then 40ms", waits)
	}
	err := s.next(ctx, c, buffer.Position{})
	if err == nil || !strings.Contains(err.Error(), "3 times in a row") {
		t.Fatalf("fourth loss in a row: %v, want the series to stop", err)
	}
	s.last = time.Now().Add(-time.Second) // the stream ran quietly since
	if err := s.next(ctx, c, buffer.Position{}); err != nil {
		t.Fatalf("after a quiet period: %v, want a new series", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.next(cctx, c, buffer.Position{}); err == nil {
		t.Fatal("a cancelled wait did not return")
	}
}
