package config

import (
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/capture/oplogwindow"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// Config is the whole YAML file.
type Config struct {
	Source      SourceConfig                 `yaml:"source"`
	Buffer      BufferConfig                 `yaml:"buffer"`
	Target      TargetConfig                 `yaml:"target"`
	Apply       ApplyConfig                  `yaml:"apply"`
	Snapshot    SnapshotConfig               `yaml:"snapshot"`
	Verify      VerifyConfig                 `yaml:"verify"`
	Collections []transform.CollectionConfig `yaml:"collections"`
	Metrics     MetricsConfig                `yaml:"metrics"`
	Log         LogConfig                    `yaml:"log"`

	// File is the name the config was read from.
	File string `yaml:"-"`
	root *yaml.Node
}

// SourceConfig is the MongoDB side.
type SourceConfig struct {
	// URI is the MongoDB connection string (env REPLICATOR_SOURCE_URI).
	URI string `yaml:"uri"`
	// OnHistoryLost is what to do when the resume point fell off the
	// oplog: stop (default) or resync.
	OnHistoryLost string `yaml:"on_history_lost"`
	// BatchSize is the change-stream batch size (default capture.DefaultBatchSize).
	BatchSize int `yaml:"batch_size"`
	// MaxAwait is the getMore maxAwaitTimeMS (default capture.DefaultMaxAwait).
	MaxAwait time.Duration `yaml:"max_await"`
	// OplogHeadroomWarning warns when the oplog window left for the resume
	// point drops below it (default oplogwindow.DefaultWarning).
	OplogHeadroomWarning time.Duration `yaml:"oplog_headroom_warning"`
}

// BufferConfig is the NATS JetStream buffer.
type BufferConfig struct {
	// NATSURL is the server URL; "" runs an embedded server under DataDir.
	NATSURL string `yaml:"nats_url"`
	// DataDir holds the embedded server's files (default buffer.DefaultDataDir).
	DataDir string `yaml:"data_dir"`
	// Stream is the JetStream stream name (default buffer.DefaultStream).
	Stream string `yaml:"stream"`
	// SubjectPrefix prefixes per-collection subjects (default buffer.DefaultSubjectPrefix).
	SubjectPrefix   string    `yaml:"subject_prefix"`
	CredentialsFile string    `yaml:"credentials_file"`
	TLS             TLSConfig `yaml:"tls"`
	// MaxAge is the stream's retention (default buffer.DefaultMaxAge).
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes limits the stream's size (default 0: unlimited).
	MaxBytes ByteSize `yaml:"max_bytes"`
	// DuplicateWindow is JetStream's de-duplication window (default
	// buffer.DefaultDuplicateWindow; buffer.Config.DuplicateWindow says what
	// it costs).
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// Replicas is the stream's replica count (default buffer.DefaultReplicas).
	Replicas int `yaml:"replicas"`
	// PublishWindow bounds in-flight asynchronous publishes (default
	// buffer.DefaultPublishWindow).
	PublishWindow int `yaml:"publish_window"`
	// HeartbeatInterval is how often idle collections publish heartbeats
	// (default capture.DefaultHeartbeatInterval).
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// EmbeddedMemoryLimit is the soft memory limit (Go's GOMEMLIMIT) of a
	// `run` process whose JetStream server is embedded (NATSURL empty):
	// default DefaultEmbeddedMemoryLimit, 0 for none. The embedded server
	// keeps about ten seconds of written messages and the ids of the
	// duplicate window in the process's heap; the limit makes the garbage
	// collector work harder as the heap nears it instead of letting the
	// process grow (README, Performance). The GOMEMLIMIT environment
	// variable, when set, wins.
	EmbeddedMemoryLimit *ByteSize `yaml:"embedded_memory_limit"`
}

// TLSConfig holds client TLS files.
type TLSConfig struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// TargetConfig is the PostgreSQL side.
type TargetConfig struct {
	// URL is the PostgreSQL connection URL (env REPLICATOR_TARGET_URL).
	URL string `yaml:"url"`
	// MaxConns bounds the connection pool (default DefaultMaxConns).
	MaxConns int `yaml:"max_conns"`
	// DisableTriggers makes the replicator's writes skip the target's
	// ordinary triggers and foreign-key checks: its connections run with
	// session_replication_role = replica (superuser, or GRANT SET ON
	// PARAMETER session_replication_role).
	DisableTriggers bool `yaml:"disable_triggers"`
}

// ApplyConfig tunes the sink.
type ApplyConfig struct {
	// BatchSize is about the most events per transaction (default
	// sink.DefaultBatchSize; sink.Config.BatchSize).
	BatchSize int `yaml:"batch_size"`
	// BatchBytes is the most message bytes per transaction (default sink.DefaultBatchBytes).
	BatchBytes ByteSize `yaml:"batch_bytes"`
	// BatchWait is how long to wait to fill a batch (default sink.DefaultBatchWait).
	BatchWait time.Duration `yaml:"batch_wait"`
	// MaxAckPending bounds unacknowledged messages (default sink.DefaultMaxAckPending).
	MaxAckPending int `yaml:"max_ack_pending"`
	// MaxRetryBackoff caps the retry backoff (default sink.DefaultMaxRetryBackoff).
	MaxRetryBackoff time.Duration `yaml:"max_retry_backoff"`
	// CopyThreshold: batches of at least this many rows use COPY staging
	// (default sink.DefaultCopyThreshold).
	CopyThreshold int `yaml:"copy_threshold"`
	// ClaimTTL is how long an apply process's claim on a collection or
	// partition outlives the process when it dies on another host before
	// another apply process takes the unit over (default
	// buffer.DefaultClaimTTL; a process that died on the same host is
	// taken over at once).
	ClaimTTL time.Duration `yaml:"claim_ttl"`
}

// SnapshotConfig tunes initial loads and resyncs.
type SnapshotConfig struct {
	// Parallelism is the number of concurrent _id ranges (default snapshot.DefaultParallelism).
	Parallelism int `yaml:"parallelism"`
	// ChunkSize is the documents per range (default snapshot.DefaultChunkSize).
	ChunkSize int `yaml:"chunk_size"`
}

// VerifyConfig is continuous verification inside `replicator run`: the
// selected collections are verified one after another (as `replicator
// verify` does), then the process waits Interval, and again, until it
// stops. Off by default.
type VerifyConfig struct {
	// Enabled turns continuous verification on (default off).
	Enabled bool `yaml:"enabled"`
	// Interval is the pause between two complete passes over the
	// collections (default DefaultVerifyInterval).
	Interval time.Duration `yaml:"interval"`
	// Rate caps the documents read from MongoDB per second, so the load
	// on the source stays bounded (default DefaultVerifyRate).
	Rate float64 `yaml:"rate"`
	// Collections are the source namespaces verified, in this order
	// (default: every configured collection, in file order).
	Collections []string `yaml:"collections"`
	// MaxDifferences bounds the differing rows a pass lists per table
	// (default DefaultVerifyMaxDifferences); the counts are complete.
	MaxDifferences int `yaml:"max_differences"`
}

// MetricsConfig is the HTTP endpoint for /metrics, /healthz, /readyz.
type MetricsConfig struct {
	// Listen is host:port (default DefaultMetricsListen).
	Listen string `yaml:"listen"`
	// Pprof also serves Go's profiles under /debug/pprof/ (default off).
	// They show memory contents and cost CPU while taken, so keep the
	// listener private when it is on.
	Pprof bool `yaml:"pprof"`
}

// LogConfig sets up the logger.
type LogConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
}

