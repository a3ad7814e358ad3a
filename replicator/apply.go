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
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// apply is the PostgreSQL half: a pool and the sink's applier.
type apply struct {
	pool    *pgxpool.Pool
	applier *sink.Applier
}

func newApply(pool *pgxpool.Pool, cfg *config.Config, mappings []*transform.Mapping,
	reg prometheus.Registerer, log *slog.Logger) (*apply, error) {
	applier, err := sink.New(pool, config.SinkCollections(mappings), cfg.ForSink(), reg, log)
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
