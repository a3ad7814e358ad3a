package main

import (
	"log/slog"

	"github.com/mongopg/replicator/internal/mongoemu"
	"github.com/mongopg/replicator/internal/workload"
)

// The demo may run for a day or more, so everything it keeps in memory
// is bounded:
//
//   - The emulator's oplog keeps at most oplogBytes (default
//     mongoemu.StandaloneOplogMaxBytes, 64 MiB). At the default rate the
//     workload writes about 150 KB of oplog a second, so 64 MiB is some
//     seven minutes of history; capture reads each event within a second
//     of its write, and the rest of the window covers a capture that
//     pauses or restarts. Older entries are discarded, oldest first.
//   - The workload keeps at most maxDocs documents per collection (default
//     workload.DefaultMaxDocs) and then deletes as much as it inserts.
//
// Together they make the emulator's and the workload's heap level off at
// about 110 MB (64 MiB of oplog, some 100,000 entries, and 15,000
// documents), reached after about eight minutes and flat from then on.

// emulatorOptions are the demo emulator's options: an oplog bounded to
// oplogBytes (0: unbounded).
func emulatorOptions(log *slog.Logger, oplogBytes int64) mongoemu.Options {
	return mongoemu.Options{OplogMaxBytes: oplogBytes, Logger: log}
}

// workloadOptions are the demo workload's options: at most maxDocs
// documents per collection (0: the workload's default).
func workloadOptions(seed uint64, maxDocs int) workload.Options {
	return workload.Options{Seed: seed, MaxDocs: maxDocs}
}

// demoBufferExtra keeps the demo's buffer on disk bounded too: at the
// workload's default rate the buffer grows by roughly 12 MB a minute, so
// the default replay horizon (168h) would fill a laptop's disk in a
// day-long run, and 15 minutes keeps it near 200 MB.
var demoBufferExtra = []string{"max_age: 15m"}