// Defaults of the sections no component owns. Every other default is the
// owning component's exported constant (components.go maps them).
const (
	DefaultOnHistoryLost = "stop"
	DefaultMaxConns      = 8
	DefaultMetricsListen = "127.0.0.1:9187"
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "text"
	// DefaultEmbeddedMemoryLimit is buffer.embedded_memory_limit's default.
	DefaultEmbeddedMemoryLimit = 224 * MiB
	// MinEmbeddedMemoryLimit is the smallest non-zero limit accepted.
	MinEmbeddedMemoryLimit = 64 * MiB
	// Defaults of the verify section: continuous verification belongs to
	// the process (package replicator), which reads them from here.
	// DefaultVerifyMaxDifferences is verify.DefaultMaxDifferences, the
	// verify command's default (a test in package replicator keeps them
	// equal; this package cannot import its sibling verify).
	DefaultVerifyInterval       = 10 * time.Minute
	DefaultVerifyRate           = 1000.0
	DefaultVerifyMaxDifferences = 100
)

// applyDefaults fills zero values from the components' defaults.
func (c *Config) applyDefaults() {
	setStr(&c.Source.OnHistoryLost, DefaultOnHistoryLost)
	setInt(&c.Source.BatchSize, capture.DefaultBatchSize)
	setDur(&c.Source.MaxAwait, capture.DefaultMaxAwait)
	setDur(&c.Source.OplogHeadroomWarning, oplogwindow.DefaultWarning)

	setStr(&c.Buffer.DataDir, buffer.DefaultDataDir)
	setStr(&c.Buffer.Stream, buffer.DefaultStream)
	setStr(&c.Buffer.SubjectPrefix, buffer.DefaultSubjectPrefix)
	setDur(&c.Buffer.MaxAge, buffer.DefaultMaxAge)
	setDur(&c.Buffer.DuplicateWindow, buffer.DefaultDuplicateWindow)
	setInt(&c.Buffer.Replicas, buffer.DefaultReplicas)
	setInt(&c.Buffer.PublishWindow, buffer.DefaultPublishWindow)
	setDur(&c.Buffer.HeartbeatInterval, capture.DefaultHeartbeatInterval)
	if c.Buffer.EmbeddedMemoryLimit == nil {
		lim := DefaultEmbeddedMemoryLimit
		c.Buffer.EmbeddedMemoryLimit = &lim
	}

	setInt(&c.Target.MaxConns, DefaultMaxConns)

	setInt(&c.Apply.BatchSize, sink.DefaultBatchSize)
	if c.Apply.BatchBytes == 0 {
		c.Apply.BatchBytes = sink.DefaultBatchBytes
	}
	setDur(&c.Apply.BatchWait, sink.DefaultBatchWait)
	setInt(&c.Apply.MaxAckPending, max(sink.DefaultMaxAckPending, c.Apply.BatchSize))
	setDur(&c.Apply.MaxRetryBackoff, sink.DefaultMaxRetryBackoff)
	setInt(&c.Apply.CopyThreshold, sink.DefaultCopyThreshold)
	setDur(&c.Apply.ClaimTTL, buffer.DefaultClaimTTL)

	setInt(&c.Snapshot.Parallelism, snapshot.DefaultParallelism)
	setInt(&c.Snapshot.ChunkSize, snapshot.DefaultChunkSize)

	setDur(&c.Verify.Interval, DefaultVerifyInterval)
	if c.Verify.Rate == 0 {
		c.Verify.Rate = DefaultVerifyRate
	}
	setInt(&c.Verify.MaxDifferences, DefaultVerifyMaxDifferences)

	setStr(&c.Metrics.Listen, DefaultMetricsListen)
	setStr(&c.Log.Level, DefaultLogLevel)
	setStr(&c.Log.Format, DefaultLogFormat)
}

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setDur(p *time.Duration, v time.Duration) {
	if *p == 0 {
		*p = v
	}
}

// VerifyCollections returns the source namespaces continuous verification
// reads, in order: verify.collections, or every configured collection in
// file order when it is empty.
func (c *Config) VerifyCollections() []string {
	if len(c.Verify.Collections) > 0 {
		return c.Verify.Collections
	}
	out := make([]string, len(c.Collections))
	for i, cc := range c.Collections {
		out[i] = cc.Source
	}
	return out
}

// Mappings compiles every collection, in file order.
func (c *Config) Mappings() ([]*transform.Mapping, error) {
	out := make([]*transform.Mapping, 0, len(c.Collections))
	for i, cc := range c.Collections {
		m, err := transform.Compile(cc)
		if err != nil {
			return nil, c.problemsFrom(i, err)
		}
		out = append(out, m)
	}
	return out, nil
}
