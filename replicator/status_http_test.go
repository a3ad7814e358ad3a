package replicator

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"testing"
)

// TestStatusEndpoint: /status serves the Status document with the build,
// the uptime and readiness, without a buffer or target to read.
func TestStatusEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := newHealth()
	notReady := errors.New("change stream not open")
	h.add("capture", func() error { return notReady })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, ln, NewRegistry(), h, false, nil, slog.New(slog.DiscardHandler)) }()
	get := func() Status {
		t.Helper()
		resp, err := http.Get("http://" + ln.Addr().String() + "/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /status: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var st Status
		dec := json.NewDecoder(resp.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := get()
	if st.Version != Build() || st.Process == nil || st.Process.UptimeSeconds < 0 || st.Process.StartedAt.IsZero() {
		t.Fatalf("build and process: %+v %+v", st.Version, st.Process)
	}
	if st.Process.Ready || !st.Process.Live || len(st.Process.NotReady) != 1 || st.Process.NotReady[0] != "capture: change stream not open" || st.Healthy {
		t.Fatalf("not ready: %+v healthy=%v problems=%v", st.Process, st.Healthy, st.Problems)
	}
	notReady = nil
	if st := get(); !st.Process.Ready || len(st.Process.NotReady) != 0 {
		t.Fatalf("ready: %+v", st.Process)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
