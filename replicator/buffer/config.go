package buffer

import (
	"errors"
	"fmt"
	"time"

	"github.com/mongopg/replicator/schemas/envelope"
)

// Config configures the connection to the buffer and the stream it uses.
// The zero value plus a DataDir is a working embedded setup.
type Config struct {
	// URL is the NATS server URL (comma-separated for a cluster). Empty:
	// run an embedded server with file storage under DataDir.
	URL string
	// DataDir holds the embedded server's JetStream files.
	DataDir string
	// Stream is the JetStream stream name (default "REPLICATOR").
	Stream string
	// SubjectPrefix prefixes every collection subject (default "replicator").
	SubjectPrefix string
	// CredentialsFile is a NATS .creds file (external server only).
	CredentialsFile string
	// TLS files for an external server; all optional.
	CAFile, CertFile, KeyFile string
	// MaxAge bounds how long messages stay in the stream, which is also
	// how far back a replay can reach; 0 means the default, 7 days.
	MaxAge time.Duration
	// MaxBytes bounds the stream size; 0 or negative is unlimited. When
	// reached, publishing blocks (discard new) rather than dropping
	// messages not yet applied.
	MaxBytes int64
	// DuplicateWindow is how long the stream remembers message ids for
	// deduplication (default 30s). It needs to cover the time from a
	// publish to its re-publish by a capture restarted after a crash (the
	// torn tail since the last saved position, which is saved every
	// second), which is seconds unless the process stays down. The server
	// keeps every id of the window in memory, about 120 bytes per message
	// (measured with 22-character ids, MsgID), so at 1,000 events/s a 10m
	// window holds some 70 MB and a 30s one 3.6 MB, and a backlog drained
	// at 12,500 events/s fills a 30s window with 45 MB (2m: 180 MB, which
	// with the embedded server pushed the replicator's peak RSS past
	// 300 MB); a re-publish after the window is stored twice and applied
	// twice, which the version guard makes harmless.
	DuplicateWindow time.Duration
	// Replicas is the stream's replication factor (default 1; 3 on a
	// cluster). The embedded server supports only 1.
	Replicas int
	// PublishWindow bounds the asynchronous publishes in flight (default
	// 1024).
	PublishWindow int
	// ListenAddr is the embedded server's client address (default
	// "127.0.0.1:0", a free loopback port). Only loopback hosts are
	// accepted.
	ListenAddr string
}

// Defaults used for zero fields.
const (
	DefaultStream          = "REPLICATOR"
	DefaultSubjectPrefix   = "replicator"
	DefaultMaxAge          = 7 * 24 * time.Hour
	DefaultDuplicateWindow = 30 * time.Second
	DefaultPublishWindow   = 1024
	DefaultReplicas        = 1
	// DefaultDataDir is the embedded server's directory in the YAML file's
	// defaults (buffer.data_dir); Config itself requires one.
	DefaultDataDir = "./replicator-data"
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.PublishWindow == 0 {
		c.PublishWindow = DefaultPublishWindow
	}
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:0"
	}
	return c
}

// Validate reports every problem in c (after WithDefaults).
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" && c.DataDir == "" {
		errs = append(errs, &fieldError{"DataDir", errors.New("buffer: data_dir is required for the embedded server (nats_url is empty)")})
	}
	if c.URL == "" && c.Replicas > 1 {
		errs = append(errs, &fieldError{"Replicas", fmt.Errorf("buffer: replicas %d needs a NATS cluster; the embedded server holds one replica", c.Replicas)})
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, &fieldError{"Replicas", fmt.Errorf("buffer: replicas %d must be 1 to 5", c.Replicas)})
	}
	if err := CheckStream(c.Stream); err != nil {
		errs = append(errs, &fieldError{"Stream", fmt.Errorf("buffer: %w", err)})
	}
	if err := envelope.CheckPrefix(c.SubjectPrefix); err != nil {
		errs = append(errs, &fieldError{"SubjectPrefix", fmt.Errorf("buffer: %w", err)})
	}
	if c.PublishWindow < 1 {
		errs = append(errs, &fieldError{"PublishWindow", fmt.Errorf("buffer: publish_window %d must be positive", c.PublishWindow)})
	}
	if c.DuplicateWindow < time.Second {
		errs = append(errs, &fieldError{"DuplicateWindow", fmt.Errorf("buffer: duplicate_window %s is too short", c.DuplicateWindow)})
	}
	if c.MaxAge > 0 && c.DuplicateWindow > c.MaxAge {
		errs = append(errs, &fieldError{"DuplicateWindow", fmt.Errorf("buffer: duplicate_window %s exceeds max_age %s", c.DuplicateWindow, c.MaxAge)})
	}
	return errors.Join(errs...)
}

// fieldError is a Validate problem of one Config field. replicator/config
// finds the field through ConfigField and reports the problem at that
// field's position in the YAML file.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// ConfigField names the Config field at fault.
func (e *fieldError) ConfigField() string { return e.field }
