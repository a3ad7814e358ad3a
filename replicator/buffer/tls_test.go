package buffer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestTLSMismatchIsNamed: each TLS mismatch between this client and a real
// NATS server, both ways, fails Open at once with its cause and the
// buffer.tls key to change, not with a timeout.
func TestTLSMismatchIsNamed(t *testing.T) {
	ca := newTestCA(t, "test CA")
	other := newTestCA(t, "other CA")
	good := ca.issue(t, "localhost", net.IPv4(127, 0, 0, 1))
	misnamed := ca.issue(t, "nats.example.com")
	stranger := other.issue(t, "localhost", net.IPv4(127, 0, 0, 1))

	plain := startNATS(t, nil, 0).Addr().String()
	secure := startNATS(t, good.serverTLS(nil), 0).Addr().String()
	elsewhere := startNATS(t, misnamed.serverTLS(nil), 0).Addr().String()
	mutual := startNATS(t, good.serverTLS(ca), 0).Addr().String()

	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"TLS against a plain server", Config{URL: "nats://" + plain, CAFile: ca.file},
			"buffer: NATS at nats://" + plain + " does not offer TLS, but this client requires it (buffer.tls.ca_file set): enable TLS on the server, or remove buffer.tls and use a nats:// URL"},
		{"tls:// against a plain server", Config{URL: "tls://" + plain},
			"buffer: NATS at tls://" + plain + " does not offer TLS, but this client requires it (the URL is tls://)"},
		{"no TLS against a TLS server", Config{URL: "nats://" + secure},
			"buffer: NATS at nats://" + secure + " requires TLS, and its certificate is signed by an authority this host does not trust: set buffer.tls.ca_file to the CA that signed it (x509: certificate signed by unknown authority"},
		{"untrusted CA", Config{URL: "nats://" + secure, CAFile: other.file},
			"buffer: the certificate of NATS at nats://" + secure + " is not signed by the CA in buffer.tls.ca_file (" + other.file + "): set buffer.tls.ca_file to the CA that signed it (x509: certificate signed by unknown authority"},
		{"wrong server name", Config{URL: "nats://" + elsewhere, CAFile: ca.file},
			"buffer: the certificate of NATS at nats://" + elsewhere + " is not valid for 127.0.0.1: put a host name the certificate names (nats.example.com) in buffer.nats_url"},
		{"no client certificate", Config{URL: "nats://" + mutual, CAFile: ca.file},
			"buffer: NATS at nats://" + mutual + " closed the connection during TLS setup"},
		{"untrusted client certificate", Config{URL: "nats://" + mutual, CAFile: ca.file, CertFile: stranger.certFile, KeyFile: stranger.keyFile},
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
		{URL: "nats://" + secure, CAFile: ca.file},
		{URL: "nats://" + mutual, CAFile: ca.file, CertFile: good.certFile, KeyFile: good.keyFile},
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
	ca := newTestCA(t, "test CA")
	other := newTestCA(t, "other CA")
	srv := startNATS(t, ca.issue(t, "localhost", net.IPv4(127, 0, 0, 1)).serverTLS(nil), 0)
	addr, port := srv.Addr().String(), srv.Addr().(*net.TCPAddr).Port
	b := open(t, Config{URL: "nats://" + addr, CAFile: ca.file})
	srv.Shutdown()
	srv.WaitForShutdown()
	startNATS(t, other.issue(t, "localhost", net.IPv4(127, 0, 0, 1)).serverTLS(nil), port)

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

// testCA is a throwaway certificate authority; file is its PEM
// certificate.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(t.TempDir(), "ca.pem"), pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// testCert is a certificate the CA issued, for a server or a client, in
// files and in memory.
type testCert struct {
	certFile, keyFile string
	pair              tls.Certificate
}

func (ca *testCA) issue(t *testing.T, dnsName string, ips ...net.IP) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{dnsName}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := testCert{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"),
		pair: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	writePEM(t, c.certFile, "CERTIFICATE", der)
	writePEM(t, c.keyFile, "EC PRIVATE KEY", keyDER)
	return c
}

// serverTLS serves c; with clients set, it requires client certificates
// that CA signed.
func (c testCert) serverTLS(clients *testCA) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c.pair}}
	if clients != nil {
		cfg.ClientCAs, cfg.ClientAuth = clients.pool, tls.RequireAndVerifyClientCert
	}
	return cfg
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
