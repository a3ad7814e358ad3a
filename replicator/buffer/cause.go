package buffer

import (
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/mongopg/replicator/replicator/redact"
)

// The client keeps retrying a server that refuses it (RetryOnFailedConnect,
// MaxReconnects -1), so a wrong password, an expired credential or a TLS
// mismatch never comes back from Connect: requests just time out. The
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
// none), with credentials removed.
func (b *Buffer) LastError() error { return redact.Error(b.last.get()) }

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
	return fmt.Errorf("%w (not connected to NATS: %v)", err, last)
}
