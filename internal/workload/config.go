package workload

import (
	"bytes"
	_ "embed"
	"text/template"
)

// Namespaces names the three source collections ("db.collection").
type Namespaces struct {
	Advisories, Statements, Runs string
}

// DefaultNamespaces are the demo's collections, each in its module's
// database.
func DefaultNamespaces() Namespaces {
	return Namespaces{Advisories: "vuln.advisories", Statements: "vex.statements", Runs: "scheduler.runs"}
}

// InDatabase puts the three collections in one database.
func InDatabase(db string) Namespaces {
	return Namespaces{Advisories: db + ".advisories", Statements: db + ".statements", Runs: db + ".runs"}
}

func (n Namespaces) list() []string { return []string{n.Advisories, n.Statements, n.Runs} }

// ConfigParams fill the replicator config template.
type ConfigParams struct {
	Namespaces
	SourceURI     string
	TargetURL     string
	NatsURL       string // empty: embedded
	DataDir       string
	MetricsListen string
	Pprof         bool   // metrics.pprof
	LogLevel      string // default info
	LogFormat     string // default text
	// Extra is appended verbatim to the buffer section (indented two spaces),
	// e.g. "heartbeat_interval: 500ms".
	BufferExtra []string
	// ApplyExtra lines go into the apply section.
	ApplyExtra []string
	// Replicas is buffer.replicas (0: the key is left out, default 1).
	Replicas int
	// Partitions is the advisories collection's partitions (0: the key is
	// left out, one subject).
	Partitions int
}

//go:embed replicator.yaml.tmpl
var configTemplate string

var tmpl = template.Must(template.New("replicator.yaml").Parse(configTemplate))

// ConfigYAML renders a complete replicator config for the workload's
// collections.
func ConfigYAML(p ConfigParams) string {
	if p.LogLevel == "" {
		p.LogLevel = "info"
	}
	if p.LogFormat == "" {
		p.LogFormat = "text"
	}
	if p.MetricsListen == "" {
		p.MetricsListen = "127.0.0.1:0"
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, p); err != nil {
		panic(err) // the template is fixed and tested
	}
	return b.String()
}
