package replicator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/capture/oplogwindow"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/redact"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/transform"
)

// Finding is one result of the pre-flight: a side (source, buffer,
// target), whether it is a problem, and what was found.
type Finding struct {
	Side    string
	Problem bool
	Message string
}

func (f Finding) String() string {
	state := "ok"
	if f.Problem {
		state = "PROBLEM"
	}
	return fmt.Sprintf("%s: %s: %s", f.Side, state, f.Message)
}

// SnapshotRateEstimate is the documents per second the pre-flight assumes
// an initial snapshot copies (README, Performance: 16,000–20,000 on two
// cores), to compare the oplog window with the copy's duration.
const SnapshotRateEstimate = 15000

// Preflight checks, before `run`, everything outside the config file that
// `run` needs, and returns every finding (all problems at once): the
// source is reachable, a replica set or mongos, allows change streams on
// the configured namespaces and lets them be read, and its oplog window
// outlasts the expected snapshot; the buffer is reachable with its
// credentials (or its data directory writable); the target grants the
// privileges `run` needs. Each side has timeout to answer.
func Preflight(ctx context.Context, cfg *config.Config, mappings []*transform.Mapping, timeout time.Duration) []Finding {
	var out []Finding
	out = append(out, preflightSource(ctx, cfg, mappings, timeout)...)
	out = append(out, preflightBuffer(ctx, cfg, timeout)...)
	out = append(out, preflightTarget(ctx, cfg, mappings, timeout)...)
	return out
}

func ok(side, format string, args ...any) Finding {
	return Finding{Side: side, Message: fmt.Sprintf(format, args...)}
}

func problem(side, format string, args ...any) Finding {
	return Finding{Side: side, Problem: true, Message: fmt.Sprintf(format, args...)}
}

func preflightSource(ctx context.Context, cfg *config.Config, mappings []*transform.Mapping, timeout time.Duration) []Finding {
	const side = "source"
	if cfg.Source.URI == "" {
		return []Finding{problem(side, "source.uri is not set (or %s)", config.EnvSourceURI)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.Source.URI).SetAppName("replicator-check").
		SetServerSelectionTimeout(timeout))
	if err != nil {
		return []Finding{problem(side, "%v", err)}
	}
	defer CloseSource(client)
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	// The driver's errors, with their cause named (capture.SourceError).
	named := func(err error) error { return capture.SourceError(cfg.Source.URI, err) }
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		if e := named(err); e != err {
			return []Finding{problem(side, "%v", e)}
		}
		return []Finding{problem(side, "cannot reach MongoDB: %v", err)}
	}
	var out []Finding
	switch {
	case hello.SetName != "":
		out = append(out, ok(side, "replica set %s", hello.SetName))
	case hello.Msg == "isdbgrid":
		out = append(out, ok(side, "sharded cluster (mongos)"))
	default:
		return append(out, problem(side, "a standalone server: change streams need a replica set or a mongos"))
	}
	var docs int64
	for _, m := range mappings {
		db, coll, _ := strings.Cut(m.Namespace(), ".")
		c := client.Database(db).Collection(coll)
		n, err := c.EstimatedDocumentCount(ctx)
		if err != nil {
			out = append(out, problem(side, "%s cannot be read: %v", m.Namespace(), named(err)))
			continue
		}
		docs += n
		cs, err := c.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(10*time.Millisecond))
		if err != nil {
			out = append(out, problem(side, "%s: change streams not allowed: %v", m.Namespace(), named(err)))
			continue
		}
		_ = cs.Close(context.WithoutCancel(ctx))
	}
	out = append(out, ok(side, "%d collections readable with change streams, about %d documents", len(mappings), docs))
	oldest, err := oplogwindow.OldestEntry(ctx, client)
	if err != nil {
		return append(out, ok(side, "oplog window not measured (mongos, or no read access to local.oplog.rs): %v", err))
	}
	now, err := capture.ClusterTime(ctx, client)
	if err != nil {
		return append(out, problem(side, "%v", named(err)))
	}
	window := time.Duration(int64(now.T)-int64(oldest.T)) * time.Second
	copyTime := time.Duration(docs/SnapshotRateEstimate+1) * time.Second
	// A young oplog's window is only as long as its history so far, so a
	// copy of under a minute is not held against it.
	if copyTime >= time.Minute && window < 2*copyTime {
		return append(out, problem(side, "oplog window %s is less than twice the initial snapshot's estimated %s (%d documents at %d/s): enlarge the oplog (replSetResizeOplog) before the first start",
			window, copyTime, docs, SnapshotRateEstimate))
	}
	return append(out, ok(side, "oplog window %s, initial snapshot estimated at %s", window, copyTime))
}

