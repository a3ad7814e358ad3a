package testenv

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EnvNATSURL names an existing NATS server with JetStream enabled that tests
// use instead of an in-process one.
const EnvNATSURL = "REPLICATOR_TEST_NATS_URL"

// NATSServer is a NATS server with JetStream for one test.
type NATSServer struct {
	// URL is the client URL.
	URL string

	t    testing.TB
	opts *server.Options
	srv  *server.Server // nil when external or shut down
}

// NATS starts an in-process nats-server with JetStream file storage in a
// temporary directory (or uses REPLICATOR_TEST_NATS_URL), shut down when the
// test ends.
func NATS(t testing.TB) *NATSServer {
	t.Helper()
	if u := os.Getenv(EnvNATSURL); u != "" {
		return &NATSServer{URL: u, t: t}
	}
	n := &NATSServer{t: t, opts: &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  tempDir(t),
		NoLog:     true,
		NoSigs:    true,
	}}
	if err := n.start(); err != nil {
		t.Fatalf("testenv: NATS: %v", err)
	}
	// Restarts come back on the same port and storage.
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port
	n.URL = n.srv.ClientURL()
	t.Cleanup(n.Shutdown)
	return n
}

func (n *NATSServer) start() error {
	srv, err := server.NewServer(n.opts)
	if err != nil {
		return err
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("nats-server not ready within 30s")
	}
	n.srv = srv
	return nil
}

// Shutdown stops the server (its stored data stays for Restart).
func (n *NATSServer) Shutdown() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// Restart shuts the server down and starts it again on the same port with
// the same storage. It fails the test for an external server.
func (n *NATSServer) Restart() {
	n.t.Helper()
	if n.opts == nil {
		n.t.Fatalf("testenv: cannot restart the external NATS server %s", n.URL)
	}
	n.Shutdown()
	n.Start()
}

// Start starts a server stopped by Shutdown.
func (n *NATSServer) Start() {
	n.t.Helper()
	if n.srv != nil {
		return
	}
	if err := n.start(); err != nil {
		n.t.Fatalf("testenv: NATS restart: %v", err)
	}
}
