package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/replicator/redact"
	"github.com/mongopg/replicator/schemas/envelope"
)

// Buffer is an open connection to the buffer's JetStream, with the stream
// and the position bucket provisioned.
type Buffer struct {
	cfg Config
	log *slog.Logger
	emb *embedded
	nc  *nats.Conn
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	// last is the connection's last error (cause.go).
	last lastError

	// mu guards live: the publishers' reply routers, told when the
	// connection drops (replies.go, connectionLost).
	mu   sync.Mutex
	live map[*replies]struct{}
}

// Open connects to (or starts) the buffer described by cfg and provisions
// its stream and position bucket. Close releases it.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Buffer, error) {
	b, err := Connect(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if err := b.provisionPatiently(ctx); err != nil {
		err = b.Cause(err)
		b.Close()
		return nil, err
	}
	return b, nil
}

// provisionWait bounds how long Open waits for a JetStream cluster that
// cannot place the stream or bucket yet.
const provisionWait = 30 * time.Second

// provisionPatiently provisions, retrying while a JetStream cluster cannot
// place replicas yet (a node just started or restarting: "no suitable
// peers for placement") or does not answer in time (a leader election),
// for up to provisionWait; any other error returns at once.
func (b *Buffer) provisionPatiently(ctx context.Context) error {
	deadline := time.Now().Add(provisionWait)
	for attempt := 1; ; attempt++ {
		err := b.provision(ctx)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) || !clusterSettling(err) {
			return err
		}
		if attempt == 1 {
			b.log.Warn("buffer: the JetStream cluster cannot provision the stream yet; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// clusterSettling reports a provisioning error a JetStream cluster gives
// while its peers come up or elect leaders.
func clusterSettling(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		const noSuitablePeers = 10005 // "no suitable peers for placement"
		return apiErr.ErrorCode == noSuitablePeers
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

// Connect connects to (or starts) the buffer described by cfg without
// creating or changing its stream: the one connect path of every command,
// with cfg's credentials and TLS files. Operator commands that only read
// the buffer or move an applier's consumer use it, so they never rewrite a
// stream's settings; Positions needs Open.
func Connect(ctx context.Context, cfg Config, log *slog.Logger) (*Buffer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Buffer{cfg: cfg, log: log}
	url := cfg.URL
	opts := []nats.Option{
		nats.Name("replicator"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.PingInterval(5 * time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("buffer connection lost", "err", redact.Error(err))
			}
			b.connectionLost()
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("buffer connection restored", "url", redact.String(nc.ConnectedUrlRedacted()))
		}),
	}
	opts = append(opts, b.errorOptions()...)
	if url == "" {
		emb, err := startEmbedded(cfg.DataDir, cfg.ListenAddr, log)
		if err != nil {
			return nil, err
		}
		b.emb, url = emb, emb.url
		opts = append(opts, nats.Token(emb.token))
		if emb.srv != nil {
			opts = append(opts, nats.InProcessServer(emb.srv))
		}
	} else {
		if cfg.CredentialsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
		}
		if cfg.CAFile != "" {
			opts = append(opts, nats.RootCAs(cfg.CAFile))
		}
		if cfg.CertFile != "" || cfg.KeyFile != "" {
			opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
		}
	}
	// One attempt first, so that a server that refuses this client (its
	// credentials, TLS or certificate) is named at once; a server not
	// reachable yet is then waited for, retrying in the background.
	nc, err := nats.Connect(url, append(opts, nats.RetryOnFailedConnect(false))...)
	if err != nil {
		if refused := b.refusal(url, err); refused != nil {
			b.Close()
			return nil, fmt.Errorf("buffer: %w", refused)
		}
		nc, err = nats.Connect(url, opts...)
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("buffer: connect %s: %w", redact.String(url), redact.Error(err))
	}
	b.nc = nc
	// Publishers send asynchronously on their own (replies.go); the
	// JetStream client serves the synchronous retries, the applier's
	// consumers and the KV bucket.
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("buffer: %w", err)
	}
	b.js = js
	return b, nil
}

// Config returns the effective configuration (defaults applied).
func (b *Buffer) Config() Config { return b.cfg }

// JetStream returns the JetStream client, for the applier's consumers.
func (b *Buffer) JetStream() jetstream.JetStream { return b.js }

// Subject returns the subject of one source namespace.
func (b *Buffer) Subject(namespace string) string {
	return envelope.Subject(b.cfg.SubjectPrefix, namespace)
}

// PartitionSubject returns the subject of one partition of a namespace
// (Subject when the collection is not partitioned).
func (b *Buffer) PartitionSubject(namespace string, p envelope.Partition) string {
	return envelope.PartitionSubject(b.cfg.SubjectPrefix, namespace, p)
}

// UnitSubject returns the subject of an apply unit: a namespace, or a
// partition's unit name (envelope.Partition.Unit).
func (b *Buffer) UnitSubject(unit string) string {
	return envelope.UnitSubject(b.cfg.SubjectPrefix, unit)
}

// URL is the client URL of the NATS server in use, as configured: it may
// hold credentials, so print it through redact.String. The embedded
// server's URL never holds its token.
func (b *Buffer) URL() string {
	if b.emb != nil {
		return b.emb.url
	}
	return b.cfg.URL
}

// Connected reports whether the client is connected to NATS right now.
func (b *Buffer) Connected() bool { return b.nc != nil && b.nc.IsConnected() }

// Close drains nothing: callers flush their publishers first. It closes
// the connection and stops the embedded server, whose files remain.
func (b *Buffer) Close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.emb != nil {
		b.emb.close()
	}
}

// MaxPayload is the largest message the server accepts, in bytes.
func (b *Buffer) MaxPayload() int64 {
	if b.nc == nil {
		return 0
	}
	return b.nc.MaxPayload()
}
