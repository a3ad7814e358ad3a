// Package pipeline wires the replicator's components into one process:
// capture (MongoDB → buffer), apply (buffer → PostgreSQL) or both, with the
// HTTP endpoint for /metrics, /healthz and /readyz, and structured logs.
//
// Invariants:
//
//   - Every component runs under one errgroup (pipeline.go, Run): when one
//     fails the others stop, and Run returns only after all have returned.
//     Capture and apply are independent otherwise: each collection's apply
//     has its own consumer, so one broken collection never stalls another
//     (DESIGN.md invariant 3, enforced in sink).
//   - Graceful shutdown: cancelling Run's context makes capture stop
//     reading, drain its in-flight publishes and save its position
//     (capture.Run), and apply abandon its uncommitted batch without acking
//     it (sink).
//   - The target's metadata schema and tables are created (idempotently)
//     before apply starts, unless Options.NoMigrate is set, in which case
//     `replicator migrate` must have run (prepare.go).
package pipeline
