package replicator

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/mongopg/replicator/replicator/config"
)

// DefaultGCPercent is the garbage collector's target heap growth for a
// replicator process whose buffer is an external NATS server. The
// replicator allocates at a high rate per event while its own live heap
// stays small and bounded (every queue and window has a bound, ARCHITECTURE.md
// guarantee 8), so collecting at 200% growth instead of Go's default 100%
// cuts the collector's work: end-to-end throughput rose 10-20% on a
// two-core machine, and the peak RSS draining a million events stayed
// near 115 MB (README, Performance).
//
// With the embedded JetStream server (buffer.nats_url empty) the server's
// file-store caches (about ten seconds of written messages) and the
// message ids of the duplicate window live in the same heap, and are
// large during a fast backlog drain: a 200% target would triple them, so
// the collector keeps Go's default there, under a soft memory limit
// (config.DefaultEmbeddedMemoryLimit).
const DefaultGCPercent = 200

// TuneGC sets the garbage collector for a process that runs cfg, unless
// the environment (GOGC, GOMEMLIMIT) sets it: DefaultGCPercent with an
// external buffer; with the embedded JetStream server, the soft memory
// limit buffer.embedded_memory_limit (0: none). It returns what it set,
// for the start-up log ("" when nothing). Binaries call it once the
// configuration is loaded; it changes process-wide settings, so library
// code never does.
func TuneGC(cfg *config.Config) string {
	if cfg.Buffer.NATSURL != "" {
		if os.Getenv("GOGC") != "" {
			return ""
		}
		debug.SetGCPercent(DefaultGCPercent)
		return fmt.Sprintf("GOGC=%d", DefaultGCPercent)
	}
	lim := cfg.Buffer.EmbeddedMemoryLimit
	if os.Getenv("GOMEMLIMIT") != "" || lim == nil || *lim <= 0 {
		return ""
	}
	debug.SetMemoryLimit(int64(*lim))
	return fmt.Sprintf("soft memory limit %s (buffer.embedded_memory_limit)", *lim)
}
