package buffer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestWrongPasswordIsNamed: a NATS server that refuses the credentials
// makes Open fail with the server's reason, not only a timeout, and
// without the password.
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
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	_, err = Open(ctx, Config{URL: "nats://user:wrongpass@" + addr}, nil)
	if err == nil {
		t.Fatal("Open succeeded with a wrong password")
	}
	msg := strings.ToLower(err.Error())
	if !strings.Contains(msg, "authorization violation") {
		t.Fatalf("error does not name the refusal: %v", err)
	}
	if strings.Contains(msg, "wrongpass") {
		t.Fatalf("error shows the password: %v", err)
	}
}
