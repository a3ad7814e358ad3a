package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/transform"
)

// Config tunes one snapshot or resync.
type Config struct {
	// Parallelism bounds the chunks copied at once, over all collections:
	// open source cursors and target transactions (default
	// DefaultParallelism).
	Parallelism int
	// ChunkSize is the planned documents per chunk (default DefaultChunkSize).
	ChunkSize int
	// BatchSize is the documents per COPY batch inside a chunk's
	// transaction (default DefaultBatchSize); it bounds memory per chunk.
	BatchSize int
	// Collections restricts the run to these source namespaces; empty
	// means every mapping in Deps.
	Collections []string
	// Progress receives progress output: bars redrawn in place when
	// Terminal is set, nothing otherwise (progress then goes to the log
	// every ProgressInterval).
	Progress io.Writer
	Terminal bool
	// ProgressInterval is the period of progress log lines and terminal
	// redraws (default 10s for logs; terminals redraw every 250ms).
	ProgressInterval time.Duration
	// OnT0 is called once the run's T0 is recorded and before any document
	// is read. The capture side opens its change stream at T0 here (for an
	// initial snapshot) or moves its position to T0 (recovery with
	// resync --all). An error stops the run before it copies anything.
	OnT0 func(ctx context.Context, t0 transform.ClusterTime) error
	// T0, when set, is the version of new runs instead of the source's
	// current cluster time: the capture side's start time on a first start.
	// An unfinished run older than T0 is then started over, since the
	// buffer holds no changes between its T0 and this one.
	T0 transform.ClusterTime
	// NotBefore, when set, makes an unfinished run whose T0 is before it
	// start over at a new T0 instead of resuming: a recovery from lost
	// history sets it to OplogFloor, since capture restarts at the run's
	// T0 and a T0 that is no longer in the oplog would lose the history
	// again at once.
	NotBefore transform.ClusterTime
	// MaxRetries is how often one chunk is retried after a retryable
	// failure before the run fails (default DefaultMaxRetries).
	MaxRetries int
	// ForeignKeyWait bounds how long chunks that failed on a foreign key
	// (their referenced rows missing, maybe only because the referencing
	// collection was copied first) are retried, with backoff, after every
	// other chunk of the run has been copied; then the documents still
	// failing are dead-lettered (or halt their collection) like any other
	// violation (default DefaultForeignKeyWait; snapshot.go,
	// retryDeferred).
	ForeignKeyWait time.Duration
}

// Defaults used for zero fields.
const (
	DefaultParallelism = 4
	DefaultChunkSize   = 10000
	DefaultBatchSize   = 2000
	DefaultMaxRetries  = 8
	// DefaultForeignKeyWait is the default ForeignKeyWait: long enough
	// for streaming to apply referenced rows written since T0.
	DefaultForeignKeyWait = time.Minute
	// MaxParallelism bounds Parallelism.
	MaxParallelism = 256
)

func (c *Config) applyDefaults() {
	if c.Parallelism <= 0 {
		c.Parallelism = DefaultParallelism
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 10 * time.Second
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.ForeignKeyWait <= 0 {
		c.ForeignKeyWait = DefaultForeignKeyWait
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Parallelism < 0 || c.Parallelism > MaxParallelism {
		errs = append(errs, &fieldError{"Parallelism", fmt.Errorf("parallelism %d: want 1..%d", c.Parallelism, MaxParallelism)})
	}
	if c.ChunkSize < 0 {
		errs = append(errs, &fieldError{"ChunkSize", fmt.Errorf("chunk_size %d: want > 0", c.ChunkSize)})
	}
	if c.BatchSize < 0 {
		errs = append(errs, &fieldError{"BatchSize", fmt.Errorf("batch size %d: want > 0", c.BatchSize)})
	}
	return errors.Join(errs...)
}

// Deps are the connections and mappings a run works with.
type Deps struct {
	// Source is connected to the MongoDB deployment.
	Source *mongo.Client
	// Target is the PostgreSQL pool; it needs Parallelism connections for
	// the run, beside what the streaming apply uses.
	Target *pgxpool.Pool
	// Mappings are the compiled collection mappings.
	Mappings []*transform.Mapping
	// Metrics receives the snapshot metrics; nil records none.
	Metrics *Metrics
	// Logger receives decisions and rare events; nil discards them.
	Logger *slog.Logger
}

func (d *Deps) check() error {
	if d.Source == nil || d.Target == nil {
		return errors.New("snapshot: source and target connections are required")
	}
	if len(d.Mappings) == 0 {
		return errors.New("snapshot: no collections configured")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
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
