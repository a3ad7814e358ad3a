package config

import (
	"errors"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/capture/oplogwindow"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// This file is the one place where the YAML file maps onto the components'
// configs. Each component owns its defaults (exported constants) and its
// Validate; applyDefaults fills the file from those constants, the For*
// methods build the components' configs, and Validate runs every
// component's Validate, placing each problem at its YAML key through the
// *Keys tables below.

// ForBuffer returns the buffer's config.
func (c *Config) ForBuffer() buffer.Config {
	b := c.Buffer
	return buffer.Config{
		URL:             b.NATSURL,
		DataDir:         b.DataDir,
		Stream:          b.Stream,
		SubjectPrefix:   b.SubjectPrefix,
		CredentialsFile: b.CredentialsFile,
		CAFile:          b.TLS.CAFile,
		CertFile:        b.TLS.CertFile,
		KeyFile:         b.TLS.KeyFile,
		MaxAge:          b.MaxAge,
		MaxBytes:        int64(b.MaxBytes),
		DuplicateWindow: b.DuplicateWindow,
		Replicas:        b.Replicas,
		PublishWindow:   b.PublishWindow,
	}.WithDefaults()
}

var bufferKeys = map[string]string{
	"URL": "buffer.nats_url", "DataDir": "buffer.data_dir", "Stream": "buffer.stream",
	"SubjectPrefix": "buffer.subject_prefix", "CredentialsFile": "buffer.credentials_file",
	"CAFile": "buffer.tls.ca_file", "CertFile": "buffer.tls.cert_file", "KeyFile": "buffer.tls.key_file",
	"MaxAge": "buffer.max_age", "MaxBytes": "buffer.max_bytes", "DuplicateWindow": "buffer.duplicate_window",
	"Replicas": "buffer.replicas", "PublishWindow": "buffer.publish_window",
}

// ForCapture returns capture's config, with its defaults applied. Its
// Source is the one name of the capture source (saved positions, leases).
func (c *Config) ForCapture() capture.Config {
	return capture.Config{
		URI:               c.Source.URI,
		BatchSize:         c.Source.BatchSize,
		MaxAwait:          c.Source.MaxAwait,
		HeartbeatInterval: c.Buffer.HeartbeatInterval,
	}.WithDefaults()
}

var captureKeys = map[string]string{
	"URI": "source.uri", "BatchSize": "source.batch_size", "MaxAwait": "source.max_await",
	"HeartbeatInterval": "buffer.heartbeat_interval",
}

// ForGuard returns the oplog-window guard's config.
func (c *Config) ForGuard() oplogwindow.Config {
	return oplogwindow.Config{Warning: c.Source.OplogHeadroomWarning}
}

// ForSink returns the applier's config.
func (c *Config) ForSink() sink.Config {
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

var sinkKeys = map[string]string{
	"BatchSize": "apply.batch_size", "BatchBytes": "apply.batch_bytes", "BatchWait": "apply.batch_wait",
	"MaxRetryBackoff": "apply.max_retry_backoff", "MaxAckPending": "apply.max_ack_pending",
	"CopyThreshold": "apply.copy_threshold", "Stream": "buffer.stream", "SubjectPrefix": "buffer.subject_prefix",
	"TombstoneRetention": "buffer.max_age",
}

// SinkCollections describes the mapped collections to the applier.
func SinkCollections(mappings []*transform.Mapping) []sink.Collection {
	out := make([]sink.Collection, 0, len(mappings))
	for _, m := range mappings {
		cc := m.Config()
		out = append(out, sink.Collection{
			Namespace:           m.Namespace(),
			Tables:              m.Tables(),
			OnError:             cc.OnError,
			DeadLetterThreshold: cc.DeadLetterThreshold,
			Partitions:          cc.Partitions,
			Filtered:            len(cc.Filter) > 0,
		})
	}
	return out
}

// Units lists what the appliers of these mappings apply, in order: each
// collection's namespace, or its partitions' unit names
// (envelope.Partition.Unit). Status, the cutover's drain and verify's wait
// read one apply checkpoint and one consumer per unit.
func Units(mappings []*transform.Mapping) []string {
	var out []string
	for _, m := range mappings {
		out = append(out, UnitsOf(m)...)
	}
	return out
}

// UnitsOf lists the units of one mapping.
func UnitsOf(m *transform.Mapping) []string {
	return envelope.Units(m.Namespace(), m.Config().Partitions)
}

// UnitLookup returns the units of a namespace among mappings (the
// namespace alone when none maps it).
func UnitLookup(mappings []*transform.Mapping) func(ns string) []string {
	return func(ns string) []string {
		for _, m := range mappings {
			if m.Namespace() == ns {
				return UnitsOf(m)
			}
		}
		return []string{ns}
	}
}

// ForSnapshot returns the snapshot's config (commands may override
// Parallelism, ChunkSize and Collections from their flags).
func (c *Config) ForSnapshot() snapshot.Config {
	return snapshot.Config{Parallelism: c.Snapshot.Parallelism, ChunkSize: c.Snapshot.ChunkSize}
}

var snapshotKeys = map[string]string{"Parallelism": "snapshot.parallelism", "ChunkSize": "snapshot.chunk_size"}

// componentProblems runs every component's Validate on the configs this
// file maps to and places each problem at its YAML key. A key that already
// has a problem from the file's own checks is not reported twice.
func (c *Config) componentProblems(have Problems) Problems {
	seen := map[string]bool{}
	for _, p := range have {
		seen[p.Key] = true
	}
	var ps Problems
	add := func(section string, keys map[string]string, err error, skip ...string) {
		if err == nil {
			return
		}
	next:
		for _, e := range flatten(err) {
			key := section
			var fe interface{ ConfigField() string }
			if errors.As(e, &fe) {
				for _, s := range skip {
					if fe.ConfigField() == s {
						continue next
					}
				}
				if k, ok := keys[fe.ConfigField()]; ok {
					key = k
				}
			}
			if !seen[key] {
				seen[key] = true
				ps = append(ps, c.problem(key, "%v", e))
			}
		}
	}
	add("buffer", bufferKeys, c.ForBuffer().Validate())
	// source.uri is required only by the commands that read MongoDB
	// (RequireSource); check and schema work without it.
	add("source", captureKeys, c.ForCapture().Validate(), "URI")
	add("apply", sinkKeys, c.ForSink().Validate())
	add("snapshot", snapshotKeys, c.ForSnapshot().Validate())
	return ps
}
