// Package replicator wires the replicator's components into one process:
// capture (MongoDB → buffer), apply (buffer → PostgreSQL) or both, with the
// HTTP endpoint for /metrics, /healthz and /readyz, and structured logs.
//
// Invariants:
//
//   - Every component runs under one errgroup (run.go, Run): when one
//     fails the others stop, and Run returns only after all have returned.
//     Capture and apply are independent otherwise: each collection's apply
//     has its own consumer, so one broken collection never stalls another
//     (ARCHITECTURE.md, guarantee 3, enforced in sink).
//   - Graceful shutdown: cancelling Run's context makes capture stop
//     reading, drain its in-flight publishes and save its position
//     (capture.Run), and apply abandon its uncommitted batch without acking
//     it (sink).
//   - The target's metadata schema and tables are created (idempotently)
//     before apply or the snapshot starts, unless Options.NoMigrate is set,
//     in which case `replicator migrate` must have run
//     (target.go, openTarget).
//   - Initial snapshot and automatic resync (Options.Snapshot, set by
//     `replicator run` and, with a target, `replicator capture`): the
//     snapshot coordinator's OnFirstStart is capture's first-start hook, so
//     the copy is recorded at capture's T0 before the position is saved;
//     with source.on_history_lost: resync its OnHistoryLost is capture's
//     history-lost hook, and the default (stop) leaves capture stopping with
//     the error naming `replicator resync --all`. The coordinator runs only
//     once capture holds its lease and has settled its start position
//     (capture.Started), copies beside streaming, resumes unfinished runs
//     after a restart, and its failure stops the process like a capture
//     stop (snapshot.go). The target pool has snapshot.parallelism + 1
//     connections on top of target.max_conns for it.
//   - One owner of the oplog headroom: the oplog-window guard
//     (capture/oplogwindow) runs beside capture and alone sets
//     replicator_capture_oplog_headroom_seconds and logs the warning,
//     including when the headroom is shorter than the running snapshot's
//     estimated remaining time. Where the oplog cannot be read (mongos, no
//     privilege) it says so once and measures nothing (snapshot.go).
//   - Continuous verification (the config's verify section) runs only in a
//     process with both capture and apply, once capture.Started: it never
//     stops the process, never delays its stop, reads at most verify.rate
//     documents per second through the sidecars' source client, and has a
//     PostgreSQL pool of its own of VerifyConns connections (verifyloop.go).
package replicator
