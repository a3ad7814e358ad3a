package capture

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/mongopg/replicator/replicator/redact"
)

// The driver reports a source that refuses this client in its own terms:
// "(AuthenticationFailed) Authentication failed." inside a connection
// error, or, once its monitor has marked the server unknown, a server
// selection timeout whose last error hides in a description of the whole
// topology. SourceError puts the cause first, in words, with the part of
// source.uri to change.

// SourceError returns err, an error from talking to the MongoDB source at
// uri, with the driver's text replaced by its cause: refused credentials,
// a missing privilege, a TLS mismatch or an unreachable server, and what to
// change in source.uri. The context callers added before the driver's text
// stays; errors.Is and errors.As still see the driver's error. Other
// errors, and errors already explained, come back unchanged. The result
// holds no credentials.
func SourceError(uri string, err error) error {
	var done *sourceError
	if err == nil || errors.As(err, &done) {
		return err
	}
	d := driverError(err)
	if d == nil {
		return err
	}
	u, perr := parseSource(uri)
	if perr != nil {
		return err
	}
	cause, ok := u.explain(d)
	if !ok {
		return err
	}
	msg := err.Error()
	if prefix, found := strings.CutSuffix(msg, d.Error()); found {
		msg = prefix + cause
	} else {
		msg += ": " + cause
	}
	return &sourceError{msg: redact.String(msg), err: err}
}

type sourceError struct {
	msg string
	err error
}

func (e *sourceError) Error() string { return e.msg }
func (e *sourceError) Unwrap() error { return e.err }

// driverError returns the outermost error of err's chain that the driver
// made, nil when there is none.
func driverError(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e.(type) {
		case mongo.CommandError, mongo.WriteException, mongo.BulkWriteException,
			topology.ServerSelectionError, topology.ConnectionError, driver.Error:
			return e
		}
		// An operation that found its pool cleared by another one's
		// failure (a failed login) gets the driver's unexported error for
		// it, which names that failure only in its text (serverError).
		if strings.HasPrefix(e.Error(), "connection pool for ") {
			return e
		}
	}
	return nil
}

// sourceURI is what SourceError needs to know of source.uri.
type sourceURI struct {
	hosts   string
	user    string
	tls, ca bool // tls=true; tlsCAFile given
}

func parseSource(uri string) (sourceURI, error) {
	o := options.Client().ApplyURI(uri)
	if err := o.Validate(); err != nil {
		return sourceURI{}, err
	}
	u := sourceURI{hosts: strings.Join(o.Hosts, ","), tls: o.TLSConfig != nil}
	if u.tls {
		u.ca = o.TLSConfig.RootCAs != nil
	}
	if o.Auth != nil {
		u.user = o.Auth.Username
	}
	return u, nil
}

// explain names the cause of d, a driver error; false when it is not one
// SourceError knows.
func (u sourceURI) explain(d error) (string, bool) {
	var sel topology.ServerSelectionError
	if !errors.As(d, &sel) {
		return u.refusal(u.hosts, d)
	}
	// The monitor's last error of each server is why none was selected.
	var last []string
	for _, s := range sel.Desc.Servers {
		if s.LastError == nil {
			continue
		}
		cause, ok := u.refusal(s.Addr.String(), s.LastError)
		if !ok {
			cause = u.handshake(s.Addr.String(), s.LastError)
		}
		last = append(last, fmt.Sprintf("last error from %s: %s", s.Addr, cause))
	}
	if len(last) == 0 {
		return fmt.Sprintf("server selection timed out: no server of source.uri (%s) is usable: %s", u.hosts, sel.Desc), true
	}
	return "server selection timed out: " + strings.Join(last, "; "), true
}

// refusal names why the server at addr refused this client: credentials,
// privileges or its certificate.
func (u sourceURI) refusal(addr string, err error) (string, bool) {
	code, name, msg, ok := serverError(err)
	switch {
	case ok && code == codeAuthenticationFailed && u.user != "":
		return fmt.Sprintf("MongoDB at %s refused the credentials of user %s (%s: %s): check the user name, password, authSource and authMechanism in source.uri",
			addr, u.user, name, msg), true
	case ok && code == codeAuthenticationFailed:
		return fmt.Sprintf("MongoDB at %s refused to authenticate this client (%s: %s): check the credentials in source.uri", addr, name, msg), true
	case ok && code == codeUnauthorized && u.user == "":
		return fmt.Sprintf("MongoDB at %s requires authentication and source.uri names no user (%s: %s): put user:password@ in source.uri",
			addr, name, msg), true
	case ok && code == codeUnauthorized:
		return fmt.Sprintf("user %s lacks a privilege on MongoDB at %s (%s: %s): grant it read (find and changeStream) on the configured databases",
			u.user, addr, name, msg), true
	case ok:
		return "", false
	}
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown) && u.ca:
		return fmt.Sprintf("the certificate of MongoDB at %s is not signed by the CA of tlsCAFile in source.uri (%v): set tlsCAFile to the CA that signed it",
			addr, unknown), true
	case errors.As(err, &unknown):
		return fmt.Sprintf("the certificate of MongoDB at %s is signed by an authority this host does not trust (%v): add tlsCAFile=<the CA's PEM file> to source.uri",
			addr, unknown), true
	case errors.As(err, &host):
		return fmt.Sprintf("the certificate of MongoDB at %s is not valid for %s (%v): name the server in source.uri as its certificate does (%s)",
			addr, host.Host, host, certNames(host.Certificate)), true
	case errors.As(err, &invalid):
		return fmt.Sprintf("the certificate of MongoDB at %s is not valid (%v)", addr, invalid), true
	}
	return "", false
}

// handshake explains an error of the connection handshake that is not a
// refusal: a closed connection (a TLS mismatch, one way or the other) or
// nothing listening. Otherwise it is the error's own text.
func (u sourceURI) handshake(addr string, err error) string {
	var dns *net.DNSError
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		if u.tls {
			return fmt.Sprintf("MongoDB at %s closed the connection during the TLS handshake (%v): if it does not use TLS, remove tls=true from source.uri", addr, innermost(err))
		}
		return fmt.Sprintf("MongoDB at %s closed the connection during the handshake (%v): if it requires TLS, add tls=true (and tlsCAFile=<the CA's PEM file>) to source.uri", addr, innermost(err))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens at %s (connection refused): is MongoDB running, and are the hosts in source.uri right?", addr)
	case errors.As(err, &dns):
		return fmt.Sprintf("the host of %s cannot be resolved (%v): check the hosts in source.uri", addr, dns)
	}
	return err.Error()
}

// serverError returns the code, code name and message of a server's
// error in err's chain.
func serverError(err error) (code int32, name, msg string, ok bool) {
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code != 0 {
		return ce.Code, ce.Name, ce.Message, true
	}
	var de driver.Error
	if errors.As(err, &de) && de.Code != 0 {
		return de.Code, de.Name, de.Message, true
	}
	// An operation that found its connection pool cleared by a failed
	// login gets only the text of that failure (the driver's error for a
	// cleared pool does not unwrap).
	const failed = "(AuthenticationFailed) "
	if _, msg, found := strings.Cut(err.Error(), failed); found {
		return codeAuthenticationFailed, strings.Trim(failed, "() "), msg, true
	}
	return 0, "", "", false
}

// innermost is the last error of err's chain: "EOF" rather than the
// driver's account of where it met it.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func certNames(c *x509.Certificate) string {
	if c == nil {
		return "unknown names"
	}
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	if len(names) == 0 {
		return "no names"
	}
	return strings.Join(names, ", ")
}
