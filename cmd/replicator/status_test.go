package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mongopg/replicator/replicator/config"
)

// TestStatusRedactsNATSPassword: `status` on an external NATS server whose
// URL holds a password names the server but never prints the password,
// whether the URL comes from the file (through a ${VAR} reference) or
// from REPLICATOR_BUFFER_NATS_URL; and a wrong password fails with an
// error that does not show it either.
func TestStatusRedactsNATSPassword(t *testing.T) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		Username: "user", Password: "secret", NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(srv.Shutdown)
	addr := srv.Addr().String()
	url := "nats://user:secret@" + addr

	t.Setenv(config.EnvSourceURI, "")
	t.Setenv(config.EnvTargetURL, "")
	t.Setenv("RT_STATUS_NATS_URL", url)
	cfg := filepath.Join(t.TempDir(), "r.yaml")
	body := "buffer:\n  nats_url: ${RT_STATUS_NATS_URL}\ncollections: [{source: shop.items, table: shop.items}]\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(name string, wantCode int, want string) {
		t.Helper()
		code, out, errs := run(t, "status", "--config", cfg)
		if code != wantCode {
			t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", name, code, wantCode, out, errs)
		}
		if strings.Contains(out+errs, "secret") || strings.Contains(out+errs, "wrong") {
			t.Errorf("%s: status prints a password:\n%s%s", name, out, errs)
		}
		if !strings.Contains(out+errs, want) {
			t.Errorf("%s: output does not contain %q:\n%s%s", name, want, out, errs)
		}
	}
	redacted := "nats://user:xxxxx@" + addr
	// No capture position is saved: status reports and exits 3 (unhealthy).
	check("from the file", 3, "buffer: stream REPLICATOR at "+redacted)

	t.Setenv("RT_STATUS_NATS_URL", "nats://nobody@127.0.0.1:1")
	t.Setenv(config.EnvBufferNATSURL, url)
	check("from the environment", 3, "buffer: stream REPLICATOR at "+redacted)

	t.Setenv(config.EnvBufferNATSURL, fmt.Sprintf("nats://user:wrong@%s", addr))
	check("wrong password", 3, "replicator status: unhealthy: buffer ")
}

// TestStatusEmbedded: `status` reaches the embedded buffer (started on
// data_dir, with its generated token) on a first and on a later start.
func TestStatusEmbedded(t *testing.T) {
	t.Setenv(config.EnvSourceURI, "")
	t.Setenv(config.EnvTargetURL, "")
	t.Setenv(config.EnvBufferNATSURL, "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "r.yaml")
	body := fmt.Sprintf("buffer:\n  data_dir: %q\ncollections: [{source: shop.items, table: shop.items}]\n", filepath.Join(dir, "buf"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		code, out, errs := run(t, "status", "--config", cfg)
		// 3: no capture position is saved (capture never ran).
		if code != 3 || !strings.Contains(out, "buffer: stream REPLICATOR at nats://127.0.0.1:") {
			t.Fatalf("start %d: exit %d\n%s%s", i+1, code, out, errs)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "buf", "nats.token")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
}
