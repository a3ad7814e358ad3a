package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/config"
)

// buildBinary builds cmd/replicator into a temporary directory.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "replicator")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/replicator")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is the replicator binary running `run`.
type proc struct {
	cmd  *exec.Cmd
	done chan error
}

// writeConfig writes the replicator's config for p as dir/replicator.yaml
// and returns its path and the parsed config.
func writeConfig(t testing.TB, dir string, p workload.ConfigParams) (string, *config.Config) {
	t.Helper()
	yaml := workload.ConfigYAML(p)
	cfgPath := filepath.Join(dir, "replicator.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(yaml), cfgPath)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfgPath, cfg
}

func startProc(t testing.TB, bin, cfgPath string, log *os.File) *proc {
	t.Helper()
	return startBinary(t, bin, log, "run", "--config", cfgPath, "--metrics-listen", "off")
}

// startBinary starts the replicator binary with args, its output going to
// log.
func startBinary(t testing.TB, bin string, log *os.File, args ...string) *proc {
	t.Helper()
	return startBinaryEnv(t, bin, log, nil, args...)
}

// startBinaryEnv is startBinary with env added to the test's environment.
func startBinaryEnv(t testing.TB, bin string, log *os.File, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// If the test dies, the replicator dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p
}

func (p *proc) kill(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err // a later kill (a deferred one) does not wait forever
}

// TestCrashKill9: the real binary, with its embedded NATS, is killed with
// SIGKILL at random moments at least 20 times during a workload of at least
// 50,000 events and restarted each time; the final state equals MongoDB's,
// with no duplicate child rows and no dead letters.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	bin := buildBinary(t)
	env := mongotest.New(t)
	ns := workload.InDatabase(env.Database("crash"))
	pgURL := testenv.PostgresURL(t)
	dir := t.TempDir()
	cfgPath, cfg := writeConfig(t, dir, workload.ConfigParams{
		Namespaces: ns, SourceURI: env.URI, TargetURL: pgURL, DataDir: filepath.Join(dir, "data"),
		LogLevel: "info", BufferExtra: []string{"heartbeat_interval: 500ms"},
	})
	mappings, err := cfg.Mappings()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "replicator.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()

	p := startProc(t, bin, cfgPath, logf)
	defer func() {
		if p != nil {
			p.kill(t)
		}
	}()
	time.Sleep(2 * time.Second) // first start: the position is saved at T0

	events := int64(50_000)
	if n := os.Getenv("CRASH_EVENTS"); n != "" {
		events, _ = strconv.ParseInt(n, 10, 64)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var genErr [2]error
	gens := [2]*workload.Generator{
		workload.New(env.Client, ns, workload.Options{Seed: 11}),
		workload.New(env.Client, ns, workload.Options{Seed: 12}),
	}
	var genDone sync.WaitGroup
	for i, g := range gens {
		wg.Add(1)
		genDone.Add(1)
		go func() {
			defer wg.Done()
			defer genDone.Done()
			genErr[i] = g.Run(ctx, 0, events/2)
		}()
	}
	finished := make(chan struct{})
	go func() { genDone.Wait(); close(finished) }()

	rnd := rand.New(rand.NewPCG(7, 7))
	kills := 0
	for {
		select {
		case <-finished:
		default:
		}
		workloadDone := false
		select {
		case <-finished:
			workloadDone = true
		default:
		}
		if workloadDone && kills >= 20 {
			break
		}
		time.Sleep(time.Duration(700+rnd.IntN(1800)) * time.Millisecond)
		p.kill(t)
		kills++
		if os.Getenv("CRASH_TEAR_CONSUMERS") != "" {
			tearConsumers(t, filepath.Join(dir, "data"))
		}
		if os.Getenv("CRASH_CHECK_TAIL") != "" {
			checkTail(t, cfg.ForBuffer(), pgURL)
		}
		p = startProc(t, bin, cfgPath, logf)
	}
	wg.Wait()
	for _, err := range genErr {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := gens[0].Stats().Events + gens[1].Stats().Events
	t.Logf("%d kills during a workload of %d events", kills, total)
	if total < events || kills < 20 {
		t.Fatalf("workload %d events, %d kills: too few", total, kills)
	}

	pool := testenv.Pool(t, pgURL)
	failed := func() error {
		select {
		case err := <-p.done:
			p.done <- err
			return err
		default:
			return nil
		}
	}
	r, ok := tryEqual(t, env, pool, mappings, 2*time.Minute, failed)
	if !ok {
		p.kill(t)
		p = nil
		t.Logf("PostgreSQL does not equal MongoDB:\n%s", r)
		diagnose(t, r, mappings, pool, cfg.ForBuffer())
		if b, err := os.ReadFile(logf.Name()); err == nil {
			keep := filepath.Join(os.TempDir(), "replicator-crash.log")
			_ = os.WriteFile(keep, b, 0o644)
			t.Logf("replicator log kept in %s", keep)
		}
		t.Fatalf("PostgreSQL does not equal MongoDB:\n%s", r)
	}
	t.Logf("equal after %d kills: %s", kills, totalRows(r))
	if n := deadLetters(t, pool); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
	// A graceful stop exits 0.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("SIGTERM: %v (log %s)", err, logf.Name())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no exit within 60s of SIGTERM")
	}
	p = nil
}

// checkTail reports a buffer whose last sequence is below an apply
// checkpoint: the buffer lost messages the applier had already applied.
func checkTail(t *testing.T, bcfg buffer.Config, pgURL string) {
	t.Helper()
	ctx := context.Background()
	b, err := buffer.Open(ctx, bcfg, nil)
	if err != nil {
		t.Log(err)
		return
	}
	defer b.Close()
	s, err := b.JetStream().Stream(ctx, b.Config().Stream)
	if err != nil {
		t.Log(err)
		return
	}
	last := s.CachedInfo().State.LastSeq
	pool := testenv.Pool(t, pgURL)
	var cp int64
	_ = pool.QueryRow(ctx, "SELECT coalesce(max(stream_seq), 0) FROM replicator.apply_checkpoints").Scan(&cp)
	pool.Close()
	if uint64(cp) > last {
		t.Errorf("torn buffer tail: stream last seq %d < apply checkpoint %d", last, cp)
	} else {
		t.Logf("after kill: stream last seq %d, max apply checkpoint %d", last, cp)
	}
}

// tearConsumers leaves every durable consumer's directory in the buffer as
// a SIGKILL part-way through its creation or removal can: the state file
// without meta.sum. The restarted server does not load such a consumer, and
// a consumer created again under the same name inherits its state.
func tearConsumers(t *testing.T, dataDir string) {
	t.Helper()
	sums, err := filepath.Glob(filepath.Join(dataDir, "jetstream", "jetstream", "*", "streams", "*", "obs", "*", "meta.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sums {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
}
