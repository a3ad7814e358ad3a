package capture

import (
	"errors"
	"fmt"
	"time"
)

// Config configures one source's capture.
type Config struct {
	// Source names the source in saved positions and leases (default
	// "default"). Two capture processes with the same Source and buffer
	// never run at once.
	Source string
	// URI is the MongoDB connection string.
	URI string
	// BatchSize is the change stream's batch size (default 1000).
	BatchSize int
	// MaxAwait is the getMore await time (default 1s); it also paces idle
	// heartbeats.
	MaxAwait time.Duration
	// HeartbeatInterval is how often each collection's subject gets a
	// heartbeat (default 1s).
	HeartbeatInterval time.Duration
	// SaveInterval is how often the durable position is saved (default 1s).
	SaveInterval time.Duration
	// ShutdownTimeout bounds the drain of in-flight publishes on shutdown
	// (default 30s).
	ShutdownTimeout time.Duration
	// LeaseTTL is how long a capture lease outlives its holder (default 15s).
	LeaseTTL time.Duration
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Source == "" {
		c.Source = "default"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.MaxAwait == 0 {
		c.MaxAwait = time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.SaveInterval == 0 {
		c.SaveInterval = time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 15 * time.Second
	}
	return c
}

// Validate reports every problem in c.
func (c Config) Validate() error {
	var errs []error
	if c.URI == "" {
		errs = append(errs, errors.New("capture: source uri is required"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("capture: batch_size %d must be positive", c.BatchSize))
	}
	if c.HeartbeatInterval <= 0 || c.MaxAwait <= 0 {
		errs = append(errs, errors.New("capture: heartbeat_interval and max_await must be positive"))
	}
	return errors.Join(errs...)
}
