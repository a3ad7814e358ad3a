// Package mongotest gives tests a MongoDB to talk to through the official
// driver, so the same test bodies run against every backend:
//
//   - default: the project's wire-protocol emulator (internal/mongoemu),
//     in-process on a free loopback port, one per test;
//   - REPLICATOR_TEST_MONGO_URI: a real replica set (or mongos) named by URI;
//     each test works in databases of its own (Env.Database);
//   - REPLICATOR_TEST_MONGO=docker: a real mongo:8 single-node replica set
//     started through testcontainers-go, shared by the tests of a package.
//     When no Docker engine is reachable the test fails and says so.
package mongotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
)

// Environment variables that choose the backend.
const (
	EnvURI     = "REPLICATOR_TEST_MONGO_URI"
	EnvBackend = "REPLICATOR_TEST_MONGO" // "emulator" (default) or "docker"
)

// Env is one test's MongoDB.
type Env struct {
	// URI is a connection string for the replicator under test.
	URI string
	// Emulator is the in-process emulator, nil on a real server.
	Emulator *mongoemu.Server
	// Client is connected to URI, disconnected when the test ends.
	Client *mongo.Client

	t testing.TB
}

// Options tune the emulator; a real server ignores them, and tests that
// depend on them call RequireEmulator.
type Options struct {
	OplogMaxEvents int
	OplogMaxBytes  int64
	// ClockOffset moves the emulator's clock (mongoemu.Options.ClockOffset).
	ClockOffset time.Duration
}

// New returns a MongoDB for this test.
func New(t testing.TB, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	env := &Env{t: t}
	switch {
	case os.Getenv(EnvURI) != "":
		env.URI = os.Getenv(EnvURI)
	case strings.EqualFold(os.Getenv(EnvBackend), "docker"):
		env.URI = dockerURI(t)
	case os.Getenv(EnvBackend) == "" || strings.EqualFold(os.Getenv(EnvBackend), "emulator"):
		srv := mongoemu.New(mongoemu.Options{OplogMaxEvents: o.OplogMaxEvents, OplogMaxBytes: o.OplogMaxBytes, ClockOffset: o.ClockOffset})
		if err := srv.Listen("127.0.0.1:0"); err != nil {
			t.Fatalf("mongotest: emulator: %v", err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		env.Emulator, env.URI = srv, srv.URI()
	default:
		t.Fatalf("mongotest: %s=%q: want emulator or docker", EnvBackend, os.Getenv(EnvBackend))
	}
	client, err := mongo.Connect(options.Client().ApplyURI(env.URI).SetTimeout(30 * time.Second))
	if err != nil {
		t.Fatalf("mongotest: connect: %v", err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	env.Client = client
	return env
}

// Real reports whether the backend is a real MongoDB server.
func (e *Env) Real() bool { return e.Emulator == nil }

// RequireEmulator skips the test on a real server, with the reason: some
// faults (a tiny oplog, say) can only be arranged on the emulator.
func (e *Env) RequireEmulator(reason string) {
	e.t.Helper()
	if e.Real() {
		e.t.Skipf("needs the emulator: %s", reason)
	}
}

// Database returns a database name unique to this test (prefix plus a
// random suffix), dropped when the test ends.
func (e *Env) Database(prefix string) string {
	e.t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Client.Database(name).Drop(ctx)
	})
	return name
}

var docker struct {
	once sync.Once
	uri  string
	err  error
}
