package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/sink/catalog"
	"github.com/mongopg/replicator/transform"
)

// exampleModules are the worked examples under deploy/examples: the
// StellaOps control-plane modules, one PostgreSQL schema each.
var exampleModules = []string{"authority", "vuln", "vex", "scheduler", "notify", "policy", "issuer", "audit"}

// exampleWriter is the writer role's name in the examples' grant files.
const exampleWriter = "stellaops_replicator"

// TestExamples runs every module of deploy/examples the way its README
// says: schema.sql as a superuser, replicator migrate as the module's admin
// role, a writer role without BYPASSRLS holding only the documented grants,
// check (config.Load and the catalog comparison of `replicator check`),
// then `replicator run` as the writer on documents.json: the snapshot part
// before the start, the stream part (inserts, updates, deletes) once the
// snapshot is done. PostgreSQL must then hold exactly the rows of the
// module's expected.sql, written by hand with ids computed by
// uuid_generate_v5, and no dead letter.
func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL, NATS and MongoDB")
	}
	dirs, err := os.ReadDir(filepath.Join("..", "..", "deploy", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() && !slices.Contains(exampleModules, d.Name()) {
			t.Errorf("deploy/examples/%s is not in exampleModules", d.Name())
		}
	}
	for _, module := range exampleModules {
		t.Run(module, func(t *testing.T) { runExample(t, module) })
	}
}

// exampleDocs is a module's documents.json.
type exampleDocs struct {
	Database string                `bson:"database"`
	Snapshot map[string][]bson.Raw `bson:"snapshot"`
	Stream   []exampleOp           `bson:"stream"`
}

// exampleOp is one write of the stream part.
type exampleOp struct {
	Op         string   `bson:"op"` // insert, update, replace, delete
	Collection string   `bson:"collection"`
	Filter     bson.Raw `bson:"filter"`
	Document   bson.Raw `bson:"document"`
	Update     bson.Raw `bson:"update"`
}

// example is one module's run: its files, servers and target roles.
type example struct {
	t      *testing.T
	module string
	dir    string
	docs   exampleDocs
	mongo  *mongotest.Env
	super  *pgxpool.Pool // the target database, as a superuser
	pgURL  string
}

func runExample(t *testing.T, module string) {
	e := &example{t: t, module: module, dir: filepath.Join("..", "..", "deploy", "examples", module)}
	if err := bson.UnmarshalExtJSON([]byte(e.read("documents.json")), false, &e.docs); err != nil {
		t.Fatalf("documents.json: %v", err)
	}
	e.mongo = mongotest.New(t)
	e.pgURL = testenv.PostgresURL(t)
	e.super = testenv.Pool(t, e.pgURL)
	writerURL := e.prepareTarget()
	cfg := e.loadConfig(writerURL)
	mappings, err := cfg.Mappings()
	if err != nil {
		t.Fatal(err)
	}
	var tables []transform.TableDef
	for _, m := range mappings {
		tables = append(tables, m.Tables()...)
	}
	checkExample(t, cfg, writerURL, tables)
	e.run(cfg)
	e.compare(tables)
	e.noDeadLetters()
}

func (e *example) read(name string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// prepareTarget does what the README's steps 1 to 4 do: schema.sql as a
// superuser, replicator migrate as the module's admin, a writer role
// without BYPASSRLS with the documented grants. It returns the writer's
// URL.
func (e *example) prepareTarget() string {
	t, ctx := e.t, context.Background()
	execSQL(t, e.super, "schema.sql", e.read("schema.sql"))
	admin := e.module + "_admin"
	if _, err := e.super.Exec(ctx, fmt.Sprintf("ALTER ROLE %s PASSWORD 'admin'", admin)); err != nil {
		t.Fatal(err)
	}
	if _, err := schemas.Upgrade(ctx, testenv.Pool(t, roleURL(t, e.pgURL, admin, "admin"))); err != nil {
		t.Fatalf("replicator migrate as %s: %v", admin, err)
	}
	var db string
	if err := e.super.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	writer := "writer_" + db
	if _, err := e.super.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD 'writer' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS", writer)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := e.super.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %[1]s; DROP ROLE %[1]s", writer)); err != nil {
			t.Logf("drop role %s: %v", writer, err)
		}
	})
	grants := e.read("../replicator-grants.sql") + e.read("grants.sql")
	execSQL(t, e.super, "grants", strings.ReplaceAll(grants, exampleWriter, writer))
	return roleURL(t, e.pgURL, writer, "writer")
}

