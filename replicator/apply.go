package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// apply is the PostgreSQL half: a pool and the sink's applier.
type apply struct {
	pool    *pgxpool.Pool
	applier *sink.Applier
}

// SinkConfig maps the file's apply and buffer sections to sink's Config.
func SinkConfig(c *config.Config) sink.Config {
	return sink.Config{
		BatchSize:       c.Apply.BatchSize,
		BatchBytes:      int(c.Apply.BatchBytes),
		BatchWait:       c.Apply.BatchWait,
		MaxRetryBackoff: c.Apply.MaxRetryBackoff,
		MaxAckPending:   c.Apply.MaxAckPending,
		CopyThreshold:   c.Apply.CopyThreshold,
		Stream:          c.Buffer.Stream,
		SubjectPrefix:   c.Buffer.SubjectPrefix,
		// A tombstone is needed only while an older event for its key can
		// still be replayed from the buffer.
		TombstoneRetention: c.Buffer.MaxAge,
	}
}

// SinkCollections describes the mapped collections to the sink.
func SinkCollections(mappings []*transform.Mapping) []sink.Collection {
	out := make([]sink.Collection, 0, len(mappings))
	for _, m := range mappings {
		cc := m.Config()
		out = append(out, sink.Collection{
			Namespace:           m.Namespace(),
			Tables:              m.Tables(),
			OnError:             cc.OnError,
			DeadLetterThreshold: cc.DeadLetterThreshold,
		})
	}
	return out
}

// Prepare creates or upgrades the metadata schema and creates the missing
// target tables. Both steps are idempotent.
func Prepare(ctx context.Context, pool *pgxpool.Pool, mappings []*transform.Mapping) error {
	if err := schemas.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate metadata schema: %w", err)
	}
	if _, err := pool.Exec(ctx, transform.DDL(mappings)); err != nil {
		return fmt.Errorf("create target tables: %w", err)
	}
	return nil
}

// openTarget connects to PostgreSQL with target.max_conns plus extra
// connections (the snapshot's), and unless noMigrate prepares the target.
func openTarget(ctx context.Context, cfg *config.Config, mappings []*transform.Mapping, noMigrate bool, extra int,
	log *slog.Logger) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.Target.URL)
	if err != nil {
		return nil, fmt.Errorf("target url: %w", err)
	}
	pcfg.MaxConns = int32(cfg.Target.MaxConns + extra)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if !noMigrate {
		// PostgreSQL may still be starting: retry for a while.
		deadline := time.Now().Add(time.Minute)
		for {
			err = Prepare(ctx, pool, mappings)
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			log.Warn("preparing the target failed; retrying", "err", err)
			time.Sleep(time.Second)
		}
		if err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

func newApply(pool *pgxpool.Pool, cfg *config.Config, mappings []*transform.Mapping,
	reg prometheus.Registerer, log *slog.Logger) (*apply, error) {
	applier, err := sink.New(pool, SinkCollections(mappings), SinkConfig(cfg), reg, log)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	return &apply{pool: pool, applier: applier}, nil
}

func (a *apply) run(ctx context.Context, buf *buffer.Buffer) error {
	return a.applier.Run(ctx, buf.JetStream())
}

func (a *apply) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.pool.Ping(ctx); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	return nil
}
