package capture

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/transform"
)

// TestSourceErrorNamesTheCause: each way a source refuses this client,
// through the real driver against the emulator, comes out of SourceError
// as its cause and the part of source.uri to change, with the context the
// caller added and without the password.
func TestSourceErrorNamesTheCause(t *testing.T) {
	trusted, ca := testCertificates(t, "ca", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	_, otherCA := testCertificates(t, "other", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	elsewhere, elsewhereCA := testCertificates(t, "elsewhere", []string{"mongo.example.com"}, nil)
	auth := startEmulator(t, mongoemu.Options{Users: map[string]string{"alice": "s3cret"}})
	secure := startEmulator(t, mongoemu.Options{TLS: trusted})
	misnamed := startEmulator(t, mongoemu.Options{TLS: elsewhere})
	const fast = "&serverSelectionTimeoutMS=1000"
	user := func(userinfo, uri string) string {
		return strings.Replace(uri, "mongodb://", "mongodb://"+userinfo+"@", 1)
	}

	for _, tc := range []struct {
		name string
		uri  string
		read func(context.Context, *mongo.Client) error
		want []string
	}{
		{"wrong password", user("alice:wrongpass", auth.URI()), clusterTime,
			[]string{"capture: read cluster time: MongoDB at " + auth.Addr() + " refused the credentials of user alice (AuthenticationFailed: Authentication failed.): check the user name, password, authSource and authMechanism in source.uri"}},
		{"no user", auth.URI(), watch,
			[]string{"capture: MongoDB at " + auth.Addr() + " requires authentication and source.uri names no user (Unauthorized: Command aggregate requires authentication): put user:password@ in source.uri"}},
		{"TLS against a plain server", auth.URI() + "&tls=true" + fast, clusterTime,
			[]string{"capture: read cluster time: server selection timed out: last error from " + auth.Addr() + ": MongoDB at " + auth.Addr() + " closed the connection during the TLS handshake (EOF): if it does not use TLS, remove tls=true from source.uri"}},
		{"no TLS against a TLS server", "mongodb://" + secure.Addr() + "/?replicaSet=rs0" + fast, clusterTime,
			[]string{"server selection timed out: last error from " + secure.Addr() + ": MongoDB at " + secure.Addr() + " closed the connection during the handshake (EOF): if it requires TLS, add tls=true (and tlsCAFile=<the CA's PEM file>) to source.uri"}},
		{"untrusted CA", secure.URI() + "&tlsCAFile=" + otherCA + fast, clusterTime,
			[]string{"the certificate of MongoDB at " + secure.Addr() + " is not signed by the CA of tlsCAFile in source.uri (x509: certificate signed by unknown authority", "set tlsCAFile to the CA that signed it"}},
		{"wrong server name", misnamed.URI() + "&tlsCAFile=" + elsewhereCA + fast, clusterTime,
			[]string{"the certificate of MongoDB at " + misnamed.Addr() + " is not valid for 127.0.0.1", "name the server in source.uri as its certificate does (mongo.example.com)"}},
		{"nothing listening", "mongodb://127.0.0.1:1/?replicaSet=rs0" + fast, clusterTime,
			[]string{"server selection timed out: last error from 127.0.0.1:1: nothing listens at 127.0.0.1:1 (connection refused): is MongoDB running, and are the hosts in source.uri right?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, err := mongo.Connect(options.Client().ApplyURI(tc.uri))
			if err != nil {
				t.Fatal(err)
			}
			defer client.Disconnect(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = tc.read(ctx, client)
			if err == nil {
				t.Fatal("the read succeeded")
			}
			got := SourceError(tc.uri, fmt.Errorf("capture: %w", err))
			for _, w := range tc.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, got)
				}
			}
			if strings.Contains(got.Error(), "wrongpass") || strings.Contains(got.Error(), "current topology") {
				t.Errorf("a password or the topology's description in:\n%v", got)
			}
			if SourceError(tc.uri, got) != got {
				t.Error("explained twice")
			}
		})
	}
	// A cleared connection pool passes on only the text of the failed
	// login that cleared it.
	cleared := mongo.CommandError{Wrapped: errors.New("connection pool for " + auth.Addr() + " was cleared because another operation failed with: " +
		`connection() error occurred during connection handshake: auth error: sasl conversation error: unable to authenticate using mechanism "SCRAM-SHA-256": (AuthenticationFailed) Authentication failed.`)}
	uri := user("alice:wrongpass", auth.URI())
	if got, want := SourceError(uri, fmt.Errorf("read cluster time: %w", cleared)).Error(),
		"read cluster time: MongoDB at "+auth.Addr()+" refused the credentials of user alice (AuthenticationFailed: Authentication failed.)"; !strings.HasPrefix(got, want) {
		t.Errorf("a cleared pool: want %q, got %q", want, got)
	}
	// And whatever is not the driver's stays as it is.
	plain := fmt.Errorf("capture: %w", context.Canceled)
	if SourceError(auth.URI(), plain) != plain {
		t.Error("a context error was rewritten")
	}
	// A trusted certificate works: the certificates themselves are right.
	client, err := mongo.Connect(options.Client().ApplyURI(secure.URI() + "&tlsCAFile=" + ca))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	if err := clusterTime(context.Background(), client); err != nil {
		t.Fatalf("with the right CA: %v", err)
	}
}

