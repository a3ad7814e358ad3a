// Package buffer is the durable queue between capture and apply: a NATS
// JetStream stream with one subject per source collection, or per
// partition of one (envelope.PartitionSubject).
//
// It connects to an external NATS (URL, credentials file, TLS) or runs an
// embedded nats-server with JetStream file storage under a data directory,
// listening on loopback only (embedded.go) and refusing clients without
// the token it generates in DataDir/nats.token, mode 0600 (auth.go); every
// client path (Open, Connect, in process or attached) presents it. It
// provisions the stream and the capture position bucket idempotently
// (stream.go). A server that refuses this client (credentials, TLS, its
// certificate) fails Connect at once with a *RefusedError naming the cause
// and the buffer key to change; one not reachable yet is retried in the
// background, and errors of a buffer that is not connected name the
// connection's last error (cause.go, Cause).
//
// Invariants:
//
//   - Positions cannot drift from data (ARCHITECTURE.md, guarantee 4). A
//     Publisher reports as durable only the position of the last entry of
//     the contiguous prefix of acknowledged publishes (publisher.go, Run);
//     a failed publish is retried, in order, until it succeeds, never
//     skipped. An acknowledgement that does not come within 30 seconds of
//     the send, or that was awaited when the connection dropped, counts
//     as a failure (replies.go). Publishes already in flight behind a failed one may be
//     stored before its retry, so the retry lands later in the stream;
//     it still applies in source order, because apply orders writes by
//     cluster time and, inside one cluster time (the operations of one
//     transaction), by the ordinal capture gives each event in stream
//     order (envelope.Envelope.Ordinal), not by buffer sequence. The
//     position holds that ordinal too (Position.Ordinal), so events read
//     again after a restart are numbered as before. The capture position
//     lives in a KV bucket of the same JetStream domain as the stream it
//     describes (position.go), so the two cannot be restored or lost
//     separately.
//   - Re-publishing is harmless: every change message carries a
//     Nats-Msg-Id derived from the event's resume token (MsgID, a 128-bit
//     digest), and the stream deduplicates within its duplicate window
//     (stream.go), so a tail re-read after a crash is stored once (a batch
//     message's id names its first and last event, BatchMsgID: cut
//     elsewhere after a restart, its events are stored again and the
//     applier's version guard skips them).
//   - Bounded memory (invariant 8): at most Config.PublishWindow publishes
//     and windowBytes of their messages are in flight (publisher.go, the
//     slots semaphore and reserve).
//   - No silent loss in the buffer (invariant 1): the stream discards NEW
//     messages when max_bytes is reached, so a full buffer pushes back on
//     capture (and its lag alerts) instead of dropping unapplied messages.
//   - One capture process per source: a lease key in KV with a TTL
//     (lease.go); a process that loses its lease stops capturing.
//   - One apply process per collection or partition at a time, as far as
//     claims go: ApplyGroup (claims.go) keeps a claim key per unit in the
//     bucket <stream>_apply, whose entries the server expires after the
//     TTL unless renewed; a process claims at most its share, hands the
//     excess back (deleting a claim only after its unit stopped applying)
//     and gives up a claim it could not renew for a TTL. Safety never rests
//     on a claim (sink/claims.go).
//   - The partitions capture last published each collection on are
//     recorded (layouts.go), so a change is only made once the old layout
//     is applied (capture, layout.go).
package buffer
