package verify

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/replicator/snapshot"
)

// DefaultMaxDifferences is how many differing rows a table's report lists
// (and how many documents each document list holds) by default.
const DefaultMaxDifferences = 100

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
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.ChunkSize < 0 {
		errs = append(errs, fmt.Errorf("chunk size %d: want a positive number", c.ChunkSize))
	}
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch size %d: want a positive number", c.BatchSize))
	}
	if c.MaxDifferences < 0 {
		errs = append(errs, fmt.Errorf("max differences %d: want a positive number", c.MaxDifferences))
	}
	return errors.Join(errs...)
}

// Deps are the two sides.
type Deps struct {
	Source *mongo.Client
	Target *pgxpool.Pool
}
