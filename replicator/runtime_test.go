package replicator

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/mongopg/replicator/replicator/config"
)

// TestTuneGC: an embedded buffer gets the configured soft memory limit, an
// external one GOGC=200, and the environment's GOMEMLIMIT or GOGC wins.
func TestTuneGC(t *testing.T) {
	prevLimit, prevPercent := debug.SetMemoryLimit(-1), debug.SetGCPercent(-1)
	debug.SetGCPercent(prevPercent)
	t.Cleanup(func() {
		debug.SetMemoryLimit(prevLimit)
		debug.SetGCPercent(prevPercent)
	})
	reset := func() {
		debug.SetMemoryLimit(math.MaxInt64)
		debug.SetGCPercent(100)
	}
	parse := func(src string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(src+"collections: [{source: a.b, table: a.b}]\n"), "gc.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name, src, env string
		want           string
		limit          int64
		percent        int
	}{
		{"embedded: default limit", "", "", "soft memory limit 224MiB (buffer.embedded_memory_limit)", 224 << 20, 100},
		{"embedded: configured limit", "buffer: {embedded_memory_limit: 1GiB}\n", "", "soft memory limit 1GiB (buffer.embedded_memory_limit)", 1 << 30, 100},
		{"embedded: limit off", "buffer: {embedded_memory_limit: 0}\n", "", "", math.MaxInt64, 100},
		{"embedded: GOMEMLIMIT wins", "", "GOMEMLIMIT", "", math.MaxInt64, 100},
		{"external: GOGC=200", "buffer: {nats_url: nats://127.0.0.1:4222}\n", "", "GOGC=200", math.MaxInt64, 200},
		{"external: GOGC wins", "buffer: {nats_url: nats://127.0.0.1:4222}\n", "GOGC", "", math.MaxInt64, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset()
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv("GOGC", "")
			if tt.env != "" {
				t.Setenv(tt.env, "set by the operator")
			}
			got := TuneGC(parse(tt.src))
			limit := debug.SetMemoryLimit(-1)
			percent := debug.SetGCPercent(100)
			if got != tt.want || limit != tt.limit || percent != tt.percent {
				t.Fatalf("TuneGC = %q, limit %d, GOGC %d; want %q, %d, %d", got, limit, percent, tt.want, tt.limit, tt.percent)
			}
		})
	}
}
