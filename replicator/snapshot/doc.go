// Package snapshot copies MongoDB collections into PostgreSQL as of a
// cluster time T0 while streaming applies changes concurrently: the initial
// snapshot, per-collection resync, and recovery from a lost resume token
// (ARCHITECTURE.md, "Versions, checkpoints, snapshots, replay").
//
// Entry points: Run (initial snapshot, `replicator snapshot`), Resync
// (`replicator resync`), Coordinator (inside `replicator run`: the initial
// snapshot on capture's first start and the on_history_lost: resync
// policy). T0 comes from capture.ClusterTime; moving a stopped capture to
// T0 for resync --all is capture.ResetCapture.
//
// Promises, and where the code keeps them:
//
//   - Complete plans for any _id types. Range operators only match values of
//     their bound's BSON type bracket, so a plan covers each type bracket on
//     its own with open-ended first and last chunks, and splits large
//     brackets at quantiles of a server-sorted $sample (chunk.go, plan.go).
//     NaN, which no range operator matches, falls in the first chunk of the
//     number bracket (Chunk.Filter).
//   - T0 before reading. T0 is recorded with the plan before any document is
//     read; every write at or before T0 is visible to the snapshot's
//     majority reads and every later write is in the change stream opened at
//     T0 (capture.ClusterTime; Config.OnT0 and Coordinator hand T0 to
//     capture).
//   - Correct whatever the interleaving with streaming. Snapshot rows carry
//     version (T0, seq 0) and are written only where the stored row is not
//     newer and no newer tombstone exists; a written row's child rows are
//     replaced with it. These are not restated here: chunks are written
//     with sink.Guard, which runs the streaming apply's own merge
//     statements (merge.go, load.go). A chunk's merge and a streaming batch
//     of the same collection are serialised by a short SHARE ROW EXCLUSIVE
//     lock on the root table (guardMerge), so neither can miss the other's
//     uncommitted writes; readers are never blocked.
//   - Resumable, never twice. A chunk's rows and its checkpoint row
//     (replicator.snapshot_chunks, state done) commit in one transaction,
//     and the checkpoint only moves from pending (copy.go, markChunkDone), so
//     a killed run resumes with exactly the chunks not done (Start) and a
//     finished chunk is never committed again. A retryable failure
//     (deadlock, connection loss, network error) retries the chunk (copy.go,
//     errors.go). Dead letters commit in the chunk's transaction too, so a
//     retried or resumed chunk writes each once.
//   - Resync never empties a table. It overwrites rows in place at a new T0,
//     then one transaction under the root table lock removes the rows older
//     than T0 that neither the copy nor streaming wrote: their documents are
//     gone. Each is deleted as a delete event at (T0, 0) would delete it,
//     with the streaming apply's statements (sink.Guard.DeleteOlder): it
//     leaves a tombstone at T0 and takes its child rows along (sweep.go).
//   - Bounded. At most Parallelism chunks are copied at once (one source
//     cursor and one target transaction each), and a chunk holds at most
//     BatchSize documents in memory, also while it isolates a document
//     (snapshot.go, copy.go, isolate.go).
//   - Poison isolated (ARCHITECTURE.md, guarantee 6). A document the mapping
//     cannot transform becomes a dead letter in the chunk's transaction
//     (copy.go, load). A chunk PostgreSQL refuses for one document's rows (a
//     CHECK, UNIQUE or foreign-key violation, a value out of range: the
//     SQLSTATE classes sink.EventError names, which the streaming apply
//     isolates too) is split in halves, re-read, down to that document,
//     which becomes a dead letter (stage apply, reason snapshot, with its
//     SQLSTATE) while the rest commits with the chunk (isolate.go). A
//     foreign-key violation first defers its chunk until the other chunks
//     are copied, then retries it for at most Config.ForeignKeyWait, since
//     the referenced rows may only be late (snapshot.go, retryDeferred). An
//     unresolved dead letter is not written twice for the same document and
//     error, so later runs with it present add none (sink,
//     WriteSnapshotDeadLetter).
//   - One collection halts alone. Under on_error: halt such a document
//     stops its collection's run with a *HaltError naming the document and
//     the recovery, leaving the run unfinished; the other collections'
//     chunks go on (Snapshot.Run), and Coordinator.Run logs the halt instead
//     of stopping `replicator run` (errors.go, coordinator.go).
//   - Visible. Progress bars on a terminal, periodic log lines otherwise
//     (progress.go), and the metrics replicator_snapshot_documents_total,
//     _documents_remaining and _state{collection,state} (metrics.go).
package snapshot
