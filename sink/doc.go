// Package sink applies buffer messages to PostgreSQL: one durable JetStream
// pull consumer per collection, one PostgreSQL transaction per batch, and an
// acknowledgement only after that transaction commits.
//
// Use: New(pool, collections, Config, registerer, logger), then Run(ctx, js),
// which blocks until ctx ends or every collection has halted.
//
// Promises, and where the code keeps them:
//
//   - Invariant: ack only after commit. A message is acknowledged once the
//     transaction covering it has committed; a batch abandoned on shutdown is
//     never acknowledged and JetStream delivers it again (consumer.go,
//     session). The consumer's ack policy is AckAll: one acknowledgement of
//     the newest committed message covers every message before it, which
//     the checkpoint says are committed too.
//   - Invariant: checkpoint in the same transaction. The collection's row
//     in replicator.apply_checkpoints (the last applied stream sequence) is
//     updated in the batch's transaction, guarded by the sequence and epoch
//     this applier last saw (apply.go, queueCheckpoint). Messages at or below
//     the checkpoint are skipped as already applied (apply.go, commit).
//   - Delivery resumes from the checkpoint: every session deletes and
//     recreates the durable consumer to start at checkpoint+1, so neither a
//     restart nor a replay (checkpoints.Set changes the epoch) loses or
//     reorders anything (consumer.go, resetConsumer).
//   - Acknowledgements and checkpoints follow stream order even when a
//     redelivery (an expired ack wait) arrives after newer messages in one
//     fetch: batches are sorted, messages at or below the checkpoint are
//     skipped wherever they sit, and the acknowledgement of the newest
//     committed message covers them (consumer.go, lastCommitted; apply.go,
//     pendingMsgs).
//   - Never skip silently (ARCHITECTURE.md, guarantee 5), on the buffer's side:
//     sequences the stream removed (retention) before they were delivered
//     are reported as a gap: metric, error log and a control event
//     committed with the checkpoint that passes them, or a halt with
//     on_error: halt (gaps.go). A stream that no longer holds the message
//     at the checkpoint (recreated, or truncated) would number new messages
//     below it: the checkpoint is rewound to replay what the stream holds
//     (divergence.go).
//   - Exactly-once effect (ARCHITECTURE.md, guarantee 2): a root row is
//     written only if its version (cluster time T, I, then the envelope's
//     ordinal inside that cluster time, never the buffer sequence: plan.go)
//     is at least the stored row's and the key's tombstone's; deletes leave
//     tombstones, which an insert event's write removes when older (other
//     writes leave them: older than the row, they refuse nothing the row
//     does not, apply.go queueWrites); a parent's child rows are replaced only together with an
//     applied parent write; the same key twice in a batch keeps only the
//     newest (merge.go, plan.go).
//   - Tombstones do not grow forever: with Config.TombstoneRetention set
//     to the buffer's max_age, tombstones older than that which no running
//     snapshot or resync needs are removed in bounded batches
//     (tombstones.go).
//   - Small batches send their rows as array parameters in one pipelined
//     round trip; batches of CopyThreshold rows or more are COPYed: rows of
//     insert events whose key has neither a row nor a tombstone go
//     straight into the target tables (any version beats nothing,
//     fresh.go), the other upserts and child rows into temporary staging
//     tables; deletes stay arrays (a staging table without statistics
//     made the planner scan the whole target table). All staged rows feed
//     the same merge statements, so
//     both paths give identical results (stage.go, merge.go). A key that a
//     concurrent snapshot or resync committed meanwhile makes the direct
//     COPY fail; the batch is then retried through the merge alone, never
//     split or dead-lettered for it (apply.go, freshError).
//   - Every message is decoded by envelope.DecodeShared, in place: the
//     envelope's strings share the message's bytes, which are never
//     written and outlive the batch (plan.go, decodeEnvelope). A batch
//     message (format version 3) is one event per frame, all with the
//     message's sequence (decodeFrames). Only version 2 envelopes, alone
//     or in a batch, are read; anything else (the JSON form of builds
//     before the first release, an unknown version, a message cut short,
//     a change envelope without an ordinal) is a decode dead letter
//     holding the raw bytes, never a guess (schemas/envelope.md).
//   - Retryable failures (connection loss, serialization failure, deadlock,
//     server shutting down or starting) are retried in order with capped
//     exponential backoff until ctx ends. A failure of one event (SQLSTATE
//     class 22, 23 or 54) is isolated by splitting the batch in halves,
//     between buffer messages where it can and inside a batch message
//     otherwise, the first half then committing without moving the
//     checkpoint, which covers whole messages only (poison.go, plan); that
//     event becomes a dead letter with its SQLSTATE and message and the
//     rest applies, in order. With on_error: halt, or once dead_letter_threshold unresolved
//     dead letters exist, only that collection stops, with a *HaltError
//     (errors.go, apply.go).
//   - Collections are independent: each runs on its own goroutine with its
//     own consumer, transactions and halting (applier.go). So are the
//     partitions of a partitioned collection: each is a unit with its own
//     consumer on its own subject and its own checkpoint row
//     (envelope.Partition.Unit). With a Claimer (Share), a unit is applied
//     only while this process holds its claim (claims.go). A batch under
//     way when the claim is handed back, or the process stops, may finish
//     within applyGrace instead of being cut off mid-commit; no further
//     batch starts (consumer.go, withGrace).
//   - Bounded memory: per collection at most three fetched batches (each
//     BatchSize messages and BatchBytes bytes, or one larger message,
//     fetched on its own after a bounded fetch comes back empty) are in
//     memory: one applying, one decoded and waiting, one being fetched. The
//     backlog stays in JetStream (consumer.go, session; MaxAckPending).
//
// Target root tables carry the hidden version columns named in transform
// (_cdc_ts, _cdc_inc, _cdc_seq, bigint NOT NULL) and a primary key on the
// mapping's key; child tables a key on their root key and ordinal columns.
package sink
