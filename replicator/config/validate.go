package config

import (
	"fmt"
	"math"
	"net"
	"strings"

	"github.com/mongopg/replicator/transform"
)

// Validate checks every section, runs every component's own Validate on
// the configs the file maps to (components.go) and compiles every
// collection, returning all problems at once as Problems. It does not require source.uri or
// target.url (see RequireSource, RequireTarget): schema and check work
// without them.
func (c *Config) Validate() error {
	var ps Problems
	add := func(key, format string, args ...any) { ps = append(ps, c.problem(key, format, args...)) }

	switch c.Source.OnHistoryLost {
	case "stop", "resync":
	default:
		add("source.on_history_lost", "%q must be stop or resync", c.Source.OnHistoryLost)
	}
	positive := []struct {
		key string
		v   int64
	}{
		{"source.batch_size", int64(c.Source.BatchSize)},
		{"source.max_await", int64(c.Source.MaxAwait)},
		{"source.oplog_headroom_warning", int64(c.Source.OplogHeadroomWarning)},
		{"buffer.max_age", int64(c.Buffer.MaxAge)},
		{"buffer.duplicate_window", int64(c.Buffer.DuplicateWindow)},
		{"buffer.replicas", int64(c.Buffer.Replicas)},
		{"buffer.publish_window", int64(c.Buffer.PublishWindow)},
		{"buffer.heartbeat_interval", int64(c.Buffer.HeartbeatInterval)},
		{"target.max_conns", int64(c.Target.MaxConns)},
		{"apply.batch_size", int64(c.Apply.BatchSize)},
		{"apply.batch_bytes", int64(c.Apply.BatchBytes)},
		{"apply.batch_wait", int64(c.Apply.BatchWait)},
		{"apply.max_ack_pending", int64(c.Apply.MaxAckPending)},
		{"apply.max_retry_backoff", int64(c.Apply.MaxRetryBackoff)},
		{"apply.copy_threshold", int64(c.Apply.CopyThreshold)},
		{"apply.claim_ttl", int64(c.Apply.ClaimTTL)},
		{"snapshot.parallelism", int64(c.Snapshot.Parallelism)},
		{"snapshot.chunk_size", int64(c.Snapshot.ChunkSize)},
		{"verify.interval", int64(c.Verify.Interval)},
		{"verify.max_differences", int64(c.Verify.MaxDifferences)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			add(p.key, "must be positive")
		}
	}
	if lim := c.Buffer.EmbeddedMemoryLimit; lim != nil && *lim != 0 && *lim < MinEmbeddedMemoryLimit {
		add("buffer.embedded_memory_limit", "%d bytes is too small for the embedded server: give at least %s, or 0 for no limit", int64(*lim), MinEmbeddedMemoryLimit)
	}
	if c.Buffer.MaxBytes < 0 {
		add("buffer.max_bytes", "must be 0 (unlimited) or positive")
	}
	if c.Buffer.Replicas > 5 {
		add("buffer.replicas", "JetStream allows at most 5 replicas")
	}
	if (c.Buffer.TLS.CertFile == "") != (c.Buffer.TLS.KeyFile == "") {
		add("buffer.tls", "cert_file and key_file go together")
	}
	if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
		add("metrics.listen", "%q must be host:port", c.Metrics.Listen)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q must be debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format", "%q must be text or json", c.Log.Format)
	}
	if r := c.Verify.Rate; !(r > 0) || math.IsInf(r, 1) {
		add("verify.rate", "%v: want a positive number of documents per second", r)
	}
	if len(c.Collections) == 0 {
		add("collections", "at least one collection is required")
	}
	ps = append(ps, c.validateCollections()...)
	ps = append(ps, c.validateVerifyCollections()...)
	ps = append(ps, c.componentProblems(ps)...)
	if len(ps) > 0 {
		ps.sort()
		return ps
	}
	return nil
}

