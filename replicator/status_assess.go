package replicator

import (
	"fmt"
	"strings"
	"time"
)

// Assess sets Healthy and Problems. A replicator is unhealthy when:
//   - the buffer could not be read (NATS unreachable, or no answer in time);
//   - no capture position is saved for the source (capture never ran);
//   - a collection is held and its hold not yet released;
//   - a target is configured and PostgreSQL could not be read;
//   - maxLag > 0 and a collection's apply lag is above it (collections
//     without a known source time are not judged);
//   - for /status, the process is not live or not ready.
//
// The buffer and capture are judged only in a document read from a buffer
// (Capture.Source set).
func (s *Status) Assess(maxLag time.Duration) {
	var ps []string
	switch {
	case s.Capture.Source == "":
		// Not read from a buffer (/status of a one-job command).
	case s.Buffer.Error != "":
		ps = append(ps, "buffer unreachable: "+strings.TrimPrefix(s.Buffer.Error, "buffer: "))
	case s.Capture.Error != "":
		ps = append(ps, fmt.Sprintf("capture position of source %s unreadable: %s", s.Capture.Source, s.Capture.Error))
	case s.Capture.Position == nil:
		ps = append(ps, fmt.Sprintf("no capture position saved for source %s (capture never ran)", s.Capture.Source))
	}
	for _, h := range s.Holds {
		if !h.Released {
			ps = append(ps, fmt.Sprintf("collection %s held since %s: %s; to recover: %s", h.Collection, h.Since.Format(time.RFC3339), h.Reason, h.Recovery))
		}
	}
	if s.Target.Error != "" {
		ps = append(ps, "target: "+strings.TrimPrefix(s.Target.Error, "target: "))
	}
	if maxLag > 0 {
		for _, c := range s.Collections {
			if c.LagSeconds != nil && *c.LagSeconds > maxLag.Seconds() {
				ps = append(ps, fmt.Sprintf("collection %s: apply lag %.0fs above the maximum %s", c.Collection, *c.LagSeconds, maxLag))
			}
		}
	}
	if p := s.Process; p != nil {
		if !p.Live {
			ps = append(ps, "process not live: a component stopped")
		}
		for _, r := range p.NotReady {
			ps = append(ps, "not ready: "+r)
		}
	}
	if ps == nil {
		ps = []string{}
	}
	s.Problems, s.Healthy = ps, len(ps) == 0
}
