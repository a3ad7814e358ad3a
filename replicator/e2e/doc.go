// Package e2e holds the end-to-end tests of the whole pipeline: MongoDB (the
// emulator, or a real server through REPLICATOR_TEST_MONGO_URI) → capture →
// NATS JetStream → apply → a real PostgreSQL. Each test drives the workload
// generator and then checks that PostgreSQL equals what the mapping makes
// of MongoDB's final state (workload.Compare).
//
// What they prove: ARCHITECTURE.md guarantees 1 (no loss, across crashes and
// restarts of every component), 2 (exactly-once effect under redelivery:
// no duplicate child rows), 3 (per-document order), 4 (positions resume
// correctly after SIGKILL) and 9 (idle lag reads ≈ 0).
package e2e
