package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/internal/workload"
)

// TestClusterFailover: capture and apply run as separate processes of the
// real binary on a three-node JetStream cluster (buffer.replicas: 3), the
// advisories collection split into four partitions: two capture processes
// (one holds the lease, one waits as a standby) and three apply processes
// sharing the six units (four partitions and two collections) through
// their claims. During a workload the stream's leader node crashes (every
// connection of it reset at once, testenv's ClusterNode.Crash) and is
// started again, then another node is shut down and started again (never
// two at once: R3 needs a quorum of two), then the active capture process and an apply process
// holding claims are killed with SIGKILL. The standby takes the lease, the
// surviving apply processes take the dead one's units, and in the end
// PostgreSQL equals MongoDB with no dead letters, every unit has its
// checkpoint row and is claimed by exactly one surviving apply process
// (none holding more than its share), and the apply lag of every unit
// falls below 5s by itself and stays there (heartbeats).
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	started := time.Now()
	bin := buildBinary(t)
	cluster := testenv.NATSCluster(t, 3)
	env := mongotest.New(t)
	ns := workload.InDatabase(env.Database("cluster"))
	pgURL := testenv.PostgresURL(t)
	dir := t.TempDir()
	const claimTTL = 3 * time.Second
	cfgPath, cfg := writeConfig(t, dir, workload.ConfigParams{
		Namespaces: ns, SourceURI: env.URI, TargetURL: pgURL, NatsURL: cluster.URL(),
		DataDir: filepath.Join(dir, "data"), LogLevel: "info",
		Replicas: 3, Partitions: 4,
		BufferExtra: []string{"heartbeat_interval: 500ms"},
		ApplyExtra:  []string{"claim_ttl: " + claimTTL.String()},
	})
	mappings, err := cfg.Mappings()
	if err != nil {
		t.Fatal(err)
	}
	stream := cfg.ForBuffer().WithDefaults().Stream
	source := cfg.ForCapture().WithDefaults().Source
	units := []string{
		ns.Advisories + "$p0of4", ns.Advisories + "$p1of4", ns.Advisories + "$p2of4", ns.Advisories + "$p3of4",
		ns.Statements, ns.Runs,
	}

	f := &fleet{t: t, bin: bin, cfgPath: cfgPath, dir: dir}
	defer f.stop()
	kv := openClusterKV(t, cluster.URL(), stream)

	// The first capture process takes the lease before the second starts,
	// so which one is active is known; the apply processes start together.
	capt1 := f.start("capture-1", "capture", false)
	f.waitFor(60*time.Second, "capture-1 to hold the capture lease", func() (bool, string) {
		pid, err := kv.leasePID(source)
		return err == nil && pid == capt1.pid(), fmt.Sprintf("lease pid %d, %v", pid, err)
	})
	f.start("capture-2", "capture", false)
	for i := range 3 {
		f.start(fmt.Sprintf("apply-%d", i+1), "apply", true)
	}
	f.waitFor(60*time.Second, "every unit claimed by one apply process", func() (bool, string) {
		return f.claimsSettled(kv, units)
	})
	t.Logf("%s: 2 capture and 3 apply processes running, units claimed", since(started))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gen := workload.New(env.Client, ns, workload.Options{Seed: 41})
	genDone := make(chan error, 1)
	go func() { genDone <- gen.Run(ctx, 400, 0) }()
	pause := func(d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if err := f.exited(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-genDone:
				t.Fatalf("workload stopped early: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	pause(4 * time.Second)

	// bounce stops a node for 5 s, crashed (every connection reset, no
	// leadership handed over) or shut down, and waits until the cluster
	// is healthy again.
	bounce := func(n *testenv.ClusterNode, crash bool, what string) {
		how := "shutting down"
		if crash {
			how = "crashing"
		}
		t.Logf("%s: %s %s, %s (%d events so far)", since(started), how, n.Name, what, gen.Stats().Events)
		if crash {
			n.Crash()
		} else {
			n.Shutdown()
		}
		pause(5 * time.Second)
		n.Start()
		cluster.WaitHealthy(60 * time.Second)
		t.Logf("%s: %s started again, cluster healthy", since(started), n.Name)
		pause(2 * time.Second)
	}

	// The stream leader goes down, then comes back.
	first := cluster.StreamLeader(stream)
	bounce(first, true, "the leader of stream "+stream)

	// Another node: the stream's leader now if that is another one.
	second := cluster.StreamLeader(stream)
	leads := second != first
	if !leads {
		for _, n := range cluster.Nodes {
			if n != first {
				second = n
				break
			}
		}
	}
	bounce(second, false, fmt.Sprintf("another node (stream leader: %v)", leads))

	// The active capture process dies; the standby takes over.
	pid, err := kv.leasePID(source)
	if err != nil {
		t.Fatalf("capture lease: %v", err)
	}
	active := f.byPID(pid)
	if active == nil || active.sub != "capture" {
		t.Fatalf("the capture lease names pid %d, not one of the capture processes", pid)
	}
	standby := f.other(active)
	t.Logf("%s: SIGKILL to %s (pid %d), holding the capture lease (%d events so far)", since(started), active.name, pid, gen.Stats().Events)
	killedAt := time.Now()
	f.kill(active)
	f.waitFor(30*time.Second, standby.name+" to take the capture lease", func() (bool, string) {
		pid, err := kv.leasePID(source)
		return err == nil && pid == standby.pid(), fmt.Sprintf("lease pid %d, %v", pid, err)
	})
	t.Logf("%s: %s holds the capture lease %s after the kill", since(started), standby.name, since(killedAt))
	pause(3 * time.Second)

	// An apply process holding claims dies; the others take its units.
	claims, err := kv.claims()
	if err != nil {
		t.Fatalf("apply claims: %v", err)
	}
	var victim *fleetProc
	for _, p := range f.running("apply") {
		if slices.ContainsFunc(claims, func(c claimEntry) bool { return c.PID == p.pid() }) {
			victim = p
			break
		}
	}
	if victim == nil {
		t.Fatalf("no running apply process holds a claim: %+v", claims)
	}
	var held []string
	for _, c := range claims {
		if c.PID == victim.pid() {
			held = append(held, c.Unit)
		}
	}
	t.Logf("%s: SIGKILL to %s (pid %d), holding %q (%d events so far)", since(started), victim.name, victim.pid(), held, gen.Stats().Events)
	killedAt = time.Now()
	f.kill(victim)
	f.waitFor(30*time.Second, "the surviving apply processes to claim every unit", func() (bool, string) {
		return f.claimsSettled(kv, units)
	})
	t.Logf("%s: every unit claimed again %s after the kill", since(started), since(killedAt))
	pause(3 * time.Second)

	cancel()
	if err := <-genDone; err != nil {
		t.Fatalf("workload: %v", err)
	}
	stats := gen.Stats()
	t.Logf("%s: workload stopped after %d events (%d operations)", since(started), stats.Events, sumOps(stats))

	pool := testenv.Pool(t, pgURL)
	r, ok := tryEqual(t, env, pool, mappings, 120*time.Second, f.exited)
	if !ok {
		diagnose(t, r, mappings, pool, cfg.ForBuffer())
		t.Logf("the stream on each node:\n%s", cluster.StreamReplicas(stream))
		t.Fatalf("PostgreSQL does not equal MongoDB:\n%s", r)
	}
	t.Logf("%s: equal: %s", since(started), totalRows(r))
	if n := deadLetters(t, pool); n != 0 {
		t.Errorf("%d dead letters", n)
	}

	// One checkpoint row per unit, named by the partition for the
	// partitioned collection, and no other.
	rows, err := pool.Query(context.Background(), "SELECT collection FROM replicator.apply_checkpoints ORDER BY collection")
	if err != nil {
		t.Fatal(err)
	}
	var cps []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cps = append(cps, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(units))
	if !slices.Equal(cps, want) {
		t.Errorf("checkpoint rows %q, want %q", cps, want)
	}

	// Each unit is claimed by exactly one surviving apply process, in the
	// KV bucket and in its replicator_apply_claimed, and stays so.
	if ok, why := f.claimsSettled(kv, units); !ok {
		t.Errorf("claims after the run: %s", why)
	}

	// Heartbeats bring every unit's apply lag back below 5s and keep it
	// there with no workload: below 5s for 8s on end (without heartbeats it
	// would pass 5s). A unit's lag is the sum over the processes reporting
	// it (only its holder does).
	var lastLag string
	var below time.Time // since when every unit's lag is below 5s
	f.waitFor(60*time.Second, "every unit's apply lag below 5s for 8s", func() (bool, string) {
		lag, reporters := map[string]float64{}, map[string]int{}
		for _, p := range f.running("apply") {
			m, err := scrapeUnits(p.metrics, "replicator_apply_lag_seconds")
			if err != nil {
				return false, err.Error()
			}
			for u, v := range m {
				lag[u] += v
				reporters[u]++
			}
		}
		lastLag = fmt.Sprint(lag)
		for _, u := range units {
			if reporters[u] == 0 || lag[u] >= 5 {
				below = time.Time{}
				return false, fmt.Sprintf("lag %v, reported by %v", lag, reporters)
			}
		}
		if below.IsZero() {
			below = time.Now()
		}
		return time.Since(below) >= 8*time.Second, fmt.Sprintf("lag %v, below 5s for %s", lag, since(below))
	})
	t.Logf("%s: apply lag recovered: %s", since(started), lastLag)

	for _, p := range f.procs {
		t.Logf("%s: %d warnings, %d errors", p.name, p.count("level=WARN"), p.count("level=ERROR"))
	}
	// A publish retried while its first try is still in flight can be
	// refused by the cluster ("duplicate message id is in process").
	t.Logf("log lines mentioning a duplicate message id: %d", f.count("duplicate message id"))
}

// since is the time since t, rounded for the log.
func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

func sumOps(s workload.Stats) int64 {
	var n int64
	for _, v := range s.Ops {
		n += v
	}
	return n
}

// fleet is the replicator processes of one test, each writing its output
// to its own file; stop kills the ones still running and prints every log
// if the test failed.
type fleet struct {
	t       *testing.T
	bin     string
	cfgPath string
	dir     string
	procs   []*fleetProc
}

type fleetProc struct {
	*proc
	name, sub string
	metrics   string // the /metrics address, "" when off
	logPath   string
	killed    bool
}

func (p *fleetProc) pid() int { return p.cmd.Process.Pid }

// start runs `replicator sub` with the fleet's config, serving metrics on a
// free loopback port when withMetrics.
func (f *fleet) start(name, sub string, withMetrics bool) *fleetProc {
	f.t.Helper()
	logPath := filepath.Join(f.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		f.t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	listen := "off"
	if withMetrics {
		listen = freeLoopbackAddr(f.t)
	}
	p := &fleetProc{name: name, sub: sub, logPath: logPath,
		proc: startBinary(f.t, f.bin, logf, sub, "--config", f.cfgPath, "--metrics-listen", listen)}
	if withMetrics {
		p.metrics = listen
	}
	f.procs = append(f.procs, p)
	f.t.Logf("started %s (replicator %s, pid %d, metrics %s)", name, sub, p.pid(), listen)
	return p
}

func (f *fleet) kill(p *fleetProc) {
	f.t.Helper()
	p.kill(f.t)
	p.killed = true
}

// running lists the processes of the subcommand not killed by the test.
func (f *fleet) running(sub string) []*fleetProc {
	var out []*fleetProc
	for _, p := range f.procs {
		if p.sub == sub && !p.killed {
			out = append(out, p)
		}
	}
	return out
}

func (f *fleet) byPID(pid int) *fleetProc {
	for _, p := range f.procs {
		if !p.killed && p.pid() == pid {
			return p
		}
	}
	return nil
}

// other is the running process of p's subcommand that is not p.
func (f *fleet) other(p *fleetProc) *fleetProc {
	f.t.Helper()
	for _, q := range f.running(p.sub) {
		if q != p {
			return q
		}
	}
	f.t.Fatalf("no %s process besides %s", p.sub, p.name)
	return nil
}

// exited reports a process the test did not kill that stopped.
func (f *fleet) exited() error {
	for _, p := range f.procs {
		if p.killed {
			continue
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s (replicator %s, pid %d) exited by itself: %v", p.name, p.sub, p.pid(), err)
		default:
		}
	}
	return nil
}

// waitFor polls cond until it holds, failing the test after timeout with
// cond's last explanation, or when a process exits by itself.
func (f *fleet) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := f.exited(); err != nil {
			f.t.Fatalf("waiting for %s: %v", what, err)
		}
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("waited %s for %s: %s", timeout, what, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// claimsSettled reports whether each unit is claimed, in the claim bucket,
// by a running apply process, that process alone reports
// replicator_apply_claimed 1 for it, and no process holds more than its
// share.
func (f *fleet) claimsSettled(kv *clusterKV, units []string) (bool, string) {
	claims, err := kv.claims()
	if err != nil {
		return false, err.Error()
	}
	holder := map[string]int{}
	for _, c := range claims {
		if _, dup := holder[c.Unit]; dup {
			return false, fmt.Sprintf("unit %s has two claim keys", c.Unit)
		}
		holder[c.Unit] = c.PID
	}
	claimedBy, perProc := map[string][]string{}, map[string]int{}
	apply := f.running("apply")
	for _, p := range apply {
		m, err := scrapeUnits(p.metrics, "replicator_apply_claimed")
		if err != nil {
			return false, fmt.Sprintf("%s: %v", p.name, err)
		}
		for u, v := range m {
			if v == 1 {
				claimedBy[u] = append(claimedBy[u], p.name)
				perProc[p.name]++
			}
		}
	}
	for _, u := range units {
		pid, ok := holder[u]
		if !ok {
			return false, fmt.Sprintf("no claim key for %s (claims %+v)", u, claims)
		}
		p := f.byPID(pid)
		if p == nil || p.sub != "apply" {
			return false, fmt.Sprintf("%s claimed by pid %d, not a running apply process", u, pid)
		}
		if by := claimedBy[u]; len(by) != 1 || by[0] != p.name {
			return false, fmt.Sprintf("%s: claim key names %s, replicator_apply_claimed is 1 on %q", u, p.name, by)
		}
	}
	if len(claims) != len(units) {
		return false, fmt.Sprintf("%d claim keys for %d units: %+v", len(claims), len(units), claims)
	}
	// Shared out: no process holds more than ⌈units/processes⌉.
	share := (len(units) + len(apply) - 1) / len(apply)
	for name, n := range perProc {
		if n > share {
			return false, fmt.Sprintf("%s holds %d units, more than its share %d (%v)", name, n, share, perProc)
		}
	}
	return true, ""
}

// count is how many lines of p's log contain s.
func (p *fleetProc) count(s string) int {
	b, _ := os.ReadFile(p.logPath)
	return strings.Count(string(b), s)
}

func (f *fleet) count(s string) int {
	n := 0
	for _, p := range f.procs {
		n += p.count(s)
	}
	return n
}

// stop kills every process still running and, if the test failed, prints
// their logs.
func (f *fleet) stop() {
	for _, p := range f.procs {
		if !p.killed {
			f.kill(p)
		}
	}
	if !f.t.Failed() {
		return
	}
	for _, p := range f.procs {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			f.t.Logf("%s: %v", p.name, err)
			continue
		}
		f.t.Logf("==== %s (replicator %s, pid %d) log:\n%s", p.name, p.sub, p.pid(), b)
	}
}

// clusterKV reads the capture lease and the apply claims from the buffer's
// KV buckets.
type clusterKV struct {
	js      jetstream.JetStream
	capture string // the bucket of positions and leases
	apply   string // the bucket of apply claims
}

// claimEntry is an apply claim's stored value.
type claimEntry struct {
	Holder string `json:"holder"`
	Host   string `json:"host"`
	PID    int    `json:"pid"`
	Unit   string `json:"unit"`
}

func openClusterKV(t *testing.T, url, stream string) *clusterKV {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &clusterKV{js: js, capture: stream + "_capture", apply: stream + "_apply"}
}

// leasePID is the pid in the capture lease of source.
func (k *clusterKV) leasePID(source string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	kv, err := k.js.KeyValue(ctx, k.capture)
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, "lease."+source)
	if err != nil {
		return 0, err
	}
	var v struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return 0, err
	}
	return v.PID, nil
}

// claims lists the apply claims (keys "unit.*").
func (k *clusterKV) claims() ([]claimEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	kv, err := k.js.KeyValue(ctx, k.apply)
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeysFiltered(ctx, "unit.>")
	if err != nil {
		return nil, err
	}
	var out []claimEntry
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired or deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		var c claimEntry
		if err := json.Unmarshal(e.Value(), &c); err != nil {
			return nil, fmt.Errorf("claim %s: %w", key, err)
		}
		out = append(out, c)
	}
	return out, ctx.Err()
}

// scrapeUnits reads the samples of one metric with a collection label from
// the /metrics endpoint at addr, by collection.
func scrapeUnits(addr, name string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return nil, fmt.Errorf("metrics line %q", line)
		}
		_, col, ok := strings.Cut(labels, `collection="`)
		if !ok {
			continue
		}
		col, _, _ = strings.Cut(col, `"`) // unit names hold no quote
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[col] = v
	}
	return out, sc.Err()
}
