package replicator

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version is set at build time with
// -ldflags "-X github.com/mongopg/replicator/replicator.version=v1.2.3";
// otherwise Version falls back to what the Go toolchain recorded.
var version string

// BuildInfo says which build is running.
type BuildInfo struct {
	Version   string `json:"version"`    // the release, or "devel"
	Revision  string `json:"revision"`   // the VCS revision, "" when unknown
	Modified  bool   `json:"modified"`   // built from a tree with uncommitted changes
	GoVersion string `json:"go_version"` // the Go toolchain's version
}

// Build returns the running build's information: the version stamped at
// build time, else the main module's version (set by `go install m@v`),
// else "devel"; and the VCS revision the toolchain recorded.
func Build() BuildInfo {
	b := BuildInfo{Version: version, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

// String is the one-line form `replicator version` prints.
func (b BuildInfo) String() string {
	s := "replicator " + b.Version
	if b.Revision != "" {
		s += " (" + b.Revision
		if b.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s + " " + b.GoVersion
}

// newBuildInfoMetric is replicator_build_info: 1, labelled with the build.
// Alerts join on it to recognise a replicator's scrape target whatever job
// name the scrape configuration gives it.
func newBuildInfoMetric(b BuildInfo) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "replicator_build_info",
		Help: "Always 1; its labels name the running build.",
	}, []string{"version", "revision", "go_version"})
	g.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
	return g
}
