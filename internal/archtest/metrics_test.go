package archtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployedQueriesNameExistingMetrics: every replicator metric an alert
// rule or a dashboard panel queries is one the code exports, so a renamed
// metric cannot leave an alert that never fires.
func TestDeployedQueriesNameExistingMetrics(t *testing.T) {
	exported := map[string]bool{}
	def := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(replicator_[a-z_]+)"`)
	productSources(t, func(_ string, src []byte) {
		for _, m := range def.FindAllStringSubmatch(string(src), -1) {
			exported[m[1]] = true
		}
	})
	if len(exported) < 20 {
		t.Fatalf("found only %d exported metrics; is the source scan broken?", len(exported))
	}
	used := regexp.MustCompile(`replicator_[a-z_]+`)
	for _, f := range []string{"deploy/prometheus/alerts.yaml", "deploy/grafana/replicator-dashboard.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
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
