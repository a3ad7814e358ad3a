package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	yamlv3 "gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator/config"
)

// prometheusServer is a real Prometheus (Debian's package, installed by
// `make test-deps`) scraping one target every second and evaluating
// deploy/prometheus/alerts.yaml every second.
type prometheusServer struct {
	url string
	cmd *exec.Cmd
}

// startPrometheus starts Prometheus scraping target under a job name that
// is not "replicator" (like the Kubernetes manifest's annotation scraping).
func startPrometheus(t *testing.T, target string) *prometheusServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: run `make test-deps` (installs Debian's prometheus package)")
	}
	rules, err := filepath.Abs("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: kubernetes-pods
    static_configs: [{targets: [%q]}]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	p := &prometheusServer{url: "http://" + addr, cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("prometheus not ready within 30s:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// query runs an instant query and returns its result vector.
func (p *prometheusServer) query(t *testing.T, q string) []map[string]any {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []map[string]any `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	if r.Status != "success" {
		t.Fatalf("query %s: %s", q, r.Error)
	}
	return r.Data.Result
}

// alert is one entry of /api/v1/alerts.
type alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p *prometheusServer) alerts(t *testing.T) []alert {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []alert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r.Data.Alerts
}

// waitAlert waits until alert name is in one of states with every label
// of want (job and instance included), and returns how long it took.
func (p *prometheusServer) waitAlert(t *testing.T, name string, want map[string]string, timeout time.Duration, states ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		for _, a := range p.alerts(t) {
			if a.Labels["alertname"] != name || !contains(states, a.State) {
				continue
			}
			ok := true
			for k, v := range want {
				ok = ok && a.Labels[k] == v
			}
			if ok {
				return time.Since(start)
			}
		}
		if time.Since(start) > timeout {
			t.Fatalf("alert %s %v not %v within %s; alerts: %+v", name, want, states, timeout, p.alerts(t))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestAlertsAndDashboardWithRealPrometheus: a real Prometheus scrapes the
// real binary (under a job name other than "replicator") and evaluates the
// shipped alert rules, with continuous verification on. Every dashboard
// query returns data, and each incident raises its alert, with the
// target's job and instance: a row changed in PostgreSQL behind the
// applier's back (found by verification), a dead letter, a collection
// whose apply halts, a collection capture holds, PostgreSQL stopped (apply
// lag), the binary down, and lost history.
func TestAlertsAndDashboardWithRealPrometheus(t *testing.T) {
	bin := buildBinary(t)
	env := mongotest.New(t, mongotest.Options{OplogMaxEvents: 3000})
	env.RequireEmulator("a 3000-entry oplog, to lose history")
	pg := testenv.NewPostgresServer(t)
	pgURL := pg.Database()
	nats := testenv.NATS(t)
	a, b := env.Database("proma"), env.Database("promb")
	ns := workload.Namespaces{Advisories: a + ".advisories", Statements: b + ".statements", Runs: b + ".runs"}
	metrics := freeLoopbackAddr(t)
	dir := t.TempDir()
	yaml := workload.ConfigYAML(workload.ConfigParams{Namespaces: ns, SourceURI: env.URI, TargetURL: pgURL,
		NatsURL: nats.URL, DataDir: dir, MetricsListen: metrics, LogLevel: "warn", BufferExtra: []string{"heartbeat_interval: 500ms"}})
	for _, r := range []struct{ old, new string }{
		{"source:\n", "source:\n  on_history_lost: resync\n"},
		{"    table: scheduler.runs\n", "    table: scheduler.runs\n    on_error: halt\n"},
		{"    table: vex.statements\n", "    table: vex.statements\n    on_error: halt\n"},
	} {
		if !strings.Contains(yaml, r.old) {
			t.Fatalf("config template changed: no %q", r.old)
		}
		yaml = strings.Replace(yaml, r.old, r.new, 1)
	}
	// Continuous verification, a pass every second: its panels and alerts.
	yaml += "verify:\n  enabled: true\n  interval: 1s\n"
	cfgPath := filepath.Join(dir, "replicator.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(yaml), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	mappings, err := cfg.Mappings()
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "replicator.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			t.Logf("replicator log:\n%s", out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	proc := startBinary(t, bin, logFile, "run", "--config", cfgPath)
	defer func() {
		if proc != nil {
			proc.kill(t)
		}
	}()
	prom := startPrometheus(t, metrics)
	target := map[string]string{"job": "kubernetes-pods", "instance": metrics}
	pool := testenv.Pool(t, pgURL)
	failed := func() error {
		select {
		case err := <-proc.done:
			return fmt.Errorf("replicator exited: %v", err)
		default:
			return nil
		}
	}
	gen := func(seed uint64, n int64) {
		if err := workload.New(env.Client, ns, workload.Options{Seed: seed, InitialDocs: 1}).Run(ctx, 0, n); err != nil {
			t.Fatal(err)
		}
	}
	gen(81, 600)
	waitEqual(t, env, pool, mappings, time.Minute, failed)
	// Caught up, every collection's next pass is equal.
	sel := fmt.Sprintf(`job="kubernetes-pods", instance=%q`, metrics)
	waitQuery(t, prom, "replicator_verify_equal{"+sel+"} == 1", len(mappings), time.Minute, failed)

	// Every dashboard query returns data for the whole job and instance.
	dash, err := os.ReadFile("../../deploy/grafana/replicator-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var board struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &board); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer(`"$job"`, `"kubernetes-pods"`, `"$instance"`, `"`+metrics+`"`, `"$collection"`, `".*"`)
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range board.Panels {
		for _, tg := range p.Targets {
			q := vars.Replace(tg.Expr)
			for len(prom.query(t, q)) == 0 {
				if time.Now().After(deadline) {
					t.Errorf("dashboard panel %q: no data for %s", p.Title, q)
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Verification passes end every second: ReplicatorVerifyStale's
	// expression, evaluated now (its offset dropped), joins the counters
	// and timestamps of every collection and finds them recent; with the
	// last pass required to end in the future, it finds all of them stale.
	stale := alertExpr(t, "ReplicatorVerifyStale")
	now := strings.Replace(stale, " offset 6h", "", 1)
	if now == stale {
		t.Fatalf("ReplicatorVerifyStale changed: no offset 6h in %s", stale)
	}
	if r := prom.query(t, now); len(r) != 0 {
		t.Errorf("ReplicatorVerifyStale (offset dropped) finds stale collections while passes complete: %v", r)
	}
	future := strings.Replace(now, "> time() - 6 * 3600", "> time() + 60", 1)
	if future == now {
		t.Fatalf("ReplicatorVerifyStale changed: no '> time() - 6 * 3600' in %s", now)
	}
	if r := prom.query(t, future); len(r) != len(mappings) {
		t.Errorf("ReplicatorVerifyStale with no recent pass: %d collections, want %d: %v", len(r), len(mappings), r)
	}
	// (A pass that found rows in flight before the catch-up may have fired
	// ReplicatorVerifyDifferences; the next evaluation after an equal pass
	// resolves it.)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		var active []alert
		for _, a := range prom.alerts(t) {
			if strings.HasPrefix(a.Labels["alertname"], "ReplicatorVerify") {
				active = append(active, a)
			}
		}
		if len(active) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verification alerts while every collection is equal: %+v", active)
		}
	}

	// A row changed in PostgreSQL behind the applier's back: the next pass
	// finds it and ReplicatorVerifyDifferences fires.
	if tag, err := pool.Exec(ctx, `UPDATE vuln.advisories SET severity = 'tampered' WHERE id = (SELECT min(id) FROM vuln.advisories)`); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("tamper: %v %v", tag, err)
	}
	took := prom.waitAlert(t, "ReplicatorVerifyDifferences", merge(target, "collection", ns.Advisories), time.Minute, "firing")
	t.Logf("ReplicatorVerifyDifferences firing after %s", took)
	waitQuery(t, prom, fmt.Sprintf(`replicator_verify_differences{%s, collection=%q, table="vuln.advisories", kind="different"} == 1`, sel, ns.Advisories), 1, 10*time.Second, failed)
	waitQuery(t, prom, fmt.Sprintf(`replicator_verify_equal{%s, collection=%q} == 0`, sel, ns.Advisories), 1, 10*time.Second, failed)

	// A dead letter: a required field missing in an advisory.
	adb, acoll, _ := strings.Cut(ns.Advisories, ".")
	if _, err := env.Client.Database(adb).Collection(acoll).InsertOne(ctx, poisonAdvisory("prom-dead-letter", func(d bson.D) bson.D {
		return setField(d, "tenantId", nil)
	})); err != nil {
		t.Fatal(err)
	}
	took = prom.waitAlert(t, "ReplicatorDeadLetters", merge(target, "collection", ns.Advisories), time.Minute, "firing")
	t.Logf("ReplicatorDeadLetters firing after %s", took)

	// A collection whose apply halts: a CHECK violation under on_error: halt.
	if _, err := pool.Exec(ctx, `ALTER TABLE scheduler.runs ADD CONSTRAINT runs_cost_check CHECK (cost >= 0)`); err != nil {
		t.Fatal(err)
	}
	cost, err := bson.ParseDecimal128("-1.5")
	if err != nil {
		t.Fatal(err)
	}
	rdb, rcoll, _ := strings.Cut(ns.Runs, ".")
	if _, err := env.Client.Database(rdb).Collection(rcoll).InsertOne(ctx, bson.D{{Key: "_id", Value: "prom-halt"},
		{Key: "tenantId", Value: poisonTenant}, {Key: "state", Value: "queued"}, {Key: "cost", Value: cost}}); err != nil {
		t.Fatal(err)
	}
	took = prom.waitAlert(t, "ReplicatorCollectionHalted", merge(target, "collection", ns.Runs), time.Minute, "firing")
	t.Logf("ReplicatorCollectionHalted firing after %s", took)

	// A collection capture holds: a document that cannot be transformed
	// under on_error: halt.
	sdb, scoll, _ := strings.Cut(ns.Statements, ".")
	if _, err := env.Client.Database(sdb).Collection(scoll).InsertOne(ctx, bson.D{{Key: "_id", Value: "prom-held"}}); err != nil {
		t.Fatal(err)
	}
	took = prom.waitAlert(t, "ReplicatorCollectionHeld", merge(target, "collection", ns.Statements), time.Minute, "pending", "firing")
	t.Logf("ReplicatorCollectionHeld pending after %s", took)

	// PostgreSQL stopped: apply lag grows past a minute.
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	took = prom.waitAlert(t, "ReplicatorApplyLagHigh", merge(target, "collection", ns.Advisories), 2*time.Minute, "pending", "firing")
	t.Logf("ReplicatorApplyLagHigh pending %s after PostgreSQL stopped", took)
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// The binary down, and while it is, more changes than the oplog
	// holds: on restart the history is lost (and resynced).
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	<-proc.done
	proc = nil
	took = prom.waitAlert(t, "ReplicatorDown", target, time.Minute, "pending", "firing")
	t.Logf("ReplicatorDown pending after %s", took)
	gen(82, 4000)
	proc = startBinary(t, bin, logFile, "run", "--config", cfgPath)
	took = prom.waitAlert(t, "ReplicatorHistoryLost", target, 2*time.Minute, "firing")
	t.Logf("ReplicatorHistoryLost firing after %s", took)
}

// waitQuery waits until the instant query q returns n series.
func waitQuery(t *testing.T, p *prometheusServer, q string, n int, timeout time.Duration, failed func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := failed(); err != nil {
			t.Fatal(err)
		}
		r := p.query(t, q)
		if len(r) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d series after %s, want %d: %v", q, len(r), timeout, n, r)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// alertExpr returns the expression of the alert rule name in
// deploy/prometheus/alerts.yaml.
func alertExpr(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yamlv3.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == name {
				return r.Expr
			}
		}
	}
	t.Fatalf("no alert %s in alerts.yaml", name)
	return ""
}

// merge returns labels plus one more.
func merge(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range labels {
		out[key] = val
	}
	return out
}
