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
	pool     *pgxpool.Pool
	applier  *sink.Applier
	claimTTL time.Duration
	log      *slog.Logger
}

func newApply(pool *pgxpool.Pool, cfg *config.Config, mappings []*transform.Mapping,
	reg prometheus.Registerer, log *slog.Logger) (*apply, error) {
	applier, err := sink.New(pool, config.SinkCollections(mappings), cfg.ForSink(), reg, log)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	return &apply{pool: pool, applier: applier, claimTTL: cfg.Apply.ClaimTTL, log: log}, nil
}

// run applies until ctx ends. Every apply process on the buffer joins its
// apply group, so that processes share the collections and partitions
// (one process applies a unit at a time) and take over a dead one's
// (buffer.ApplyGroup).
func (a *apply) run(ctx context.Context, buf *buffer.Buffer) error {
	var g *buffer.ApplyGroup
	for {
		var err error
		if g, err = buf.JoinApplyGroup(ctx, len(a.applier.Units()), a.claimTTL); err == nil {
			break
		}
		a.log.Warn("apply: cannot join the apply group yet, retrying", "err", buf.Cause(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	a.applier.Share(g)
	err := a.applier.Run(ctx, buf.JetStream())
	if ctx.Err() != nil {
		<-g.Left() // before the connection closes (buffer.ApplyGroup.Left)
	}
	return err
}

func (a *apply) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.pool.Ping(ctx); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	return nil
}
