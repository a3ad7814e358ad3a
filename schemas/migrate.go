package schemas

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Schema is the PostgreSQL schema holding the replicator's metadata.
const Schema = "replicator"

// lockKey is the advisory lock Migrate holds while it upgrades
// (hashtext('replicator.migrate') would do as well; a constant is clearer).
const lockKey int64 = 0x7265706c6d696772 // "replmigr"

// Migration is one embedded, numbered SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, name, v)
		}
		seen[v] = name
		b, err := migrationFiles.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: rest, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Beginner starts a transaction; *pgxpool.Pool and *pgx.Conn satisfy it.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Migrate creates or upgrades the metadata schema to the newest embedded
// version. On a schema that is already current it only reads
// replicator.schema_migrations (USAGE on the schema, SELECT on that table):
// no statement needs CREATE, so a role that may not create anything can run
// it. Creating the schema needs CREATE on the database, and applying a
// migration CREATE on the schema (and ownership of the tables it alters).
func Migrate(ctx context.Context, db Beginner) error {
	_, err := Upgrade(ctx, db)
	return err
}

// Upgrade is Migrate that also returns the versions it applied (none when
// the schema was already current).
func Upgrade(ctx context.Context, db Beginner) ([]int, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Serialises concurrent runners; released at COMMIT or ROLLBACK.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	if err := createVersionTable(ctx, tx); err != nil {
		return nil, err
	}
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return nil, err
	}
	known := map[int]bool{}
	for _, m := range migs {
		known[m.Version] = true
	}
	for v := range applied {
		if !known[v] {
			return nil, fmt.Errorf("migrate: the database has metadata schema version %d, which this build does not know; upgrade the replicator", v)
		}
	}
	var done []int
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return nil, fmt.Errorf("migrate: %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+Schema+`.schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return nil, fmt.Errorf("migrate: record %04d: %w", m.Version, err)
		}
		done = append(done, m.Version)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("migrate: commit: %w", err)
	}
	return done, nil
}

// createVersionTable creates the schema and its version table if they are
// missing, and issues no statement for what exists: CREATE … IF NOT EXISTS
// checks the CREATE privilege before it looks whether the object exists.
// The caller holds the migration lock, so nothing appears in between.
func createVersionTable(ctx context.Context, tx pgx.Tx) error {
	var schema, table bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),
       EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = 'schema_migrations')`, Schema).Scan(&schema, &table); err != nil {
		return fmt.Errorf("migrate: look for schema %s: %w", Schema, err)
	}
	if !schema {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+Schema); err != nil {
			return fmt.Errorf("migrate: create schema: %w", err)
		}
	}
	if !table {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+Schema+`.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return fmt.Errorf("migrate: create version table: %w", err)
		}
	}
	return nil
}

func appliedVersions(ctx context.Context, tx pgx.Tx) (map[int]bool, error) {
	rows, err := tx.Query(ctx, `SELECT version FROM `+Schema+`.schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("migrate: read versions: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("migrate: read versions: %w", err)
	}
	out := make(map[int]bool, len(vs))
	for _, v := range vs {
		out[int(v)] = true
	}
	return out, nil
}

// Current returns the newest applied metadata schema version, 0 when the
// schema does not exist yet.
func Current(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (int, error) {
	var v int32
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+Schema+`.schema_migrations`).Scan(&v)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") {
			return 0, nil // undefined table or schema: nothing migrated yet
		}
		return 0, fmt.Errorf("read metadata schema version: %w", err)
	}
	return int(v), nil
}
