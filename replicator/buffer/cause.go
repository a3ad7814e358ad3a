package buffer

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"

	"github.com/nats-io/nats.go"

	"github.com/mongopg/replicator/replicator/redact"
)

// The client keeps retrying a server that refuses it (RetryOnFailedConnect,
// MaxReconnects -1), so a wrong password, an expired credential or a TLS
// mismatch would never come back from Connect: requests would just time
// out. So Connect makes one attempt first and returns a refusal at once,
// named in words with the config key to change (refusal); later, the
// connection's own errors are kept here, and errors of a buffer that is
// not connected name the last of them (Cause), instead of a bare
// "context deadline exceeded" or "connection closed".
type lastError struct {
	mu  sync.Mutex
	err error
}

func (l *lastError) set(err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *lastError) get() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// errorOptions record the connection's errors in b.
func (b *Buffer) errorOptions() []nats.Option {
	return []nats.Option{
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { b.last.set(err) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { b.last.set(err) }),
	}
}

// LastError is the last error the connection to NATS reported (nil when
// none), its cause named when it is a refusal or an unreachable server,
// with credentials removed.
func (b *Buffer) LastError() error {
	err := b.last.get()
	if b.nc != nil && !b.nc.IsConnected() {
		// A reconnect that reached the server and failed in the TLS
		// handshake or the CONNECT leaves its error on the connection and
		// calls no handler.
		if now := b.nc.LastError(); now != nil {
			err = now
		}
	}
	if err == nil {
		return nil
	}
	if refused := b.refusal(b.URL(), err); refused != nil {
		return refused
	}
	if down := unreachable(b.URL(), err); down != nil {
		return down
	}
	return redact.Error(err)
}

// Cause adds to err, when the buffer is not connected, the connection's
// last error: the reason requests go unanswered.
func (b *Buffer) Cause(err error) error {
	if err == nil || b.Connected() {
		return err
	}
	last := b.LastError()
	if last == nil || errors.Is(err, last) {
		return err
	}
	var refused *RefusedError
	var down *unreachableError
	if errors.As(last, &refused) || errors.As(last, &down) {
		return fmt.Errorf("%w (not connected: %v)", err, last)
	}
	return fmt.Errorf("%w (not connected to NATS: %v)", err, last)
}

// unreachableError is a NATS server this client cannot reach, in words.
type unreachableError struct {
	msg string
	err error
}

func (e *unreachableError) Error() string { return e.msg }
func (e *unreachableError) Unwrap() error { return e.err }

// unreachable explains a dial error: nothing listening, or a host name
// that does not resolve; nil for other errors.
func unreachable(rawURL string, err error) error {
	at := redact.String(rawURL)
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return &unreachableError{msg: fmt.Sprintf("nothing listens at %s (connection refused): is NATS running, and is buffer.nats_url right?", at), err: err}
	case errors.As(err, &dns):
		return &unreachableError{msg: fmt.Sprintf("the host of %s cannot be resolved (%v): check buffer.nats_url", at, dns), err: err}
	}
	return nil
}

// RefusedError is a NATS server refusing this client: its credentials, its
// TLS settings or the server's certificate. Its text names the cause and
// the configuration key to change; it wraps the client's error.
type RefusedError struct {
	msg string
	err error
}

func (e *RefusedError) Error() string { return e.msg }
func (e *RefusedError) Unwrap() error { return e.err }

