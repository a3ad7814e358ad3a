package main

import (
	"strings"
	"testing"

	"github.com/mongopg/replicator/internal/testenv"
)

func TestMigrateCommand(t *testing.T) {
	url := testenv.PostgresURL(t)
	steps := []struct {
		name string
		want string
	}{
		{"first run creates the schema", "upgraded to version"},
		{"second run changes nothing", "is current"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, out, errs := run(t, "migrate", "--target", url)
			if code != 0 || !strings.Contains(out, s.want) {
				t.Fatalf("code %d, stdout %q, stderr %q", code, out, errs)
			}
		})
	}
	t.Run("no target", func(t *testing.T) {
		code, _, errs := run(t, "migrate", "--config", "does-not-exist.yaml")
		if code == 0 {
			t.Fatalf("succeeded without a target: %s", errs)
		}
	})
}