// TestRunNamesRefusedCredentials: capture's own error, the one `run`
// prints, names the refused user, without the password.
func TestRunNamesRefusedCredentials(t *testing.T) {
	f := newFixture(t, "")
	srv := startEmulator(t, mongoemu.Options{Users: map[string]string{"alice": "s3cret"}})
	uri := strings.Replace(srv.URI(), "mongodb://", "mongodb://alice:wrongpass@", 1)
	c, err := New(Config{URI: uri}, f.buf, []*transform.Mapping{f.m}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Run(ctx)
	want := "capture: read cluster time: MongoDB at " + srv.Addr() + " refused the credentials of user alice (AuthenticationFailed: Authentication failed.)"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "wrongpass") {
		t.Fatalf("want %q, got %v", want, err)
	}
}

func clusterTime(ctx context.Context, client *mongo.Client) error {
	_, err := ClusterTime(ctx, client)
	return err
}

func watch(ctx context.Context, client *mongo.Client) error {
	cs, err := client.Database("db").Watch(ctx, mongo.Pipeline{})
	if err == nil {
		cs.Close(ctx)
	}
	return err
}

func startEmulator(t *testing.T, opts mongoemu.Options) *mongoemu.Server {
	t.Helper()
	srv := mongoemu.New(opts)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// testCertificates makes a throwaway CA named name and returns a server
// TLS configuration with a certificate it signed for dnsNames and ips, and
// the CA's PEM file.
func testCertificates(t *testing.T, name string, dnsNames []string, ips []net.IP) (*tls.Config, string) {
	t.Helper()
	ca := testenv.NewCA(t, name)
	return ca.Issue(t, dnsNames, ips...).ServerTLS(nil), ca.File
}

// TestSourceErrorPoolCleared: an operation that found the connection pool
// cleared by a failed login elsewhere gets the driver's unexported error,
// which names the refusal only in its text; it is explained all the same.
func TestSourceErrorPoolCleared(t *testing.T) {
	driverText := `connection pool for 127.0.0.1:27017 was cleared because another operation failed with: connection() error occurred during connection handshake: auth error: sasl conversation error: unable to authenticate using mechanism "SCRAM-SHA-256": (AuthenticationFailed) Authentication failed.`
	err := fmt.Errorf("capture: read cluster time: %w", errors.New(driverText))
	got := SourceError("mongodb://alice:s3cret@127.0.0.1:27017/?replicaSet=rs0", err).Error()
	want := "capture: read cluster time: MongoDB at 127.0.0.1:27017 refused the credentials of user alice (AuthenticationFailed: Authentication failed.)"
	if !strings.HasPrefix(got, want) || strings.Contains(got, "s3cret") {
		t.Fatalf("got %q, want it to start with %q", got, want)
	}
}
