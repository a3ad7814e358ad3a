package sink

import (
	"errors"
	"fmt"
	"time"

	"github.com/mongopg/replicator/transform"
)

// Config tunes the applier. The zero value of a field means its default.
type Config struct {
	// BatchSize bounds the messages fetched and applied in one transaction
	// (default 2000).
	BatchSize int
	// BatchBytes bounds the bytes of one fetch (default 16 MiB). A single
	// message larger than this is still fetched, alone.
	BatchBytes int
	// BatchWait bounds how long a fetch waits to fill a batch (default
	// 200ms); it is the apply side's contribution to idle latency.
	BatchWait time.Duration
	// MaxRetryBackoff caps the exponential backoff between retries of a
	// retryable failure (default 30s). Retries go on until Run's context
	// ends.
	MaxRetryBackoff time.Duration
	// MaxAckPending bounds the messages delivered but not yet acknowledged
	// per collection (default 3 × BatchSize: one batch applying, one
	// decoded and waiting, one being fetched; at least BatchSize).
	MaxAckPending int
	// CopyThreshold is the number of rows (root and child rows together)
	// from which a batch is staged with COPY instead of array parameters
	// (default 500).
	CopyThreshold int
	// TombstoneRetention is how long a delete's tombstone is kept after it
	// was written (tombstones.go). Set it to the buffer's retention
	// (buffer.max_age, buffer.Config.MaxAge): after that no event older
	// than the tombstone can be delivered or replayed. 0 keeps tombstones
	// forever (right for a buffer that keeps messages forever); the
	// applier adds a margin of one hour for clock differences.
	TombstoneRetention time.Duration
	// TombstoneGCInterval is how often tombstones are garbage collected
	// when TombstoneRetention is set (default 10m).
	TombstoneGCInterval time.Duration
	// Stream is the JetStream stream holding the buffer (required).
	Stream string
	// SubjectPrefix is the subject prefix of envelope.Subject (required).
	SubjectPrefix string
}

const (
	defaultBatchSize       = 2000
	defaultBatchBytes      = 16 << 20
	defaultBatchWait       = 200 * time.Millisecond
	defaultMaxRetryBackoff = 30 * time.Second
	defaultCopyThreshold   = 500
	defaultTombstoneGC     = 10 * time.Minute
	// ackWait is how long JetStream waits for an ack before redelivering.
	// Redelivered messages at or below the checkpoint are skipped, so a
	// long retry is harmless; this only limits needless redeliveries.
	ackWait = 2 * time.Minute
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = defaultBatchSize
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = defaultBatchBytes
	}
	if c.BatchWait == 0 {
		c.BatchWait = defaultBatchWait
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = defaultMaxRetryBackoff
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 3 * c.BatchSize
	}
	if c.CopyThreshold == 0 {
		c.CopyThreshold = defaultCopyThreshold
	}
	if c.TombstoneGCInterval == 0 {
		c.TombstoneGCInterval = defaultTombstoneGC
	}
	return c
}

// Validate reports every invalid field of c (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch size %d: must be positive", c.BatchSize))
	}
	if c.BatchBytes < 0 {
		errs = append(errs, fmt.Errorf("batch bytes %d: must be positive", c.BatchBytes))
	}
	if c.BatchWait < 0 || c.MaxRetryBackoff < 0 || c.TombstoneRetention < 0 || c.TombstoneGCInterval < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.MaxAckPending != 0 && c.MaxAckPending < c.BatchSize {
		errs = append(errs, fmt.Errorf("max ack pending %d: must be at least the batch size %d", c.MaxAckPending, c.BatchSize))
	}
	if c.CopyThreshold < 0 {
		errs = append(errs, fmt.Errorf("copy threshold %d: must not be negative", c.CopyThreshold))
	}
	if c.Stream == "" {
		errs = append(errs, errors.New("stream name is required"))
	}
	if c.SubjectPrefix == "" {
		errs = append(errs, errors.New("subject prefix is required"))
	}
	return errors.Join(errs...)
}

// Collection is what the applier needs to know about one configured
// collection. The orchestrator builds it from a compiled transform mapping.
type Collection struct {
	// Namespace is the source "db.collection"; it names the subject, the
	// durable consumer and the checkpoint row.
	Namespace string
	// Tables lists the root table first, then its descendant tables, each
	// after its parent (transform.Mapping.Tables order).
	Tables []transform.TableDef
	// OnError is transform.OnErrorDeadLetter (default, "") or
	// transform.OnErrorHalt.
	OnError string
	// DeadLetterThreshold halts the collection once it has this many
	// unresolved dead letters; 0 never halts.
	DeadLetterThreshold int
}

func (c Collection) halts() bool { return c.OnError == transform.OnErrorHalt }

// Validate checks the namespace, the on_error value and the table list.
func (c Collection) Validate() error {
	if c.Namespace == "" {
		return errors.New("collection: namespace is required")
	}
	switch c.OnError {
	case "", transform.OnErrorDeadLetter, transform.OnErrorHalt:
	default:
		return fmt.Errorf("collection %s: on_error %q: want %s or %s", c.Namespace, c.OnError, transform.OnErrorDeadLetter, transform.OnErrorHalt)
	}
	if c.DeadLetterThreshold < 0 {
		return fmt.Errorf("collection %s: dead_letter_threshold must not be negative", c.Namespace)
	}
	if _, err := compileTables(c.Tables); err != nil {
		return fmt.Errorf("collection %s: %w", c.Namespace, err)
	}
	return nil
}
