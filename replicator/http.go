package replicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// health tracks readiness checks by name.
type health struct {
	mu      sync.Mutex
	checks  map[string]func() error
	failed  error     // a component stopped with this error
	started time.Time // when the process built its health
}

func newHealth() *health { return &health{checks: map[string]func() error{}, started: time.Now()} }

func (h *health) add(name string, check func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = check
}

func (h *health) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed == nil {
		h.failed = err
	}
}

// ready returns nil when every check passes.
func (h *health) ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed != nil {
		return h.failed
	}
	var errs []error
	for name, c := range h.checks {
		if err := c(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (h *health) live() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

// NewRegistry returns the metrics registry of a replicator process: the
// Go runtime's and the process's collectors, beside what the components
// register. Every command that serves metrics starts from it.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfoMetric(Build()))
	return r
}

// ServeMetrics serves /metrics from g, and /healthz, /readyz (always
// healthy) and /status (the build and uptime), on ln until ctx ends: the
// endpoint of a command that runs one job, such as `replicator snapshot
// --metrics-listen`.
func ServeMetrics(ctx context.Context, ln net.Listener, g prometheus.Gatherer, log *slog.Logger) error {
	return serveHTTP(ctx, ln, g, newHealth(), false, nil, log)
}

// serveHTTP serves /metrics, /healthz, /readyz and /status on ln until ctx
// ends, and Go's profiles under /debug/pprof/ when withPprof is set. src
// is what /status reads beside the process's own state; nil serves the
// process's state only.
func serveHTTP(ctx context.Context, ln net.Listener, g prometheus.Gatherer, h *health, withPprof bool, src *StatusSources, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/status", statusHandler(h, src))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := h.live(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := h.ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("metrics endpoint listening", "url", "http://"+ln.Addr().String()+"/metrics")
	select {
	case err := <-errc:
		return fmt.Errorf("metrics endpoint: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}
