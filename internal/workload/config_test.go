package workload

import (
	"os"
	"testing"

	"github.com/mongopg/replicator/replicator/config"
)

func TestConfigYAMLIsValid(t *testing.T) {
	for name, data := range map[string]string{
		"rendered": ConfigYAML(ConfigParams{Namespaces: DefaultNamespaces(), SourceURI: "mongodb://h/?replicaSet=rs0",
			TargetURL: "postgres://p@h/db", DataDir: "d", BufferExtra: []string{"heartbeat_interval: 500ms"}}),
		"deploy/demo": mustRead(t, "../../deploy/demo/replicator.yaml"),
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(data), name)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			ms, err := cfg.Mappings()
			if err != nil || len(ms) != 3 {
				t.Fatalf("mappings: %d, %v", len(ms), err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
