package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/transform"
)

// DefaultMaxDifferences is how many differing rows a table's report lists
// (and how many documents each document list holds) by default.
const DefaultMaxDifferences = 100

// Defaults of Config.
const (
	DefaultWorkers        = 2
	DefaultRounds         = 3
	DefaultCatchUpTimeout = 2 * time.Minute
)

// Config tunes one verification.
type Config struct {
	// ChunkSize is the planned documents per _id range (default
	// snapshot.DefaultChunkSize): the ranges a snapshot would copy.
	ChunkSize int
	// BatchSize is the most documents whose rows are held in memory before
	// they are copied into PostgreSQL (default snapshot.DefaultBatchSize).
	BatchSize int
	// MaxDifferences bounds the differing rows listed per table and the
	// documents listed per document list (default DefaultMaxDifferences);
	// the counts are always complete.
	MaxDifferences int
	// Workers is how many ranges are read from MongoDB and transformed at
	// once (default DefaultWorkers).
	Workers int
	// Rate, when above 0, caps the documents read per second (continuous
	// verification inside run keeps its load on the source bounded).
	Rate float64
	// Rounds is how many times differences are re-checked after the
	// applier has caught up past the time they were read (default
	// DefaultRounds; 0 after defaults means no re-check is possible, so
	// set NoRecheck to turn it off).
	Rounds int
	// NoRecheck reports the first pass's differences as they are: for a
	// target no replicator writes to.
	NoRecheck bool
	// Sample, when above 0, reads only the Sample newest documents (by
	// _id) of every tenant the root table holds in PostgreSQL (of the
	// collection without a tenant path), and compares only their rows: a
	// quick check, which does not find rows PostgreSQL lacks of unsampled
	// documents.
	Sample int
	// Repair re-copies the documents whose rows still differ after the
	// comparisons, and deletes root rows no document gives, through the
	// guarded write of a resync (Deps.Writer); the report is the
	// comparison's, with Report.Repair saying what was written. Verify
	// again to see the result.
	Repair bool
	// CatchUpTimeout bounds each wait for the applier to catch up past a
	// read (default DefaultCatchUpTimeout).
	CatchUpTimeout time.Duration
	// Progress, when set, is called with the documents read so far: after
	// every batch, and with done once the collection has been read.
	Progress func(collection string, documents int64, done bool)
}

func (c *Config) applyDefaults() {
	if c.ChunkSize == 0 {
		c.ChunkSize = snapshot.DefaultChunkSize
	}
	if c.BatchSize == 0 {
		c.BatchSize = snapshot.DefaultBatchSize
	}
	if c.MaxDifferences == 0 {
		c.MaxDifferences = DefaultMaxDifferences
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Rounds == 0 {
		c.Rounds = DefaultRounds
	}
	if c.CatchUpTimeout == 0 {
		c.CatchUpTimeout = DefaultCatchUpTimeout
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	for _, n := range []struct {
		what string
		v    int
	}{{"chunk size", c.ChunkSize}, {"batch size", c.BatchSize}, {"max differences", c.MaxDifferences},
		{"workers", c.Workers}, {"rounds", c.Rounds}, {"sample", c.Sample}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: want a positive number", n.what, n.v))
		}
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %g: want a positive number of documents per second, or 0 for no limit", c.Rate))
	}
	if c.CatchUpTimeout < 0 {
		errs = append(errs, fmt.Errorf("catch-up timeout %s: want a positive duration", c.CatchUpTimeout))
	}
	return errors.Join(errs...)
}

// Deps are the two sides, and how to tell that the applier has caught up.
type Deps struct {
	Source *mongo.Client
	Target *pgxpool.Pool
	// Applied, when set, waits until every change of collection ns up to
	// cluster time ct is applied to the target (replicator.AppliedWaiter
	// reads capture's saved position, the apply consumer and the apply
	// checkpoint). When nil, the apply checkpoint's cluster time alone is
	// waited for; a heartbeat can carry it past an event whose publish to
	// the buffer is being retried, so a difference re-checked in that
	// moment may be reported though it is only late.
	Applied AppliedFunc
	// Writer is the pool Config.Repair writes with (the one the
	// replicator's writers use: replicator.OpenWriter, so that
	// target.disable_triggers holds); Target when nil.
	Writer *pgxpool.Pool
}

// AppliedFunc waits until every change of collection ns up to cluster
// time ct is in the target, for at most timeout. It returns an error
// wrapping ErrNotApplying when no replicator is applying ns or the
// timeout passed; other errors end the verification.
type AppliedFunc func(ctx context.Context, ns string, ct transform.ClusterTime, timeout time.Duration) error
