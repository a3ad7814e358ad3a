package replicator_test

import (
	"os/exec"
	"path/filepath"
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
