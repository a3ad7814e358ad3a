package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestDesignExample: the example file in ARCHITECTURE.md parses and compiles as
// written.
func TestDesignExample(t *testing.T) {
	t.Setenv(EnvSourceURI, "")
	t.Setenv(EnvTargetURL, "")
	c, err := Load("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Mappings()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Namespace() != "vuln.advisories" || len(ms[0].Tables()) != 2 {
		t.Fatalf("mappings %v", ms)
	}
	if c.Source.URI != "mongodb://127.0.0.1:27017/?replicaSet=rs0" || c.Target.URL != "postgres://postgres@127.0.0.1:5432/app" {
		t.Fatalf("uris %q %q", c.Source.URI, c.Target.URL)
	}
	if err := c.RequireSource(); err != nil {
		t.Fatal(err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte("collections:\n  - {source: a.b, table: a.b}\n"), "min.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"source.on_history_lost", c.Source.OnHistoryLost, "stop"},
		{"source.batch_size", c.Source.BatchSize, 1000},
		{"source.max_await", c.Source.MaxAwait, time.Second},
		{"source.oplog_headroom_warning", c.Source.OplogHeadroomWarning, 24 * time.Hour},
		{"buffer.nats_url", c.Buffer.NATSURL, ""},
		{"buffer.data_dir", c.Buffer.DataDir, "./replicator-data"},
		{"buffer.stream", c.Buffer.Stream, "REPLICATOR"},
		{"buffer.subject_prefix", c.Buffer.SubjectPrefix, "replicator"},
		{"buffer.max_age", c.Buffer.MaxAge, 168 * time.Hour},
		{"buffer.max_bytes", c.Buffer.MaxBytes, ByteSize(0)},
		{"buffer.duplicate_window", c.Buffer.DuplicateWindow, 30 * time.Second},
		{"buffer.replicas", c.Buffer.Replicas, 1},
		{"buffer.publish_window", c.Buffer.PublishWindow, 1024},
		{"buffer.heartbeat_interval", c.Buffer.HeartbeatInterval, time.Second},
		{"buffer.embedded_memory_limit", *c.Buffer.EmbeddedMemoryLimit, 224 * MiB},
		{"target.max_conns", c.Target.MaxConns, 8},
		{"apply.batch_size", c.Apply.BatchSize, 2000},
		{"apply.batch_bytes", c.Apply.BatchBytes, 8 * MiB},
		{"apply.batch_wait", c.Apply.BatchWait, 100 * time.Millisecond},
		{"apply.max_ack_pending", c.Apply.MaxAckPending, 20000},
		{"apply.max_retry_backoff", c.Apply.MaxRetryBackoff, 30 * time.Second},
		{"apply.copy_threshold", c.Apply.CopyThreshold, 100},
		{"snapshot.parallelism", c.Snapshot.Parallelism, 4},
		{"snapshot.chunk_size", c.Snapshot.ChunkSize, 10000},
		{"verify.enabled", c.Verify.Enabled, false},
		{"verify.interval", c.Verify.Interval, 10 * time.Minute},
		{"verify.rate", c.Verify.Rate, 1000.0},
		{"verify.max_differences", c.Verify.MaxDifferences, 100},
		{"verify.collections", len(c.Verify.Collections), 0},
		{"metrics.listen", c.Metrics.Listen, "127.0.0.1:9187"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if err := c.RequireSource(); err == nil {
		t.Error("RequireSource accepted an empty uri")
	}
	if err := c.RequireTarget(); err == nil || !strings.Contains(err.Error(), EnvTargetURL) {
		t.Errorf("RequireTarget: %v", err)
	}
}

// TestProblems: every problem of a broken file is reported at once, with
// file:line:col and the key (testdata/bad.golden).
func TestProblems(t *testing.T) {
	_, err := Load("testdata/bad.yaml")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %T %v, want Problems", err, err)
	}
	golden(t, "bad.golden", []byte(err.Error()+"\n"))
	for _, p := range ps {
		if p.Line == 0 || p.Column == 0 || p.Key == "" {
			t.Errorf("problem without a position or key: %+v", p)
		}
	}
}

func TestProblemCases(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"syntax error", "source: [\n", []string{"bad.yaml:"}},
		{"not a mapping", "- a\n", []string{"must be a mapping of sections"}},
		{"empty", "", []string{"collections: at least one collection is required"}},
		{"unknown top-level key", "sources: {}\ncollections: [{source: a.b, table: a.b}]\n", []string{"bad.yaml:1:1: sources: unknown key"}},
		{"duplicate table across collections", `collections:
  - {source: a.b, table: t.x}
  - source: a.c
    table: t.y
    children: [{path: xs, table: t.x}]
`, []string{"bad.yaml:5:34: collections[1].children[0].table: table \"t.x\" is already written by collections[0].table"}},
		{"values", "source: {batch_size: -1}\nbuffer: {replicas: 9, tls: {cert_file: c}}\nmetrics: {listen: nope}\nlog: {format: xml}\ncollections: [{source: a.b, table: a.b}]\n", []string{
			"source.batch_size: must be positive", "buffer.replicas: JetStream allows at most 5 replicas",
			"buffer.tls: cert_file and key_file go together", "metrics.listen: \"nope\" must be host:port", "log.format: \"xml\" must be text or json",
		}},
		{"memory limit too small", "buffer: {embedded_memory_limit: 10MiB}\ncollections: [{source: a.b, table: a.b}]\n", []string{"buffer.embedded_memory_limit: 10485760 bytes is too small for the embedded server: give at least 64MiB, or 0 for no limit"}},
		{"component checks", "buffer: {duplicate_window: 2h, max_age: 1h, replicas: 3}\napply: {batch_size: 5000, max_ack_pending: 100}\nsnapshot: {parallelism: 300}\ncollections: [{source: a.b, table: a.b}]\n", []string{
			"bad.yaml:1:28: buffer.duplicate_window: buffer: duplicate_window 2h0m0s exceeds max_age 1h0m0s",
			"bad.yaml:1:55: buffer.replicas: buffer: replicas 3 needs a NATS cluster; the embedded server holds one replica",
			"bad.yaml:2:44: apply.max_ack_pending: max ack pending 100: must be at least the batch size 5000",
			"bad.yaml:3:25: snapshot.parallelism: parallelism 300: want 1..256",
		}},
		{"sizes", "apply: {batch_bytes: 2 GiB}\nbuffer: {max_bytes: [1]}\ncollections: [{source: a.b, table: a.b}]\n", []string{"buffer.max_bytes: a size must be a scalar"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "bad.yaml")
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv(EnvSourceURI, "mongodb://env:27017")
	t.Setenv(EnvTargetURL, "postgres://env/db")
	c, err := Load("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Source.URI != "mongodb://env:27017" || c.Target.URL != "postgres://env/db" {
		t.Fatalf("env not applied: %q %q", c.Source.URI, c.Target.URL)
	}
	p, err := Parse([]byte("collections: [{source: a.b, table: a.b}]\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Source.URI != "" {
		t.Fatal("Parse read the environment")
	}
}

// TestEmbeddedMemoryLimitOff: 0 turns the limit off (and is not replaced
// by the default).
func TestEmbeddedMemoryLimitOff(t *testing.T) {
	c, err := Parse([]byte("buffer: {embedded_memory_limit: 0}\ncollections: [{source: a.b, table: a.b}]\n"), "off.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Buffer.EmbeddedMemoryLimit == nil || *c.Buffer.EmbeddedMemoryLimit != 0 {
		t.Fatalf("embedded_memory_limit: 0 became %v", c.Buffer.EmbeddedMemoryLimit)
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{in: "8MiB", want: 8 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "1GiB", want: 1 << 30},
		{in: "10 KB", want: 10000},
		{in: "1000", want: 1000},
		{in: "0", want: 0},
		{in: "12B", want: 12},
		{in: "-1", err: true},
		{in: "lots", err: true},
		{in: "99999999999TiB", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
	if s := (8 * MiB).String(); s != "8MiB" {
		t.Errorf("String = %q", s)
	}
}

func TestColumnKeyAndPosition(t *testing.T) {
	c, err := Load("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ table, col, key, pos string }{
		{"vuln.advisories", "cvss", "collections[0].columns.cvss", "testdata/design.yaml:16:21"},
		{"vuln.advisories", "", "collections[0].table", "testdata/design.yaml:10:12"},
		{"vuln.advisories", "_cdc_ts", "collections[0].table", "testdata/design.yaml:10:12"},
		{"vuln.advisories", "doc", "collections[0].document.column", "testdata/design.yaml:18:25"},
		{"vuln.advisory_affected", "purl", "collections[0].children[0].columns.purl", "testdata/design.yaml:25:19"},
		{"vuln.advisory_affected", "advisory_id", "collections[0].children[0].parent_key", "testdata/design.yaml:22:21"},
		{"vuln.other", "", "", "testdata/design.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.table+"."+tt.col, func(t *testing.T) {
			key := c.ColumnKey(tt.table, tt.col)
			if key != tt.key {
				t.Fatalf("key %q, want %q", key, tt.key)
			}
			if pos := c.Position(key); pos != tt.pos {
				t.Fatalf("position %q, want %q", pos, tt.pos)
			}
		})
	}
}

// TestSinkCollectionsFiltered: the applier learns which collections have a
// filter (their updates can bring a removed document back, so every upsert
// clears older tombstones).
func TestSinkCollectionsFiltered(t *testing.T) {
	c, err := Parse([]byte(`collections:
  - source: a.plain
    table: a.plain
  - source: a.filtered
    table: a.filtered
    filter: [{path: archived, equals: true}]
`), "filtered.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Mappings()
	if err != nil {
		t.Fatal(err)
	}
	cols := SinkCollections(ms)
	if len(cols) != 2 || cols[0].Filtered || !cols[1].Filtered {
		t.Fatalf("filtered: %v", cols)
	}
}
