// Package testenv gives tests real servers with one call each, cleaned up
// with the test:
//
//   - PostgreSQL: a private server started from the system binaries, shared by
//     the tests of one package, with a fresh database per test; or the server
//     named by REPLICATOR_TEST_PG_URL (a URL whose user may CREATE DATABASE).
//     NewPostgresServer gives a test its own server it may stop and restart.
//   - NATS JetStream: nats-server in-process with file storage in a temporary
//     directory, or the server named by REPLICATOR_TEST_NATS_URL.
//
// MongoDB lives in package mongotest, beside this one.
//
// A package's TestMain may call Main so the shared server and its files are
// removed when the tests end; without it the server still dies with the test
// process.
package testenv