// validateCollections compiles each collection and checks that sources
// and tables are unique across the file.
func (c *Config) validateCollections() Problems {
	var ps Problems
	sources := map[string]int{}
	tables := map[string]string{}
	for i, cc := range c.Collections {
		key := fmt.Sprintf("collections[%d]", i)
		if j, dup := sources[cc.Source]; dup && cc.Source != "" {
			ps = append(ps, c.problem(key+".source", "source %q is already mapped by collections[%d]", cc.Source, j))
		}
		sources[cc.Source] = i
		m, err := transform.Compile(cc)
		if err != nil {
			ps = append(ps, c.problemsFrom(i, err)...)
			continue
		}
		for ti, t := range m.Tables() {
			field := key + ".table"
			if ti > 0 {
				field = key + "." + TableField(cc, t.Name)
			}
			if prev, dup := tables[t.Name]; dup {
				ps = append(ps, c.problem(field, "table %q is already written by %s", t.Name, prev))
				continue
			}
			tables[t.Name] = field
		}
	}
	return ps
}

// validateVerifyCollections checks that verify.collections names each
// configured collection at most once, and nothing else.
func (c *Config) validateVerifyCollections() Problems {
	var ps Problems
	configured := make(map[string]bool, len(c.Collections))
	names := make([]string, 0, len(c.Collections))
	for _, cc := range c.Collections {
		configured[cc.Source] = true
		names = append(names, cc.Source)
	}
	listed := map[string]int{}
	for i, ns := range c.Verify.Collections {
		key := fmt.Sprintf("verify.collections[%d]", i)
		if j, dup := listed[ns]; dup {
			ps = append(ps, c.problem(key, "%q is already listed at verify.collections[%d]", ns, j))
			continue
		}
		listed[ns] = i
		if !configured[ns] {
			ps = append(ps, c.problem(key, "%q is not a configured collection (configured: %s)", ns, strings.Join(names, ", ")))
		}
	}
	return ps
}

// TableField returns the YAML key path, inside collection cc, of the
// "table" key that names table (root: "table"; child:
// "children[0].table"; grandchild: "children[0].children[1].table").
func TableField(cc transform.CollectionConfig, table string) string {
	for i, ch := range cc.Children {
		if q, _ := transform.QualifiedTable(ch.Table); q == table {
			return fmt.Sprintf("children[%d].table", i)
		}
		for j, g := range ch.Children {
			if q, _ := transform.QualifiedTable(g.Table); q == table {
				return fmt.Sprintf("children[%d].children[%d].table", i, j)
			}
		}
	}
	return "table"
}

// ColumnKey returns the YAML key path that defines column col of table
// (or the table itself when col is "" or generated), for pointing a
// problem found in the database at the file position. It returns "" for a
// table no collection writes.
func (c *Config) ColumnKey(table, col string) string {
	for i, cc := range c.Collections {
		prefix := fmt.Sprintf("collections[%d].", i)
		root, _ := transform.QualifiedTable(cc.Table)
		if root == table {
			return prefix + rootColumnKey(cc, col)
		}
		for j, ch := range cc.Children {
			f := fmt.Sprintf("children[%d]", j)
			if q, _ := transform.QualifiedTable(ch.Table); q == table {
				return prefix + childColumnKey(f, ch, col)
			}
			for k, g := range ch.Children {
				gf := fmt.Sprintf("%s.children[%d]", f, k)
				if q, _ := transform.QualifiedTable(g.Table); q == table {
					return prefix + childColumnKey(gf, g, col)
				}
			}
		}
	}
	return ""
}

func rootColumnKey(cc transform.CollectionConfig, col string) string {
	for _, c := range cc.Columns {
		if c.Name == col {
			return "columns." + col
		}
	}
	switch {
	case cc.Document != nil && cc.Document.Column == col:
		return "document.column"
	case cc.TenantID != nil && col != "":
		return "tenant_id"
	}
	return "table"
}

func childColumnKey(field string, ch transform.ChildConfig, col string) string {
	for _, c := range ch.Columns {
		if c.Name == col {
			return field + ".columns." + col
		}
	}
	switch {
	case ch.Document != nil && col == ch.Document.Column:
		return field + ".document.column"
	case col != "" && col == ch.ParentKey:
		return field + ".parent_key"
	case col != "" && col == ch.Ordinal:
		return field + ".ordinal"
	}
	return field + ".table"
}
