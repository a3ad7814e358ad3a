package buffer

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/nats-io/nats-server/v2/server"
)

// TestTLSMismatchIsNamed: each TLS mismatch between this client and a real
// NATS server, both ways, fails Open at once with its cause and the
// buffer.tls key to change, not with a timeout.
func TestTLSMismatchIsNamed(t *testing.T) {
	ca := testenv.NewCA(t, "test CA")
	other := testenv.NewCA(t, "other CA")
	good := ca.Issue(t, []string{"localhost"}, net.IPv4(127, 0, 0, 1))
	misnamed := ca.Issue(t, []string{"nats.example.com"})
	stranger := other.Issue(t, []string{"localhost"}, net.IPv4(127, 0, 0, 1))

	plain := startNATS(t, nil, 0).Addr().String()
	secure := startNATS(t, good.ServerTLS(nil), 0).Addr().String()
	elsewhere := startNATS(t, misnamed.ServerTLS(nil), 0).Addr().String()
	mutual := startNATS(t, good.ServerTLS(ca), 0).Addr().String()

	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"TLS against a plain server", Config{URL: "nats://" + plain, CAFile: ca.File},
			"buffer: NATS at nats://" + plain + " does not offer TLS, but this client requires it (buffer.tls.ca_file set): enable TLS on the server, or remove buffer.tls and use a nats:// URL"},
		{"tls:// against a plain server", Config{URL: "tls://" + plain},
			"buffer: NATS at tls://" + plain + " does not offer TLS, but this client requires it (the URL is tls://)"},
		{"no TLS against a TLS server", Config{URL: "nats://" + secure},
			"buffer: NATS at nats://" + secure + " requires TLS, and its certificate is signed by an authority this host does not trust: set buffer.tls.ca_file to the CA that signed it (x509: certificate signed by unknown authority"},
		{"untrusted CA", Config{URL: "nats://" + secure, CAFile: other.File},
			"buffer: the certificate of NATS at nats://" + secure + " is not signed by the CA in buffer.tls.ca_file (" + other.File + "): set buffer.tls.ca_file to the CA that signed it (x509: certificate signed by unknown authority"},
		{"wrong server name", Config{URL: "nats://" + elsewhere, CAFile: ca.File},
			"buffer: the certificate of NATS at nats://" + elsewhere + " is not valid for 127.0.0.1: put a host name the certificate names (nats.example.com) in buffer.nats_url"},
		{"no client certificate", Config{URL: "nats://" + mutual, CAFile: ca.File},
			"buffer: NATS at nats://" + mutual + " closed the connection during TLS setup"},
		{"untrusted client certificate", Config{URL: "nats://" + mutual, CAFile: ca.File, CertFile: stranger.CertFile, KeyFile: stranger.KeyFile},
			"buffer: NATS at nats://" + mutual + " refused this client's certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			b, err := Open(ctx, tc.cfg, nil)
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q in\n%v", tc.want, err)
			}
			var refused *RefusedError
			if !errors.As(err, &refused) {
				t.Errorf("not a *RefusedError: %v", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s: a refusal is not waited out", d)
			}
		})
	}

	// The right files connect, to both TLS servers.
	for _, cfg := range []Config{
		{URL: "nats://" + secure, CAFile: ca.File},
		{URL: "nats://" + mutual, CAFile: ca.File, CertFile: good.CertFile, KeyFile: good.KeyFile},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b, err := Open(ctx, cfg, nil)
		cancel()
		if err != nil {
			t.Fatalf("%s with the right files: %v", cfg.URL, err)
		}
		b.Close()
	}
}

// TestCauseNamesALaterRefusal: a buffer whose server comes back with a
// certificate it does not trust reports, on its failing requests, the
// refusal behind them.
func TestCauseNamesALaterRefusal(t *testing.T) {
	ca := testenv.NewCA(t, "test CA")
	other := testenv.NewCA(t, "other CA")
	srv := startNATS(t, ca.Issue(t, []string{"localhost"}, net.IPv4(127, 0, 0, 1)).ServerTLS(nil), 0)
	addr, port := srv.Addr().String(), srv.Addr().(*net.TCPAddr).Port
	b := open(t, Config{URL: "nats://" + addr, CAFile: ca.File})
	srv.Shutdown()
	srv.WaitForShutdown()
	startNATS(t, other.Issue(t, []string{"localhost"}, net.IPv4(127, 0, 0, 1)).ServerTLS(nil), port)

	deadline := time.Now().Add(10 * time.Second)
	for b.LastError() == nil || !strings.Contains(b.LastError().Error(), "not signed by the CA") {
		if time.Now().After(deadline) {
			t.Fatalf("last error %v", b.LastError())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := b.JetStream().Stream(ctx, DefaultStream)
	err = b.Cause(err)
	want := "(not connected: the certificate of NATS at nats://" + addr + " is not signed by the CA in buffer.tls.ca_file"
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want %q in\n%v", want, err)
	}
}

// startNATS starts a JetStream server on a loopback port (0: any), with
// tlsCfg when not nil.
func startNATS(t *testing.T, tlsCfg *tls.Config, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	o := &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	if tlsCfg != nil {
		o.TLS, o.TLSConfig, o.TLSTimeout = true, tlsCfg, 2
		o.TLSVerify = tlsCfg.ClientAuth == tls.RequireAndVerifyClientCert
	}
	srv, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv
}