func preflightBuffer(ctx context.Context, cfg *config.Config, timeout time.Duration) []Finding {
	const side = "buffer"
	bc := cfg.ForBuffer()
	if bc.URL == "" {
		if err := os.MkdirAll(bc.DataDir, 0o700); err != nil {
			return []Finding{problem(side, "embedded server: data_dir %s: %v", bc.DataDir, err)}
		}
		f, err := os.CreateTemp(bc.DataDir, ".check-*")
		if err != nil {
			return []Finding{problem(side, "embedded server: data_dir %s is not writable: %v", bc.DataDir, err)}
		}
		f.Close()
		_ = os.Remove(f.Name())
		abs, _ := filepath.Abs(bc.DataDir)
		return []Finding{ok(side, "embedded server, data_dir %s writable", abs)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	buf, err := buffer.Connect(ctx, bc, nil)
	var refused *buffer.RefusedError
	switch {
	case errors.As(err, &refused):
		return []Finding{problem(side, "%v", refused)}
	case err != nil:
		// The finding names the side already: "buffer: PROBLEM: connect …".
		return []Finding{problem(side, "%s", strings.TrimPrefix(err.Error(), "buffer: "))}
	}
	defer buf.Close()
	info, err := buf.JetStream().AccountInfo(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		if last := buf.LastError(); last != nil {
			return []Finding{problem(side, "NATS at %s is not connected: %v", redact.String(buf.URL()), last)}
		}
		return []Finding{problem(side, "NATS at %s did not answer within %s: is it running, and are buffer.credentials_file and buffer.tls right?", redact.String(buf.URL()), timeout)}
	}
	if err != nil {
		return []Finding{problem(side, "NATS at %s: JetStream not available to this account: %v", buf.URL(), err)}
	}
	s, err := buf.JetStream().Stream(ctx, bc.Stream)
	switch {
	case err == nil:
		st := s.CachedInfo().State
		return []Finding{ok(side, "NATS at %s, JetStream stream %s holds %d messages", buf.URL(), bc.Stream, st.Msgs)}
	case errors.Is(err, context.DeadlineExceeded):
		return []Finding{problem(side, "NATS at %s did not answer within %s", buf.URL(), timeout)}
	default:
		return []Finding{ok(side, "NATS at %s, JetStream available (%d streams); stream %s will be created", buf.URL(), info.Streams, bc.Stream)}
	}
}

func preflightTarget(ctx context.Context, cfg *config.Config, mappings []*transform.Mapping, timeout time.Duration) []Finding {
	const side = "target"
	if cfg.Target.URL == "" {
		return []Finding{problem(side, "target.url is not set (or %s)", config.EnvTargetURL)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pool, err := OpenTarget(ctx, cfg.Target.URL, 1)
	if err != nil {
		return []Finding{problem(side, "%v", err)}
	}
	defer pool.Close()
	var out []Finding
	var user string
	var createDB bool
	if err := pool.QueryRow(ctx, `SELECT current_user, has_database_privilege(current_database(), 'CREATE')`).Scan(&user, &createDB); err != nil {
		return []Finding{problem(side, "%v", err)}
	}
	// Schemas to create, and tables to write, as run would.
	schemaSet := map[string]bool{schemas.Schema: true}
	var tables []string
	for _, m := range mappings {
		for _, t := range m.Tables() {
			s, _, _ := strings.Cut(t.Name, ".")
			schemaSet[s] = true
			tables = append(tables, t.Name)
		}
	}
	names := make([]string, 0, len(schemaSet))
	for s := range schemaSet {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		var exists, create, usage bool
		if err := pool.QueryRow(ctx, `SELECT n.oid IS NOT NULL,
       coalesce(has_schema_privilege(n.oid, 'CREATE'), false), coalesce(has_schema_privilege(n.oid, 'USAGE'), false)
  FROM (SELECT $1::text AS name) q LEFT JOIN pg_namespace n ON n.nspname = q.name`, s).Scan(&exists, &create, &usage); err != nil {
			return append(out, problem(side, "%v", err))
		}
		switch {
		case !exists && !createDB:
			out = append(out, problem(side, "schema %s does not exist and %s may not create it (CREATE on the database)", s, user))
		case exists && !usage:
			out = append(out, problem(side, "%s lacks USAGE on schema %s", user, s))
		}
	}
	for _, t := range tables {
		var exists, rights bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL,
       coalesce(`+allPrivileges("to_regclass($1)")+`, false)`, quoteQualified(t)).Scan(&exists, &rights); err != nil {
			// has_table_privilege on a table in a schema without USAGE
			// fails; that is reported above.
			continue
		}
		if exists && !rights {
			out = append(out, problem(side, "%s lacks SELECT, INSERT, UPDATE or DELETE on %s", user, t))
		}
	}
	rows, err := pool.Query(ctx, `SELECT c.relname, `+allPrivileges("c.oid")+`
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND has_schema_privilege(n.oid, 'USAGE')`, schemas.Schema)
	if err != nil {
		return append(out, problem(side, "%v", err))
	}
	for rows.Next() {
		var name string
		var rights bool
		if err := rows.Scan(&name, &rights); err != nil {
			rows.Close()
			return append(out, problem(side, "%v", err))
		}
		if !rights {
			out = append(out, problem(side, "%s lacks SELECT, INSERT, UPDATE or DELETE on %s.%s", user, schemas.Schema, name))
		}
	}
	rows.Close()
	if len(out) == 0 {
		out = append(out, ok(side, "%s may create the missing schemas and write all %d mapped tables and the metadata tables", user, len(tables)))
	}
	return out
}

// allPrivileges is SQL that holds when the current user has each of
// SELECT, INSERT, UPDATE and DELETE on table (has_table_privilege with a
// list of privileges holds when any one of them is held).
func allPrivileges(table string) string {
	var parts []string
	for _, p := range []string{"SELECT", "INSERT", "UPDATE", "DELETE"} {
		parts = append(parts, fmt.Sprintf("has_table_privilege(%s, '%s')", table, p))
	}
	return "(" + strings.Join(parts, " AND ") + ")"
}

// quoteQualified quotes a "schema.table" name for to_regclass.
func quoteQualified(name string) string {
	s, t, _ := strings.Cut(name, ".")
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"."` + strings.ReplaceAll(t, `"`, `""`) + `"`
}