// refusal explains err, an error connecting to the NATS server at rawURL,
// when it is a refusal; nil otherwise (a server not reachable, say).
func (b *Buffer) refusal(rawURL string, err error) error {
	at := "NATS at " + redact.String(rawURL)
	if b.emb != nil {
		at = "the embedded NATS server at " + rawURL
	}
	detail := redact.Error(err)
	cfg := b.cfg
	var (
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		op      *net.OpError
	)
	var msg string
	switch {
	case errors.Is(err, nats.ErrAuthorization) && b.credentialsGiven(rawURL):
		msg = fmt.Sprintf("%s refused the credentials (%v): check the user and password or token in buffer.nats_url (or %s), or buffer.credentials_file",
			at, detail, envNATSURL)
	case errors.Is(err, nats.ErrAuthorization):
		msg = fmt.Sprintf("%s requires credentials (%v): put them in buffer.nats_url (nats://user:password@host:port, or %s) or set buffer.credentials_file",
			at, detail, envNATSURL)
	case errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired):
		msg = fmt.Sprintf("%s no longer accepts the credentials (%v): renew buffer.credentials_file", at, detail)
	case errors.Is(err, nats.ErrSecureConnWanted):
		msg = fmt.Sprintf("%s does not offer TLS, but this client requires it (%s): enable TLS on the server, or remove buffer.tls and use a nats:// URL",
			at, cfg.tlsWanted(rawURL))
	case errors.As(err, &unknown) && cfg.CAFile != "":
		msg = fmt.Sprintf("the certificate of %s is not signed by the CA in buffer.tls.ca_file (%s): set buffer.tls.ca_file to the CA that signed it (%v)",
			at, cfg.CAFile, unknown)
	case errors.As(err, &unknown) && cfg.tlsWanted(rawURL) == "":
		msg = fmt.Sprintf("%s requires TLS, and its certificate is signed by an authority this host does not trust: set buffer.tls.ca_file to the CA that signed it (%v)",
			at, unknown)
	case errors.As(err, &unknown):
		msg = fmt.Sprintf("the certificate of %s is signed by an authority this host does not trust: set buffer.tls.ca_file to the CA that signed it (%v)",
			at, unknown)
	case errors.As(err, &host):
		msg = fmt.Sprintf("the certificate of %s is not valid for %s: put a host name the certificate names (%s) in buffer.nats_url (%v)",
			at, host.Host, certNames(host.Certificate), host)
	case errors.As(err, &invalid):
		msg = fmt.Sprintf("the certificate of %s is not valid (%v)", at, invalid)
	case errors.Is(err, nats.ErrTLS) && strings.Contains(err.Error(), "closed by remote"),
		errors.As(err, &op) && op.Op == "remote error":
		// The server ended the TLS handshake, or the connection right after
		// it: it did not accept this client's certificate, or wanted one.
		if cfg.CertFile == "" {
			msg = fmt.Sprintf("%s closed the connection during TLS setup (%v): it may require a client certificate: set buffer.tls.cert_file and buffer.tls.key_file",
				at, detail)
		} else {
			msg = fmt.Sprintf("%s refused this client's certificate (%v): buffer.tls.cert_file (%s) must be signed by a CA the server trusts",
				at, detail, cfg.CertFile)
		}
	default:
		return nil
	}
	return &RefusedError{msg: msg, err: err}
}

// envNATSURL is the environment variable that overrides buffer.nats_url
// (replicator/config, which this package does not import).
const envNATSURL = "REPLICATOR_BUFFER_NATS_URL"

// credentialsGiven reports whether this client presented credentials.
func (b *Buffer) credentialsGiven(rawURL string) bool {
	if b.emb != nil || b.cfg.CredentialsFile != "" {
		return true
	}
	for _, one := range strings.Split(rawURL, ",") {
		if u, err := url.Parse(strings.TrimSpace(one)); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// tlsWanted says why this client insists on TLS: the TLS keys set, or a
// tls:// URL; "" when it does not.
func (c Config) tlsWanted(rawURL string) string {
	var set []string
	for _, k := range []struct{ key, v string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
		if k.v != "" {
			set = append(set, "buffer.tls."+k.key)
		}
	}
	switch {
	case len(set) > 0:
		return strings.Join(set, ", ") + " set"
	case strings.HasPrefix(strings.TrimSpace(rawURL), "tls://"):
		return "the URL is tls://"
	}
	return ""
}

func certNames(c *x509.Certificate) string {
	if c == nil {
		return "see the certificate"
	}
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
