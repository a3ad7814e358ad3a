// Package mongoemu is an in-memory MongoDB server emulator that speaks the
// wire protocol. The replicator's tests use it because no MongoDB binary
// or Docker engine is available.
//
// It presents a one-member replica set (default name "rs0") with MongoDB
// 8.0 semantics (maxWireVersion 25) to the official drivers. Drivers can
// connect through replica-set discovery or with directConnection=true.
//
// # Implemented
//
//   - Wire protocol: OP_MSG (body and document-sequence sections, CRC-32C
//     checksums, moreToCome for unacknowledged writes) and the legacy
//     OP_QUERY handshake, answered with OP_REPLY. An awaitable hello
//     (topologyVersion plus maxAwaitTimeMS) waits up to maxAwaitTimeMS, but
//     no more than 500 ms, or until the client disconnects. The topology
//     never changes, so any wait is correct, and the cap bounds how long a
//     driver stays without a selectable server after a network error.
//     Replies never set moreToCome, so a streaming monitor sends its next
//     hello after each reply. Errors that signal a state change carry
//     topologyVersion, so drivers do not mark the server unknown.
//   - Commands: hello/isMaster, ping, buildInfo, getParameter, session
//     commands, serverStatus, replSetGetStatus, hostInfo, listDatabases,
//     listCollections, create (with views and changeStreamPreAndPostImages),
//     collMod, drop, dropDatabase and renameCollection. Index commands:
//     createIndexes (unique and sparse indexes are enforced), dropIndexes
//     and listIndexes. Writes: insert, update and delete, including
//     operators, replacement, pipeline updates, upsert, multi, positional
//     "$", "$[]" and "$[id]" with arrayFilters. Reads: findAndModify, find,
//     getMore, killCursors, count, distinct and aggregate. Also dbStats,
//     collStats, configureFailPoint, commitTransaction, abortTransaction,
//     and find/count/aggregate on local.oplog.rs. Like a freshly initiated
//     replica set's, the oplog opens with the no-op entry {op: "n", ns: "",
//     o: {msg: "initiating set"}}, written when the server is created.
//   - Values compare and sort in MongoDB's BSON type order. Numbers compare
//     by value across int32, int64, double and decimal128. Comparison
//     operators are type-bracketed, null matches missing fields, and arrays
//     sort by their smallest or largest element. Documents keep their field
//     order; _id stays first.
//   - Change streams on collections, databases and the whole cluster, with
//     MongoDB 8.0's event fields, order and types, sortable resume tokens,
//     resumeAfter, startAfter and startAtOperationTime. postBatchResumeToken
//     is in every batch. getMore waits for data and wakes as soon as an
//     oplog entry is appended. Also supported: fullDocument and
//     fullDocumentBeforeChange modes, showExpandedEvents, user pipeline
//     stages, invalidation, ChangeStreamHistoryLost (286) and
//     BSONObjectTooLarge for events over 16 MiB. While no writes happen,
//     the cluster time follows the clock (like the primary's periodic no-op
//     writer), so the resume tokens of idle streams keep advancing.
//   - Multi-document transactions: writes are buffered per transaction and
//     applied atomically at commit. Their events share one cluster time and
//     carry lsid and txnNumber. Retryable-write fields are also accepted.
//   - failCommand and failGetMoreAfterCursorCheckout fail points.
//   - Authentication, with Options.Users: SCRAM-SHA-256 users of the admin
//     database, AuthenticationFailed (18) for wrong credentials and
//     Unauthorized (13) for commands before authentication, as mongod
//     --auth (auth.go). TLS, with Options.TLS: the listener accepts only
//     TLS connections (mongod's requireTLS).
//
// # Not implemented
//
// Other authentication mechanisms (SCRAM-SHA-1, X.509, LDAP, Kerberos),
// roles and privileges, client certificates unless Options.TLS asks for
// them, compression, sharding and mongos. Snapshot isolation
// and write-conflict detection between transactions (the last committer
// wins). Idempotent retry of retryable writes. Collation. Geo, text and
// $where queries. Positional projection ("a.$"). The aggregation stages
// $lookup, $graphLookup, $facet, $unionWith, $out, $merge and
// $changeStreamSplitLargeEvent. Tailable cursors on ordinary collections.
// Server-side maxTimeMS limits (maxTimeMS is only the await time of
// change-stream getMore). Resume tokens in MongoDB's KeyString format: the
// emulator's tokens are opaque hex strings that are ordered the same way.
// Validation that a resume token refers to an event still present in the
// oplog.
//
// # Invariants
//
// Oplog order equals apply order: a writer holds Server.mu while it
// changes data and appends to the oplog. A change stream never skips an
// event silently: if the bounded oplog has discarded its position, the
// stream fails with code 286. Until truncation discards it, the oldest
// oplog entry is the initiation no-op, whose cluster time is taken when the
// server is created: at or before every cluster time the server reports
// (operation times, resume tokens, events). Truncation discards entries
// oldest first, the no-op first of all. Change streams skip no-op entries,
// and discarding one loses no event, so it never causes code 286.
//
// Memory is bounded by the options, not by the running time: OplogMaxBytes
// counts each entry as the memory it keeps alive, truncation releases
// discarded entries at amortised constant cost (oplog.go), and sessions are
// forgotten at endSessions (txn.go). What remains proportional to the
// workload is the data itself: collections, indexes and open cursors.
package mongoemu
