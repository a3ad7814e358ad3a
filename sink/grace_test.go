package sink

import (
	"context"
	"testing"
	"time"
)

// TestWithGrace: the context a batch applies under outlives its session's
// by the grace, no longer, and ends at once when the batch is done.
func TestWithGrace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g, stop := withGrace(ctx, time.Second)
	defer stop()
	cancel()
	select {
	case <-g.Done():
		t.Fatal("ended with its parent, before the grace")
	case <-time.After(50 * time.Millisecond):
	}
	select {
	case <-g.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("did not end after the grace")
	}

	g, stop = withGrace(context.Background(), time.Hour)
	stop()
	select {
	case <-g.Done():
	default:
		t.Fatal("stop did not end it")
	}
}
