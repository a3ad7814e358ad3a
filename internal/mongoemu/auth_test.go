package mongoemu_test

import (
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

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
)

// TestAuthentication: with Users the emulator authenticates the official
// driver with SCRAM-SHA-256, refuses a wrong password or an unknown user
// with AuthenticationFailed (18) and mongod's message, and refuses
// commands of a connection that did not authenticate with Unauthorized
// (13).
func TestAuthentication(t *testing.T) {
	srv := mongoemu.New(mongoemu.Options{Users: map[string]string{"alice": "s3cret"}})
	mustNoErr(t, srv.Listen("127.0.0.1:0"))
	t.Cleanup(func() { _ = srv.Close() })
	withUser := func(userinfo string) string {
		return strings.Replace(srv.URI(), "mongodb://", "mongodb://"+userinfo+"@", 1)
	}
	insert := func(uri string, extra ...*options.ClientOptions) error {
		cl := connect(t, uri, extra...)
		_, err := cl.Database("db").Collection("c").InsertOne(ctxT(t), bson.D{{Key: "x", Value: 1}})
		return err
	}

	mustNoErr(t, insert(withUser("alice:s3cret")))
	// The mechanism named instead of negotiated, by direct connection.
	mustNoErr(t, insert("mongodb://alice:s3cret@"+srv.Addr()+"/?directConnection=true&authMechanism=SCRAM-SHA-256"))

	for _, tc := range []struct{ name, uri string }{
		{"wrong password", withUser("alice:wrong")},
		{"unknown user", withUser("bob:s3cret")},
		{"other database", withUser("alice:s3cret") + "&authSource=db"},
		{"SCRAM-SHA-1", withUser("alice:s3cret") + "&authMechanism=SCRAM-SHA-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := insert(tc.uri)
			var se mongo.ServerError
			if !errors.As(err, &se) || !se.HasErrorCode(18) || !strings.Contains(err.Error(), "(AuthenticationFailed) Authentication failed.") {
				t.Fatalf("want AuthenticationFailed (18), got %v", err)
			}
		})
	}

	t.Run("no credentials", func(t *testing.T) {
		err := insert(srv.URI())
		var se mongo.ServerError
		if !errors.As(err, &se) || !se.HasErrorCode(13) || !strings.Contains(err.Error(), "Command insert requires authentication") {
			t.Fatalf("want Unauthorized (13), got %v", err)
		}
		// The handshake and ping work unauthenticated, as on mongod.
		mustNoErr(t, connect(t, srv.URI()).Database("admin").RunCommand(ctxT(t), bson.D{{Key: "ping", Value: 1}}).Err())
	})
}

// TestTLS: with TLS the emulator serves the driver over TLS with its
// certificate, and a client that does not speak TLS, or does not trust
// the certificate, gets no reply.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	serverTLS, caFile := testPKI(t, dir, "ca")
	_, otherCA := testPKI(t, dir, "other")
	srv := mongoemu.New(mongoemu.Options{TLS: serverTLS})
	mustNoErr(t, srv.Listen("127.0.0.1:0"))
	t.Cleanup(func() { _ = srv.Close() })
	if !strings.Contains(srv.URI(), "tls=true") {
		t.Fatalf("URI %s does not ask for TLS", srv.URI())
	}
	ping := func(uri string) error {
		cl := connect(t, uri, options.Client().SetServerSelectionTimeout(time.Second))
		return cl.Database("admin").RunCommand(ctxT(t), bson.D{{Key: "ping", Value: 1}}).Err()
	}
	mustNoErr(t, ping(srv.URI()+"&tlsCAFile="+caFile))
	if err := ping("mongodb://" + srv.Addr() + "/?directConnection=true"); err == nil {
		t.Fatal("a client without TLS was served")
	}
	if err := ping(srv.URI() + "&tlsCAFile=" + otherCA); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("an untrusted certificate: %v", err)
	}
}

// testPKI writes a CA (name.pem) to dir and returns a server TLS
// configuration with a certificate it signed for 127.0.0.1 and localhost.
func testPKI(t *testing.T, dir, name string) (*tls.Config, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mustNoErr(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	mustNoErr(t, err)
	ca, err := x509.ParseCertificate(caDER)
	mustNoErr(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mustNoErr(t, err)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mongoemu"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	mustNoErr(t, err)
	caFile := filepath.Join(dir, name+".pem")
	mustNoErr(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	cfg := &tls.Config{MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return cfg, caFile
}
