package capture

import (
	"errors"
	"fmt"
	"time"
)

// Config configures one source's capture.
type Config struct {
	// Source names the source in saved positions and leases (default
	// DefaultSource). Two capture processes with the same Source and buffer
	// never run at once.
	Source string
	// URI is the MongoDB connection string.
	URI string
	// BatchSize is the change stream's batch size (default DefaultBatchSize).
	BatchSize int
	// MaxAwait is the getMore await time (default DefaultMaxAwait); it also paces idle
	// heartbeats.
	MaxAwait time.Duration
	// HeartbeatInterval is how often each collection's subject gets a
	// heartbeat (default DefaultHeartbeatInterval).
	HeartbeatInterval time.Duration
	// SaveInterval is how often the durable position is saved (default 1s).
	SaveInterval time.Duration
	// ShutdownTimeout bounds a stop: the drain of in-flight publishes, then
	// the last save of the position, which keeps a fifth of it, at most 5s
	// (default 30s).
	ShutdownTimeout time.Duration
	// LeaseTTL is how long a capture lease outlives its holder (default 15s).
	LeaseTTL time.Duration
	// HistoryLostRetries bounds the automatic recoveries from lost
	// history (on_history_lost: resync) that may follow each other without
	// the stream running HistoryLostQuiet in between; the next loss stops
	// capture (default DefaultHistoryLostRetries).
	HistoryLostRetries int
	// HistoryLostBackoff is the wait before the second recovery of such a
	// series, doubled before each further one (default
	// DefaultHistoryLostBackoff).
	HistoryLostBackoff time.Duration
	// HistoryLostQuiet is how long the stream must run after a recovery for
	// the next loss to start a new series (default DefaultHistoryLostQuiet).
	HistoryLostQuiet time.Duration
}

// Defaults used for zero fields.
const (
	DefaultSource            = "default"
	DefaultBatchSize         = 1000
	DefaultMaxAwait          = time.Second
	DefaultHeartbeatInterval = time.Second
	DefaultSaveInterval      = time.Second
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultLeaseTTL          = 15 * time.Second

	DefaultHistoryLostRetries = 5
	DefaultHistoryLostBackoff = time.Second
	DefaultHistoryLostQuiet   = 10 * time.Minute
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxAwait == 0 {
		c.MaxAwait = DefaultMaxAwait
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.SaveInterval == 0 {
		c.SaveInterval = DefaultSaveInterval
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.HistoryLostRetries == 0 {
		c.HistoryLostRetries = DefaultHistoryLostRetries
	}
	if c.HistoryLostBackoff == 0 {
		c.HistoryLostBackoff = DefaultHistoryLostBackoff
	}
	if c.HistoryLostQuiet == 0 {
		c.HistoryLostQuiet = DefaultHistoryLostQuiet
	}
	return c
}

// Validate reports every problem in c.
func (c Config) Validate() error {
	var errs []error
	if c.URI == "" {
		errs = append(errs, &fieldError{"URI", errors.New("capture: source uri is required")})
	}
	if c.BatchSize < 1 {
		errs = append(errs, &fieldError{"BatchSize", fmt.Errorf("capture: batch_size %d must be positive", c.BatchSize)})
	}
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, &fieldError{"HeartbeatInterval", errors.New("capture: heartbeat_interval must be positive")})
	}
	if c.MaxAwait <= 0 {
		errs = append(errs, &fieldError{"MaxAwait", errors.New("capture: max_await must be positive")})
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
