package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/internal/workload"
)

func startCmd(t testing.TB, bin, sub, cfgPath string, log *os.File) *proc {
	t.Helper()
	return startBinary(t, bin, log, sub, "--config", cfgPath, "--metrics-listen", "off")
}

// TestSeparateCaptureAndApply: `replicator capture` and `replicator apply`
// run as two processes on one config and one embedded buffer (the first
// process runs the server, the other attaches to it); the server's owner is
// killed and restarted mid-stream; nothing is lost.
func TestSeparateCaptureAndApply(t *testing.T) {
	bin := buildBinary(t)
	env := mongotest.New(t)
	ns := workload.InDatabase(env.Database("sep"))
	pgURL := testenv.PostgresURL(t)
	dir := t.TempDir()
	cfgPath, cfg := writeConfig(t, dir, workload.ConfigParams{
		Namespaces: ns, SourceURI: env.URI, TargetURL: pgURL, DataDir: filepath.Join(dir, "data"), LogLevel: "info",
	})
	mappings, _ := cfg.Mappings()
	logf, _ := os.Create(filepath.Join(dir, "log"))
	defer logf.Close()

	capt := startCmd(t, bin, "capture", cfgPath, logf)
	time.Sleep(2 * time.Second)
	apply := startCmd(t, bin, "apply", cfgPath, logf)
	defer func() { capt.kill(t); apply.kill(t) }()

	ctx := context.Background()
	g := workload.New(env.Client, ns, workload.Options{Seed: 21})
	if err := g.Run(ctx, 0, 1500); err != nil {
		t.Fatal(err)
	}
	capt.kill(t) // the embedded server's owner
	if err := g.Run(ctx, 0, 3000); err != nil {
		t.Fatal(err)
	}
	capt = startCmd(t, bin, "capture", cfgPath, logf)
	pool := testenv.Pool(t, pgURL)
	if _, ok := tryEqual(t, env, pool, mappings, 90*time.Second, nil); !ok {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("not equal; log:\n%s", b)
	}
}
