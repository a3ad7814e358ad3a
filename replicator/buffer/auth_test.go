package buffer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestEmbeddedRequiresToken: the embedded server refuses a client without
// the token of DataDir/nats.token and serves the buffer's own paths: the
// owner (in process), a second process attached to it, and the owner
// after a restart, which reuses the token.
func TestEmbeddedRequiresToken(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var logs bytes.Buffer
	b, err := Open(ctx, Config{DataDir: dir}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	url := b.URL()

	// Anyone else on this machine: no credentials, or wrong ones.
	for _, opt := range []nats.Option{nats.Name("intruder"), nats.Token("guess")} {
		nc, err := nats.Connect(url, opt, nats.MaxReconnects(0), nats.Timeout(5*time.Second))
		if err == nil {
			nc.Close()
			t.Fatal("the embedded server accepted a client without its token")
		}
		if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("want an authorization error, got %v", err)
		}
	}

	path := filepath.Join(dir, tokenFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	tok, err := readToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(url, tok) || strings.Contains(logs.String(), tok) {
		t.Error("the token shows in the URL or the log")
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, urlFile)); strings.Contains(string(raw), tok) {
		t.Error("the token shows in nats.url")
	}
	// The token opens the server.
	nc, err := nats.Connect(url, nats.Token(tok))
	if err != nil {
		t.Fatalf("the token from %s: %v", path, err)
	}
	nc.Close()

	// A second process of the same user attaches through the buffer.
	if _, err := b.JetStream().Publish(ctx, b.Subject("a.b"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(ctx, Config{DataDir: dir}, nil)
	if err != nil {
		t.Fatalf("attached open: %v", err)
	}
	if b2.emb.srv != nil {
		t.Fatal("second open started a second server")
	}
	if s, err := b2.JetStream().Stream(ctx, DefaultStream); err != nil || s.CachedInfo().State.Msgs != 1 {
		t.Fatalf("attached buffer reads the stream: %v", err)
	}
	b2.Close()
	b.Close()

	// A restart keeps the token, so attached processes find it again.
	b3, err := Open(ctx, Config{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Close()
	if again, _ := readToken(path); again != tok {
		t.Error("the restarted server generated a new token")
	}
}

// TestConnectErrorRedacted: a connect error names the server without its
// password or token, even where the client library quotes the URL.
func TestConnectErrorRedacted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Connect(ctx, Config{URL: "nats://user:secret@127.0.0.1:bad,nats://tok3n@127.0.0.1:2"}, nil)
	if err == nil {
		t.Fatal("connect to an invalid URL succeeded")
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "tok3n") {
		t.Fatalf("the error shows a credential: %v", err)
	}
	if !strings.Contains(err.Error(), "nats://user:xxxxx@127.0.0.1") {
		t.Fatalf("the error does not name the server: %v", err)
	}
}
