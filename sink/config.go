package sink

import (
	"errors"
	"fmt"
	"time"

	"github.com/mongopg/replicator/transform"
)

// Config tunes the applier. The zero value of a field means its default.
type Config struct {
	// BatchSize bounds the events fetched and applied in one transaction
	// (default DefaultBatchSize): the messages of one fetch, or fewer when
	// the last fetch's messages were batch messages of several events
	// each (the count follows their average; BatchBytes bounds memory).
	BatchSize int
	// BatchBytes bounds the bytes of one fetch (default DefaultBatchBytes). A single
	// message larger than this is still fetched, alone.
	BatchBytes int
	// BatchWait bounds how long a fetch waits to fill a batch (default
	// DefaultBatchWait); it is the apply side's contribution to idle
	// latency.
	BatchWait time.Duration
	// MaxRetryBackoff caps the exponential backoff between retries of a
	// retryable failure (default DefaultMaxRetryBackoff). Retries go on until Run's context
	// ends.
	MaxRetryBackoff time.Duration
	// MaxAckPending bounds the messages delivered but not yet acknowledged
	// per collection (default DefaultMaxAckPending, or BatchSize when that
	// is larger; at least BatchSize). Memory is bounded by the three
	// batches a collection holds (one applying, one decoded and waiting,
	// one being fetched), not by this window, which only lets JetStream
	// deliver ahead of the acknowledgements.
	MaxAckPending int
	// CopyThreshold is the number of rows (root and child rows together)
	// from which a batch is staged with COPY instead of array parameters
	// (default DefaultCopyThreshold).
	CopyThreshold int
	// TombstoneRetention is how long a delete's tombstone is kept after it
	// was written (tombstones.go). Set it to the buffer's retention
	// (buffer.max_age, buffer.Config.MaxAge): after that no event older
	// than the tombstone can be delivered or replayed. 0 keeps tombstones
	// forever (right for a buffer that keeps messages forever); the
	// applier adds a margin of one hour for clock differences.
	TombstoneRetention time.Duration
	// TombstoneGCInterval is how often tombstones are garbage collected
	// when TombstoneRetention is set (default DefaultTombstoneGCInterval).
	TombstoneGCInterval time.Duration
	// Stream is the JetStream stream holding the buffer (required).
	Stream string
	// SubjectPrefix is the subject prefix of envelope.Subject (required).
	SubjectPrefix string
}

// Defaults used for zero fields. The YAML file's apply section defaults to
// the same values (replicator/config).
const (
	DefaultBatchSize           = 2000
	DefaultBatchBytes          = 8 << 20
	DefaultBatchWait           = 100 * time.Millisecond
	DefaultMaxRetryBackoff     = 30 * time.Second
	DefaultMaxAckPending       = 20000
	DefaultCopyThreshold       = 100
	DefaultTombstoneGCInterval = 10 * time.Minute
)

const (
	// ackWait is how long JetStream waits for an ack before redelivering.
	// Redelivered messages at or below the checkpoint are skipped, so a
	// long retry is harmless; this only limits needless redeliveries.
	ackWait = 2 * time.Minute
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.BatchWait == 0 {
		c.BatchWait = DefaultBatchWait
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = max(DefaultMaxAckPending, c.BatchSize)
	}
	if c.CopyThreshold == 0 {
		c.CopyThreshold = DefaultCopyThreshold
	}
	if c.TombstoneGCInterval == 0 {
		c.TombstoneGCInterval = DefaultTombstoneGCInterval
	}
	return c
}

// Validate reports every invalid field of c (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.BatchSize < 0 {
		errs = append(errs, &fieldError{"BatchSize", fmt.Errorf("batch size %d: must be positive", c.BatchSize)})
	}
	if c.BatchBytes < 0 {
		errs = append(errs, &fieldError{"BatchBytes", fmt.Errorf("batch bytes %d: must be positive", c.BatchBytes)})
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"BatchWait", c.BatchWait}, {"MaxRetryBackoff", c.MaxRetryBackoff}, {"TombstoneRetention", c.TombstoneRetention}, {"TombstoneGCInterval", c.TombstoneGCInterval}} {
		if d.v < 0 {
			errs = append(errs, &fieldError{d.field, fmt.Errorf("duration %s must not be negative", d.v)})
		}
	}
	if c.MaxAckPending != 0 && c.MaxAckPending < c.BatchSize {
		errs = append(errs, &fieldError{"MaxAckPending", fmt.Errorf("max ack pending %d: must be at least the batch size %d", c.MaxAckPending, c.BatchSize)})
	}
	if c.CopyThreshold < 0 {
		errs = append(errs, &fieldError{"CopyThreshold", fmt.Errorf("copy threshold %d: must not be negative", c.CopyThreshold)})
	}
	if c.Stream == "" {
		errs = append(errs, &fieldError{"Stream", errors.New("stream name is required")})
	}
	if c.SubjectPrefix == "" {
		errs = append(errs, &fieldError{"SubjectPrefix", errors.New("subject prefix is required")})
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
	// Partitions is the number of subjects capture splits the collection
	// across (transform.CollectionConfig.Partitions; 0 or 1: one). Each
	// partition is applied as its own unit: a consumer, a checkpoint row
	// named envelope.Partition.Unit, a goroutine and, with a Claimer, a
	// claim.
	Partitions int
	// Filtered: the collection's mapping has a filter
	// (transform.CollectionConfig.Filter). An update that moves a document
	// out of the filter is applied as a delete, and one that moves it back
	// as an upsert of an update event, so a tombstone is removed by any
	// newer upsert, as in a collection without a filter only an insert
	// event's.
	Filtered bool
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
	if c.Partitions < 0 || c.Partitions > transform.MaxPartitions {
		return fmt.Errorf("collection %s: partitions %d must be between 1 and %d", c.Namespace, c.Partitions, transform.MaxPartitions)
	}
	if _, err := compileTables(c.Tables); err != nil {
		return fmt.Errorf("collection %s: %w", c.Namespace, err)
	}
	return nil
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
