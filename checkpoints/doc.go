// Package checkpoints reads and moves the apply checkpoints the sink keeps
// in replicator.apply_checkpoints: per collection, the last buffer (stream)
// sequence applied to PostgreSQL and the source time it reached.
//
// Promises:
//   - Set moves one collection's checkpoint and bumps its epoch in one
//     statement (checkpoints.go, Set); an applier that is running notices the
//     new epoch at its next commit, commits nothing more from the old position
//     and restarts delivery from the new one (sink, queueCheckpoint). Set
//     refuses to move a checkpoint forward, which would skip events, unless
//     asked to (SetOptions.AllowForward).
//   - Replaying is safe: the sink's version guard re-applies only what is
//     newer than each row, so no row's version ever decreases.
//   - SeqBefore maps a time to the sequence to set for "replay from that
//     time": the checkpoint lands just before the collection's first
//     message at or after it (replay.go).
package checkpoints
