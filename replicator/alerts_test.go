package replicator_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAlertRules runs the alert rules' unit tests (deploy/prometheus/
// alerts_test.yaml) with promtool, which `make test` installs (Debian's
// prometheus package): rule syntax, and for each incident the alert that
// fires, when, with which labels (job and instance kept) and annotations.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run `make test-deps` (installs Debian's prometheus package)")
	}
	dir := filepath.Join("..", "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestDeployedQueriesNameExistingMetrics: every replicator metric an alert
// rule or a dashboard panel queries is one the code exports, so a renamed
// metric cannot leave an alert that never fires.
func TestDeployedQueriesNameExistingMetrics(t *testing.T) {
	exported := map[string]bool{}
	def := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(replicator_[a-z_]+)"`)
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "internal") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range def.FindAllStringSubmatch(string(b), -1) {
			exported[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(exported) < 20 {
		t.Fatalf("found only %d exported metrics; is the source scan broken?", len(exported))
	}
	used := regexp.MustCompile(`replicator_[a-z_]+`)
	for _, f := range []string{"../deploy/prometheus/alerts.yaml", "../deploy/grafana/replicator-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range used.FindAllString(string(b), -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if !exported[name] && !exported[base] && !strings.HasPrefix(name, "replicator_dashboard") {
				t.Errorf("%s queries %s, which no component exports", f, name)
			}
		}
	}
}