// loadConfig loads replicator.yaml as `replicator run --config` does, with
// the environment it names pointing at the test's servers.
func (e *example) loadConfig(writerURL string) *config.Config {
	t := e.t
	path := filepath.Join(e.dir, "replicator.yaml")
	if e.mongo.Real() {
		// A real server is shared: the module's database gets a name of
		// its own (ids do not depend on it).
		name := e.mongo.Database(e.docs.Database)
		yaml := strings.ReplaceAll(e.read("replicator.yaml"), "source: "+e.docs.Database+".", "source: "+name+".")
		path = filepath.Join(t.TempDir(), "replicator.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		e.docs.Database = name
	}
	t.Setenv("STELLAOPS_MONGO_URI", e.mongo.URI)
	t.Setenv("STELLAOPS_REPLICATOR_PG_URL", writerURL)
	t.Setenv("STELLAOPS_REPLICATOR_DATA", t.TempDir())
	t.Setenv(config.EnvBufferNATSURL, testenv.NATS(t).URL)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// run inserts the snapshot documents, starts `replicator run`, waits for
// the snapshot, makes the stream writes, waits until every collection's
// apply checkpoint has passed the last of them, and stops.
func (e *example) run(cfg *config.Config) {
	t, ctx := e.t, context.Background()
	mdb := e.mongo.Client.Database(e.docs.Database)
	for coll, ds := range e.docs.Snapshot {
		for _, d := range ds {
			if _, err := mdb.Collection(coll).InsertOne(ctx, d); err != nil {
				t.Fatalf("snapshot document %s: %v", coll, err)
			}
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- replicator.Run(runCtx, cfg, replicator.Options{Capture: true, Apply: true, Snapshot: true,
			DisableHTTP: true, Registerer: prometheus.NewRegistry(),
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("run did not stop within 60s")
		}
	}
	defer stop()
	failed := func() {
		t.Helper()
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("run stopped: %v", err)
		default:
		}
	}
	collections := len(cfg.Collections)
	waitFor(t, 60*time.Second, "the snapshot", failed, func() (bool, string) {
		var n int
		if err := e.super.QueryRow(ctx, `SELECT count(*) FROM replicator.snapshot_runs WHERE state = 'done'`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == collections, fmt.Sprintf("%d of %d collections copied", n, collections)
	})

	// The stream part, in one session, whose operation time is then the
	// cluster time every collection's apply checkpoint must reach.
	sess, err := e.mongo.Client.StartSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.EndSession(ctx)
	sctx := mongo.NewSessionContext(ctx, sess)
	for i, op := range e.docs.Stream {
		if err := op.run(sctx, mdb.Collection(op.Collection)); err != nil {
			t.Fatalf("stream[%d] (%s %s): %v", i, op.Op, op.Collection, err)
		}
	}
	last := sess.OperationTime()
	if last == nil {
		t.Fatal("no operation time after the stream writes")
	}
	waitFor(t, 60*time.Second, "the apply checkpoints", failed, func() (bool, string) {
		var n int
		if err := e.super.QueryRow(ctx, `SELECT count(*) FROM replicator.apply_checkpoints WHERE (cluster_ts, cluster_inc) >= ($1, $2)`,
			int64(last.T), int64(last.I)).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == collections, fmt.Sprintf("%d of %d collections applied up to %d.%d", n, collections, last.T, last.I)
	})
}

// compare loads schema.sql and expected.sql into a database of their own
// and compares every mapped table with the replicated one.
func (e *example) compare(tables []transform.TableDef) {
	t := e.t
	exp := testenv.Postgres(t)
	execSQL(t, exp, "schema.sql", e.read("schema.sql"))
	execSQL(t, exp, "expected.sql", e.read("expected.sql"))
	for _, def := range tables {
		cols := exampleColumns(t, e.super, def)
		got, want := tableText(t, e.super, def.Name, cols), tableText(t, exp, def.Name, cols)
		if d := lineDiff(want, got); d != "" {
			t.Errorf("%s (%s) differs from expected.sql (- expected, + replicated):\n%s", def.Name, strings.Join(cols, ", "), d)
		}
	}
}

// noDeadLetters fails on every dead letter, naming it.
func (e *example) noDeadLetters() {
	t := e.t
	rows, err := e.super.Query(context.Background(), `SELECT collection, stage, reason, error, coalesce(field_path, ''), coalesce(document_key, '')
FROM replicator.dead_letters ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var coll, stage, reason, msg, path, key string
		if err := rows.Scan(&coll, &stage, &reason, &msg, &path, &key); err != nil {
			t.Fatal(err)
		}
		t.Errorf("dead letter: %s %s %s at %q of %s: %s", coll, stage, reason, path, key, msg)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// checkExample runs what `replicator check --config F` runs against the
// target as the writer role and fails on every error; warnings (triggers,
// constraints the mapping may violate) are logged.
func checkExample(t *testing.T, cfg *config.Config, writerURL string, tables []transform.TableDef) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, writerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	ps, err := catalog.CompareWith(ctx, conn, tables, catalog.Options{DisableTriggers: cfg.Target.DisableTriggers})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	line := func(p catalog.Problem) string {
		return fmt.Sprintf("%s: %s", cfg.Position(cfg.ColumnKey(p.Table, p.Column)), p)
	}
	for _, p := range ps {
		if p.Severity == catalog.Warning {
			t.Logf("check: %s", line(p))
		}
	}
	// As in `replicator check`, only errors fail.
	for _, p := range catalog.Errors(ps) {
		t.Errorf("check: %s", line(p))
	}
}

func (op exampleOp) run(ctx context.Context, c *mongo.Collection) error {
	var err error
	switch op.Op {
	case "insert":
		_, err = c.InsertOne(ctx, op.Document)
	case "update":
		var r *mongo.UpdateResult
		if r, err = c.UpdateOne(ctx, op.Filter, op.Update); err == nil && r.MatchedCount != 1 {
			err = fmt.Errorf("filter %s matched %d documents", op.Filter, r.MatchedCount)
		}
	case "replace":
		var r *mongo.UpdateResult
		if r, err = c.ReplaceOne(ctx, op.Filter, op.Document); err == nil && r.MatchedCount != 1 {
			err = fmt.Errorf("filter %s matched %d documents", op.Filter, r.MatchedCount)
		}
	case "delete":
		var r *mongo.DeleteResult
		if r, err = c.DeleteOne(ctx, op.Filter); err == nil && r.DeletedCount != 1 {
			err = fmt.Errorf("filter %s deleted %d documents", op.Filter, r.DeletedCount)
		}
	default:
		err = fmt.Errorf("unknown op %q", op.Op)
	}
	return err
}

// execSQL runs a file's statements in one session.
func execSQL(t *testing.T, pool *pgxpool.Pool, name, sql string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// roleURL is base with another user and password.
func roleURL(t *testing.T, base, user, password string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// waitFor polls cond until it holds, failing the test after timeout with
// cond's last word.
func waitFor(t *testing.T, timeout time.Duration, what string, failed func(), cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		failed()
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %s after %s", what, state, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exampleColumns are the columns compared: those the mapping writes, and
// the table's generated columns, which PostgreSQL computes from them.
// Columns left to their defaults (created_at, updated_at where unmapped)
// differ between any two databases.
func exampleColumns(t *testing.T, pool *pgxpool.Pool, def transform.TableDef) []string {
	t.Helper()
	var cols []string
	for _, c := range def.Columns {
		cols = append(cols, c.Name)
	}
	rows, err := pool.Query(context.Background(), `SELECT attname FROM pg_catalog.pg_attribute
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = 's' ORDER BY attnum`, transform.QuoteTable(def.Name))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return append(cols, gen...)
}

// tableText renders the table's rows, one line each, sorted: the columns'
// text forms, NULL unquoted.
func tableText(t *testing.T, pool *pgxpool.Pool, table string, cols []string) []string {
	t.Helper()
	exprs := make([]string, len(cols))
	for i, c := range cols {
		// Column names are lower-case identifiers (transform checks them).
		exprs[i] = fmt.Sprintf("'%s=' || quote_nullable(%s::text)", c, transform.QuoteIdent(c))
	}
	q := fmt.Sprintf("SELECT %s FROM %s ORDER BY 1", strings.Join(exprs, " || ' ' || "), transform.QuoteTable(table))
	rows, err := pool.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	slices.Sort(lines)
	return lines
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
