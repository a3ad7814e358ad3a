package capture

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/transform"
)

// TestReopenBacksOff: a source that opens the change stream and fails its
// every read (a getMore error neither permanent nor resumable) is reopened
// after waits that double (100ms, 200ms, 400ms, …), not every 100ms; a
// cancel during a wait stops capture at once.
func TestReopenBacksOff(t *testing.T) {
	f := newFixture(t, "")
	f.env.RequireEmulator("a fail point for the capture's getMore")
	ctx := context.Background()
	fail := bson.D{{Key: "failCommands", Value: bson.A{"getMore"}}, {Key: "errorCode", Value: 2}, {Key: "appName", Value: "replicator-capture"}}
	if err := f.env.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: "alwaysOn"}, {Key: "data", Value: fail}}).Err(); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{URI: f.env.URI, MaxAwait: 50 * time.Millisecond}, f.buf, []*transform.Mapping{f.m}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()

	// Failures at 0 and after 0.1, 0.3, 0.7, 1.5 and 3.1 s of waiting: at
	// most five in 2.5 s (the loop that waited 100ms after each open made
	// some 25).
	time.Sleep(2500 * time.Millisecond)
	n := testutil.ToFloat64(c.met.restarts)
	t.Logf("%v reopens in 2.5s", n)
	if n < 2 || n > 5 {
		t.Fatalf("%v reopens in 2.5s, want 2 to 5", n)
	}
	start := time.Now()
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("capture took %s to stop while waiting to reopen", d)
	}
}
