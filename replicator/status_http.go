package replicator

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"
)

// statusReadTimeout bounds the buffer and target reads of one /status
// request.
const statusReadTimeout = 3 * time.Second

// statusHandler serves /status: the Status document of `replicator status
// --format json`, read through the process's own buffer and target
// connections (ReadStatus, bounded by statusReadTimeout), with Process
// filled from h. It answers 200 whatever the health: the probes are
// /healthz and /readyz; "healthy" and "problems" say what is wrong.
func statusHandler(h *health, src *StatusSources) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var st Status
		if src != nil {
			ctx, cancel := context.WithTimeout(r.Context(), statusReadTimeout)
			st = ReadStatus(ctx, *src)
			cancel()
		} else {
			now := time.Now()
			st = Status{Version: Build(), Time: now.UTC(), Holds: []HoldStatus{}, Collections: []CollectionStatus{}}
		}
		st.Process = h.process()
		st.Assess(0)
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	})
}

// process is the process's own status: start, uptime, liveness and the
// readiness checks that fail.
func (h *health) process() *ProcessStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &ProcessStatus{
		StartedAt:     h.started.UTC(),
		UptimeSeconds: seconds(time.Since(h.started)),
		Live:          h.failed == nil,
		NotReady:      []string{},
	}
	if h.failed != nil {
		p.NotReady = append(p.NotReady, h.failed.Error())
	}
	for name, c := range h.checks {
		if err := c(); err != nil {
			p.NotReady = append(p.NotReady, name+": "+err.Error())
		}
	}
	sort.Strings(p.NotReady)
	p.Ready = len(p.NotReady) == 0
	return p
}
