package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mongopg/replicator/internal/mongoemu"
	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/internal/workload"
)

// TestConnectionErrorsNameTheCause: what each command prints when NATS or
// MongoDB cannot be reached or refuses this client names the cause in
// words, with the key to change, once: no prefix twice, no password.
func TestConnectionErrorsNameTheCause(t *testing.T) {
	env := mongotest.New(t)
	natsSrv := testenv.NATS(t)
	pg := testenv.PostgresURL(t)
	tlsNATS := startTLSNATS(t)
	auth := mongoemu.New(mongoemu.Options{Users: map[string]string{"alice": "s3cret"}})
	if err := auth.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = auth.Close() })
	wrongPassword := strings.Replace(auth.URI(), "mongodb://", "mongodb://alice:wrongpass@", 1)
	ns := workload.InDatabase(env.Database("errs"))
	write := func(source, natsURL string) string {
		p := filepath.Join(t.TempDir(), "replicator.yaml")
		y := workload.ConfigYAML(workload.ConfigParams{Namespaces: ns, SourceURI: source, TargetURL: pg, NatsURL: natsURL, DataDir: t.TempDir()})
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	natsTLS := "NATS at nats://" + tlsNATS + " requires TLS, and its certificate is signed by an authority this host does not trust: " +
		"set buffer.tls.ca_file to the CA that signed it (x509: certificate signed by unknown authority)"
	refused := "MongoDB at " + auth.Addr() + " refused the credentials of user alice (AuthenticationFailed: Authentication failed.): " +
		"check the user name, password, authSource and authMechanism in source.uri"

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // lines
		stderr string   // the last line
		waits  bool     // for an unreachable server, which may be starting
	}{
		{name: "run, NATS unreachable", args: []string{"run", "--metrics-listen", "off", "--config", write(env.URI, "nats://127.0.0.1:1")}, code: 1,
			stderr: "replicator run: buffer: stream REPLICATOR: context deadline exceeded (not connected: nothing listens at nats://127.0.0.1:1 (connection refused): " +
				"is NATS running, and is buffer.nats_url right?)", waits: true},
		{name: "run, MongoDB unreachable", args: []string{"run", "--metrics-listen", "off", "--config", write("mongodb://127.0.0.1:1/?replicaSet=rs0&serverSelectionTimeoutMS=1000", natsSrv.URL)}, code: 1,
			stderr: "replicator run: capture: read cluster time: server selection timed out: last error from 127.0.0.1:1: nothing listens at 127.0.0.1:1 (connection refused): " +
				"is MongoDB running, and are the hosts in source.uri right?", waits: true},
		{name: "run, MongoDB refuses the password", args: []string{"run", "--metrics-listen", "off", "--config", write(wrongPassword, natsSrv.URL)}, code: 1,
			stderr: "replicator run: capture: read cluster time: " + refused},
		{name: "run, NATS requires TLS", args: []string{"run", "--metrics-listen", "off", "--config", write(env.URI, "nats://"+tlsNATS)}, code: 1,
			stderr: "replicator run: buffer: " + natsTLS},
		{name: "check --preflight", args: []string{"check", "--preflight", "--timeout", "5s", "--config", write(wrongPassword, "nats://"+tlsNATS)}, code: 1,
			stdout: []string{"source: PROBLEM: " + refused, "buffer: PROBLEM: " + natsTLS},
			stderr: "replicator check: 2 pre-flight problem(s)"},
		{name: "status", args: []string{"status", "--config", write(env.URI, "nats://"+tlsNATS)}, code: 3,
			stdout: []string{"buffer: nats://" + tlsNATS + " unreachable: " + natsTLS}},
		{name: "buffer show", args: []string{"buffer", "show", "--collection", ns.Advisories, "--config", write(env.URI, "nats://"+tlsNATS)}, code: 1,
			stderr: "replicator buffer: " + natsTLS},
		{name: "checkpoints set --nats-url", args: []string{"checkpoints", "set", "--collection", ns.Advisories, "--time", "2026-01-01T00:00:00Z",
			"--config", write(env.URI, natsSrv.URL), "--nats-url", "nats://" + tlsNATS}, code: 1,
			stderr: "replicator checkpoints: buffer: " + natsTLS + " (--time needs the buffer)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, out, errs := run(t, tc.args...)
			took := time.Since(start)
			lines := strings.Split(strings.TrimRight(errs, "\n"), "\n")
			if last := lines[len(lines)-1]; code != tc.code || (tc.stderr != "" && last != tc.stderr) {
				t.Fatalf("code %d (want %d), last line of stderr:\n%s\nwant:\n%s\nstdout:\n%s", code, tc.code, last, tc.stderr, out)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out, w+"\n") {
					t.Errorf("missing line in stdout:\n%s\nstdout:\n%s", w, out)
				}
			}
			for _, bad := range []string{"wrongpass", "buffer: buffer:", "capture: capture", "current topology"} {
				if strings.Contains(out+errs, bad) {
					t.Errorf("%q in the output:\n%s%s", bad, out, errs)
				}
			}
			if !tc.waits && took > 2*time.Second {
				t.Errorf("took %s: a refusal is not waited out", took)
			}
		})
	}
}

// startTLSNATS starts a JetStream server that requires TLS, with a
// self-signed certificate no client trusts, and returns its host:port.
func startTLSNATS(t *testing.T) string {
	t.Helper()
	cert := testenv.NewCA(t, "nats").Issue(t, nil, net.IPv4(127, 0, 0, 1))
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true, TLS: true, TLSTimeout: 2,
		TLSConfig: cert.ServerTLS(nil)})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv.Addr().String()
}
