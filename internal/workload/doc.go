// Package workload generates a live MongoDB workload shaped like the
// platform's modules — vulnerability advisories with affected-package
// arrays, VEX statements with product arrays, scheduler runs — with tenant
// UUIDs, dates, Decimal128 values and nested documents, and checks that a
// PostgreSQL target equals what the mapping makes of MongoDB's current
// state. The demo, the end-to-end tests and the benchmarks share it.
//
// Invariants:
//
//   - Deterministic: a Generator with the same seed issues the same
//     operations in the same order (generator.go).
//   - Every operation kind the replicator must handle appears in the mix:
//     inserts, $set/$unset/$inc updates, array growth ($push) and
//     shrinkage ($pop, $pull), replaces, deletes, re-inserts of deleted
//     ids, and transactions touching two collections (ops.go).
//   - Bounded: outside InsertOnly, a generator keeps at most MaxDocs
//     documents per collection (inserts turn into deletes at the bound) and
//     remembers at most as many deleted ids; replaces and deletes reset the
//     arrays updates grow. A day-long run reaches a steady state in data
//     set size, document size and the generator's own memory (ops.go,
//     generator.go).
//   - Compare is exact: expected rows are cast to the target's column types
//     inside PostgreSQL and compared with EXCEPT ALL both ways, so a
//     missing, extra, duplicated or different row is reported (compare.go).
package workload
