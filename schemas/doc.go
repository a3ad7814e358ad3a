// Package schemas holds the SQL of the replicator's own metadata schema,
// "replicator", as versioned migrations embedded from migrations/, and
// applies them with Migrate. envelope.md beside it documents the buffer
// message format.
//
// Promises (enforced in migrate.go):
//   - Migrate is idempotent: each migration runs once, recorded in
//     replicator.schema_migrations, and every statement is also written to be
//     safe to repeat.
//   - Migrate is safe to run concurrently (several replicas starting at once):
//     the whole upgrade runs in one transaction holding a transaction-level
//     advisory lock, so one runner applies and the others then see it done.
//   - A database migrated by a newer build (a version this build does not
//     know) is reported as an error, never silently downgraded.
//
// Snapshot-chunk progress and other later metadata arrive as further
// numbered files in migrations/.
package schemas
