// Package capture reads one MongoDB change stream per source, turns each
// event into an envelope through its collection's transformer and publishes
// it on the collection's buffer subject.
//
// Invariants:
//
//   - No loss and positions cannot drift from data (ARCHITECTURE.md, guarantees 1
//     and 4). The saved position is the buffer publisher's durable position:
//     the last event of the contiguous prefix of acknowledged publishes
//     (buffer.Publisher); capture saves nothing else (capture.go, save).
//     On the very first start the start time T0 (a majority read's
//     operation time) is saved before any event is read, so a crash before
//     the first event resumes at T0, not at a later "now"; OnFirstStart
//     runs before that save, so a crash between the two runs it again
//     rather than leaving a position whose initial snapshot was never
//     recorded (capture.go, start). After a crash capture resumes after
//     the saved position and re-publishes the tail with the same
//     Nats-Msg-Id, which the buffer deduplicates (a batch message cut
//     elsewhere than before is stored again, and applies as a no-op).
//   - Batch messages (group.go): while a backlog streams, a subject's
//     consecutive change envelopes go out as one message; a grouped
//     event's position reaches the publisher only with the flush of every
//     open group, and anything that is not a change envelope flushes
//     first, so the durable position and the order of each subject are
//     those of publishing every event alone.
//   - Source order: workers parse, transform and encode events
//     concurrently, but one goroutine publishes them strictly in
//     change-stream order (pipeline.go), and a failed publish is retried
//     before any later one resolves. Every stage's queue is bounded
//     (invariant 8); a stop is decided at the exact event, and nothing
//     after it is published. Transformers must therefore be safe for
//     concurrent use (transform.Mapping is).
//   - Per-document order inside one cluster time (invariant 3): the
//     operations of one transaction share a cluster time, so each change
//     envelope carries its ordinal among the consecutive events of its
//     cluster time in stream order, numbered by the reader stage
//     (ordinal.go), and apply breaks version ties with it, not with the
//     buffer sequence (a retried publish is stored after later ones). The
//     saved position holds the ordinal of the event at its token, and the
//     numbering restarts from it, so events read again after a restart get
//     the same ordinals.
//   - Never skip silently (invariant 5), and a broken collection never
//     stalls another (invariant 3): a drop, rename or dropDatabase event
//     and a transform error in an `on_error: halt` collection hold that
//     collection (holds.go, events.go control): the hold, with the reason
//     and the recovery, is stored in the buffer's KV bucket before capture
//     reads past the event; the collection's later events are read past
//     without publishing and without heartbeats (so its apply lag grows,
//     replicator_capture_collection_held says 1), while the others stream
//     on. The recovery, `replicator resync --collection`, releases the hold
//     at a cluster time from which capture publishes every event of the
//     collection again and copies the collection as of it (ReleaseHolds).
//     An invalidate reopens the stream after itself. A lost resume point
//     (ChangeStreamHistoryLost, or the ChangeStreamFatalError older servers
//     give for it) and an unreadable event stop the whole stream with an
//     error naming the recovery command (errors.go); the position never
//     moves past such an event.
//   - The one exception is the policy source.on_history_lost: resync
//     (OnHistoryLost set): a lost resume point is logged, counted
//     (replicator_capture_history_lost_total) and handed to the hook, which
//     records a resync of every collection at a new T0; capture then purges
//     the buffered events, saves T0 as its position and reopens the stream
//     at T0 without stopping (history.go). Losses that follow each other
//     back off and, past HistoryLostRetries, stop capture (lostseries.go).
//     If the hook fails capture stops as above.
//   - Poison isolation (invariant 6): any other transform error becomes a
//     dead-letter envelope carrying the raw event, the error and the field
//     path, and the stream goes on (events.go).
//   - Truthful lag (invariant 9): an idle stream advances on
//     postBatchResumeToken, and every collection's subject gets a heartbeat
//     with the latest source time each heartbeat interval (stream.go,
//     consume and heartbeat). replicator_capture_lag_seconds grows while
//     the reader is stuck and reads ≈ 0 when caught up.
//   - One capture per source: Run holds the buffer's lease for the source
//     while it reads (buffer.Lease); a second process waits as a standby.
//     Started is closed once the lease is held and the start position
//     settled, so work that must not run in a standby can wait for it.
//
// On the first start (no saved position) Run calls OnFirstStart with T0,
// the hook the initial snapshot uses. The oplog headroom (how long capture
// may stop before its position falls off the oplog) is not measured here:
// package capture/oplogwindow owns that gauge and warning, and weighs the
// running snapshot's remaining time through a hook the wiring sets.
//
// Errors from the source name their cause (source.go, SourceError): a
// refused login, a missing privilege, a TLS mismatch or an unreachable
// member, with the part of source.uri to change, instead of the driver's
// description of its topology. The wiring and the commands pass their
// own source errors through it too. A change stream that fails is
// reopened after a wait that doubles up to 10 seconds and starts over
// only after a stream that stayed open that long (stream.go, read).
//
// T0, the majority-committed cluster time a first start or a snapshot
// begins at, has one source: ClusterTime (clustertime.go). ResetCapture
// and PurgeBuffered (reset.go) move a capture position to a new T0 and drop
// the buffered events it supersedes, for resync --all and the
// on_history_lost: resync policy.
package capture
