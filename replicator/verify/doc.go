// Package verify compares one collection in MongoDB with its rows in
// PostgreSQL through the collection's mapping (replicator verify,
// replicator cutover, and the continuous loop inside run).
//
// What it promises:
//
//   - The expected rows are the ones the mapping would write: every
//     document is read in the snapshot's _id ranges (snapshot.Plan) by
//     Config.Workers workers and turned into rows by Mapping.SnapshotRow.
//     A document the filter skips is not expected; one that fails to
//     transform is reported with its error (read.go).
//   - Values compare as PostgreSQL compares them: the expected rows are
//     staged as text with COPY into temporary tables and cast to the
//     mapped column types, so jsonb with another key order, numeric 1.50
//     and 1.5, and one instant in two zones are equal (compare.go). Only
//     mapped columns are compared, never the _cdc_* version columns. Each
//     table's key space is checksummed in buckets (hash_record_extended of
//     each row, PostgreSQL 14 or later), the actual side on a second
//     session sharing the staging session's snapshot; only differing
//     buckets are joined row by row.
//   - Bounded memory: each worker holds at most Config.BatchSize
//     documents' rows before they are copied into PostgreSQL; the
//     comparison runs there.
//   - Documents with unresolved dead letters are reported as dead-lettered,
//     and their rows on either side are left out of the differences
//     (deadletters.go).
//   - Correct while sync runs: differences are compared again after the
//     applier has caught up past the reads, leaving out (and reading
//     again) documents that changed around their read (inflight.go;
//     ARCHITECTURE.md, "Verification").
//
// Config.Repair re-copies what still differs through snapshot.Rewrite
// (repair.go); Config.Sample compares the newest documents of each
// tenant (sample.go).
package verify
