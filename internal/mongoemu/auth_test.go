package mongoemu_test

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
	"github.com/mongopg/replicator/internal/testenv"
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
	serverTLS, caFile := testPKI(t, "ca")
	_, otherCA := testPKI(t, "other")
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

// testPKI makes a CA named name and returns a server TLS configuration
// with a certificate it signed for 127.0.0.1 and localhost, and the CA's
// PEM file.
func testPKI(t *testing.T, name string) (*tls.Config, string) {
	t.Helper()
	ca := testenv.NewCA(t, name)
	return ca.Issue(t, []string{"localhost"}, net.IPv4(127, 0, 0, 1)).ServerTLS(nil), ca.File
}
