package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/redact"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/transform"
)

// TargetConns is the pool size of a process that runs cfg: target.max_conns
// for the applier, plus, when a snapshot or resync copies in the same
// process, one connection per chunk copied at once (snapshotParallelism)
// and one for its bookkeeping. Every command sizes its pool here.
func TargetConns(cfg *config.Config, snapshotParallelism int) int {
	n := cfg.Target.MaxConns
	if snapshotParallelism > 0 {
		n += snapshotParallelism + 1
	}
	return n
}

// OpenTarget connects to the PostgreSQL at url with a pool of at most
// conns connections (0: pgxpool's default) and checks that it answers: the
// one way every command reaches the target.
func OpenTarget(ctx context.Context, url string, conns int) (*pgxpool.Pool, error) {
	return openPool(ctx, url, conns, false)
}

// OpenWriter is OpenTarget for a process that writes cfg's tables (a
// snapshot or resync): its connections carry target.disable_triggers.
func OpenWriter(ctx context.Context, cfg *config.Config, conns int) (*pgxpool.Pool, error) {
	return openPool(ctx, cfg.Target.URL, conns, cfg.Target.DisableTriggers)
}

// replicaRole is the session setting of target.disable_triggers: ordinary
// triggers and foreign-key checks do not fire for the session's writes.
const replicaRole = "session_replication_role"

// writerConfig sets the connection parameters of a writing pool.
func writerConfig(pcfg *pgxpool.Config, disableTriggers bool) {
	if disableTriggers {
		pcfg.ConnConfig.RuntimeParams[replicaRole] = "replica"
	}
}

// triggerHint explains a refused target.disable_triggers.
func triggerHint(err error, disableTriggers bool) error {
	if disableTriggers && err != nil && strings.Contains(err.Error(), replicaRole) {
		return fmt.Errorf("%w (target.disable_triggers needs a superuser, or: GRANT SET ON PARAMETER %s TO <role>)", err, replicaRole)
	}
	return err
}

func openPool(ctx context.Context, url string, conns int, disableTriggers bool) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("target url: %w", redact.Error(err))
	}
	writerConfig(pcfg, disableTriggers)
	if conns > 0 {
		pcfg.MaxConns = int32(conns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("target: %w", redact.Error(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("target: %w", triggerHint(redact.Error(err), disableTriggers))
	}
	return pool, nil
}

// Prepare creates or upgrades the metadata schema and creates the missing
// target tables. Both steps are idempotent. When every mapped table exists
// it runs no DDL at all, so a role without CREATE privileges can run the
// replicator on tables the application's migrations made.
func Prepare(ctx context.Context, pool *pgxpool.Pool, mappings []*transform.Mapping) error {
	if err := schemas.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate metadata schema: %w", err)
	}
	var names []string
	for _, m := range mappings {
		for _, t := range m.Tables() {
			names = append(names, transform.QuoteTable(t.Name))
		}
	}
	var missing int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NULL`, names).Scan(&missing); err != nil {
		return fmt.Errorf("look for missing target tables: %w", err)
	}
	if missing == 0 {
		return nil
	}
	ddl := transform.DDL(mappings)
	if err := transform.CheckDDL(ddl); err != nil {
		return fmt.Errorf("create target tables: refusing generated DDL: %w", err)
	}
	if _, err := pool.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("create target tables: %w", err)
	}
	return nil
}

// openTarget opens the pool of a process running cfg (TargetConns) and,
// unless noMigrate, prepares the target, retrying for a minute while
// PostgreSQL may still be starting.
func openTarget(ctx context.Context, cfg *config.Config, mappings []*transform.Mapping, noMigrate bool, snapshotParallelism int,
	log *slog.Logger) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.Target.URL)
	if err != nil {
		return nil, fmt.Errorf("target url: %w", redact.Error(err))
	}
	pcfg.MaxConns = int32(TargetConns(cfg, snapshotParallelism))
	writerConfig(pcfg, cfg.Target.DisableTriggers)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if noMigrate {
		return pool, nil
	}
	// PostgreSQL may still be starting: retry for a minute, backing off
	// from 250ms to 8s, and stop at once when ctx ends.
	deadline := time.Now().Add(time.Minute)
	wait := 250 * time.Millisecond
	for {
		err = Prepare(ctx, pool, mappings)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		log.Warn("preparing the target failed; retrying", "err", err, "after", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 8*time.Second)
	}
	if err != nil {
		pool.Close()
		return nil, triggerHint(err, cfg.Target.DisableTriggers)
	}
	return pool, nil
}
