package buffer

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestWrongPasswordIsNamed: a NATS server that refuses the credentials,
// or wants some, makes Open fail at once with the server's reason and the
// keys to change, not with a timeout, and without the password.
func TestWrongPasswordIsNamed(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), Username: "user", Password: "secret", NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(srv.Shutdown)
	addr := srv.Addr().String()
	for _, tc := range []struct{ url, want string }{
		{"nats://user:wrongpass@" + addr, "buffer: NATS at nats://user:xxxxx@" + addr + " refused the credentials (nats: Authorization Violation): " +
			"check the user and password or token in buffer.nats_url (or REPLICATOR_BUFFER_NATS_URL), or buffer.credentials_file"},
		{"nats://" + addr, "buffer: NATS at nats://" + addr + " requires credentials (nats: Authorization Violation): " +
			"put them in buffer.nats_url (nats://user:password@host:port, or REPLICATOR_BUFFER_NATS_URL) or set buffer.credentials_file"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		start := time.Now()
		_, err = Open(ctx, Config{URL: tc.url}, nil)
		cancel()
		if err == nil || err.Error() != tc.want {
			t.Fatalf("want %q, got %v", tc.want, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %s", tc.url, d)
		}
		if strings.Contains(err.Error(), "wrongpass") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

// TestUnreachableIsNamed: a NATS server nothing listens for is waited for
// until the deadline (it may be starting), and the error then says that
// nothing listens there.
func TestUnreachableIsNamed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = Open(ctx, Config{URL: "nats://" + addr}, nil)
	want := "buffer: stream REPLICATOR: context deadline exceeded (not connected: nothing listens at nats://" + addr +
		" (connection refused): is NATS running, and is buffer.nats_url right?)"
	if err == nil || err.Error() != want {
		t.Fatalf("want %q, got %v", want, err)
	}
}
