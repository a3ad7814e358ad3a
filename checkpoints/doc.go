// Package checkpoints reads and moves the apply checkpoints the sink keeps
// in replicator.apply_checkpoints: per collection, the last buffer (stream)
// sequence applied to PostgreSQL and the source time it reached.
//
// This package is the sole owner of the statements on that table (its
// definition is a migration in schemas). The commands (cmd/replicator) and
// capture's buffer reset (replicator/capture, reset.go) call List, Get and
// Set; the sink calls the rest, on its own connection, transaction or batch
// (apply.go here):
//   - Ensure and Get when a session starts or after a guarded write failed
//     (sink/apply.go, loadPosition);
//   - QueueAdvance in every batch's pipeline, before the batch's rows
//     (sink/apply.go, queueCheckpoint);
//   - Epoch while a session is idle (sink/consumer.go, checkEpoch);
//   - Rewind when the stream is not the one the checkpoint came from
//     (sink/divergence.go, checkStream).
//
// Promises:
//   - Set moves one collection's checkpoint and bumps its epoch in one
//     statement (checkpoints.go, Set); an applier that is running notices the
//     new epoch at its next commit, commits nothing more from the old position
//     and restarts delivery from the new one (sink, queueCheckpoint). Set
//     refuses to move a checkpoint forward, which would skip events, unless
//     asked to (SetOptions.AllowForward).
//   - The applier's writes are guarded: QueueAdvance and Rewind change the
//     row only while it holds the Position (sequence and epoch) the caller
//     last saw, and report ErrMoved otherwise, so a checkpoint never moves
//     from a position its writer did not hold (apply.go).
//   - Replaying is safe: the sink's version guard re-applies only what is
//     newer than each row, so no row's version ever decreases.
//   - SeqBefore maps a time to the sequence to set for "replay from that
//     time": the checkpoint lands just before the collection's first
//     message at or after it (replay.go).
package checkpoints
