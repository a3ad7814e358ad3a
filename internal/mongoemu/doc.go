// Package mongoemu is an in-memory MongoDB server emulator speaking the
// wire protocol, used to test the replicator without a MongoDB binary.
//
// It presents a one-member replica set (default name "rs0") with MongoDB
// 8.0 semantics (maxWireVersion 25) to the official drivers, both through
// replica-set discovery and with directConnection=true.
//
// Implemented:
//
//   - Wire protocol: OP_MSG (body and document-sequence sections, CRC-32C
//     checksums, moreToCome for unacknowledged writes) and the legacy
//     OP_QUERY handshake answered with OP_REPLY. Awaitable hello waits the
//     requested maxAwaitTimeMS (the topology never changes) and replies
//     without moreToCome, so streaming monitors poll at heartbeat pace.
//   - Commands: hello/isMaster, ping, buildInfo, getParameter, session
//     commands, serverStatus, replSetGetStatus, listDatabases,
//     listCollections, create (views, changeStreamPreAndPostImages), collMod,
//     drop, dropDatabase, renameCollection, createIndexes (unique and sparse
//     indexes enforced), dropIndexes, listIndexes, insert, update (operators,
//     replacement, pipeline updates, upsert, multi, arrayFilters with $[] and
//     $[id]), delete, findAndModify, find (full query language except
//     geo/text/$where), getMore, killCursors, count, distinct, aggregate,
//     dbStats, collStats, configureFailPoint, commitTransaction,
//     abortTransaction, and find on local.oplog.rs.
//   - Values compare and sort in MongoDB's BSON type order, numbers by value
//     across int32/int64/double/decimal128; comparison operators are
//     type-bracketed; arrays sort by their min/max element.
//   - Change streams on collections, databases and the cluster with the
//     event shapes of MongoDB 8.0, resume tokens, postBatchResumeToken,
//     awaitData getMore woken by new oplog entries, pre- and post-images,
//     showExpandedEvents, invalidation, and ChangeStreamHistoryLost (286)
//     when the bounded oplog has discarded the resume point.
//   - Multi-document transactions (buffered, applied atomically at commit,
//     events share one cluster time) and retryable-write fields.
//
// Not implemented: authentication, TLS, compression, sharding, snapshot
// isolation or write-conflict detection between transactions, positional
// "$" update and projection operators, collation, geo and text queries,
// $where, $lookup/$facet/$out/$merge/$unionWith, tailable cursors on
// ordinary collections, and exact server-side timeouts (maxTimeMS is only
// used as the await time of change-stream getMore).
//
// Invariant: oplog order equals apply order. Writers hold Server.mu while
// modifying data and appending to the oplog; a change stream never skips an
// event silently - if its position has been discarded from the bounded
// oplog it fails with code 286.
package mongoemu
