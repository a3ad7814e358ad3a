package replicator

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHealthEndpoints(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := newHealth()
	ready := errors.New("change stream not open")
	h.add("capture", func() error { return ready })
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "replicator_test_total", Help: "x"}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, ln, reg, h, false, nil, slog.New(slog.DiscardHandler)) }()
	base := "http://" + ln.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, path string
		setup      func()
		code       int
		body       string
	}{
		{"live while not ready", "/healthz", nil, 200, "ok"},
		{"not ready", "/readyz", nil, 503, "capture: change stream not open"},
		{"ready", "/readyz", func() { ready = nil }, 200, "ready"},
		{"metrics", "/metrics", nil, 200, "replicator_test_total 0"},
		{"no profiles unless asked", "/debug/pprof/", nil, 404, ""},
		{"failed component", "/healthz", func() { h.fail(errors.New("capture stopped")) }, 503, "capture stopped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			code, body := get(tc.path)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Fatalf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.body)
			}
		})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPprofEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveHTTP(ctx, ln, prometheus.NewRegistry(), newHealth(), true, nil, slog.New(slog.DiscardHandler))
	}()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(b) == 0 {
			t.Errorf("GET %s = %d, %d bytes", path, resp.StatusCode, len(b))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		ok            bool
	}{{"info", "text", true}, {"DEBUG", "json", true}, {"loud", "text", false}, {"info", "xml", false}} {
		_, err := NewLogger(io.Discard, tc.level, tc.format)
		if (err == nil) != tc.ok {
			t.Errorf("NewLogger(%q, %q): %v", tc.level, tc.format, err)
		}
	}
}
