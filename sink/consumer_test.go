package sink

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

const (
	testStream = "BUF"
	testPrefix = "buf"
)

// bufferEnv is a NATS server with the buffer stream.
type bufferEnv struct {
	srv *testenv.NATSServer
	js  jetstream.JetStream
	ts  uint32 // next cluster time seconds
}

func newBuffer(t *testing.T) *bufferEnv {
	t.Helper()
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: testStream, Subjects: []string{testPrefix + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	return &bufferEnv{srv: srv, js: js, ts: uint32(time.Now().Add(-time.Hour).Unix())}
}

// model is the expected final state: id → itemState line.
type model map[string]string

// workload publishes n change events over keys k00..k29 (inserts, updates
// with tags that grow and shrink, deletes, re-inserts, and a few stale
// events with an old cluster time) and returns the expected state.
func (b *bufferEnv) workload(t *testing.T, n int, seed uint64, want model) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 1))
	subject := envelope.Subject(testPrefix, testNS)
	base := b.ts
	b.ts += uint32(n/4 + 1)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("k%02d", r.IntN(30))
		ts := base + uint32(i/4)
		var mut transform.Mutation
		stale := r.IntN(20) == 0
		if stale {
			ts = 1 // older than anything: never applies
		}
		del := r.IntN(6) == 0
		it := item{id: id, qty: r.IntN(1000)}
		for j := r.IntN(4); j > 0; j-- {
			it.tags = append(it.tags, fmt.Sprintf("t%d", r.IntN(9)))
		}
		if del {
			mut = deletion(id)
		} else {
			mut = it.mutation()
		}
		// Ordinal 1: but for the stale ones, which never apply, each event
		// has a cluster time of its own.
		env := &envelope.Envelope{Kind: envelope.KindChange, Collection: testNS, ClusterTime: transform.ClusterTime{T: ts, I: uint32(i%4 + 1)}, Ordinal: 1,
			WallTime: time.Unix(int64(ts), 0), Operation: "update", DocumentKey: fmt.Sprintf(`{"_id":%q}`, id), Mutations: []transform.Mutation{mut}}
		data, err := envelope.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.js.Publish(ctx, subject, data); err != nil {
			t.Fatal(err)
		}
		switch {
		case stale:
		case del:
			delete(want, id)
		default:
			tags := ""
			for k, tg := range it.tags {
				if k > 0 {
					tags += ","
				}
				tags += tg
			}
			want[id] = fmt.Sprintf("qty=%d v=%d/%d tags=%s", it.qty, ts, env.Ordinal, tags)
		}
	}
}

func (b *bufferEnv) lastSeq(t *testing.T) uint64 {
	t.Helper()
	s, err := b.js.Stream(context.Background(), testStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// runner runs an Applier in the background.
type runner struct {
	a    *Applier
	reg  *prometheus.Registry
	stop context.CancelFunc
	done chan error
}

func startApplier(t *testing.T, pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) *runner {
	t.Helper()
	cfg.Stream, cfg.SubjectPrefix = testStream, testPrefix
	if cfg.MaxRetryBackoff == 0 {
		cfg.MaxRetryBackoff = 200 * time.Millisecond
	}
	if cfg.BatchWait == 0 {
		cfg.BatchWait = 50 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	a, err := New(pool, []Collection{{Namespace: testNS, Tables: testTables()}}, cfg, reg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{a: a, reg: reg, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx, js) }()
	t.Cleanup(func() { r.halt(t) })
	return r
}

// halt cancels Run and checks it returns nil promptly.
func (r *runner) halt(t *testing.T) {
	t.Helper()
	if r.done == nil {
		return
	}
	r.stop()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("Run did not return within 10s of cancellation")
	}
	r.done = nil
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkpointOf reads the checkpoint, 0 when PostgreSQL is unreachable.
func checkpointOf(pool *pgxpool.Pool) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var s int64
	if err := pool.QueryRow(ctx, `SELECT stream_seq FROM replicator.apply_checkpoints WHERE collection = $1`, testNS).Scan(&s); err != nil {
		return 0
	}
	return uint64(s)
}

func checkState(t *testing.T, pool *pgxpool.Pool, want model) {
	t.Helper()
	if got := itemState(t, pool); !reflect.DeepEqual(map[string]string(want), got) {
		for _, k := range sortedKeys(got) {
			if got[k] != want[k] {
				t.Errorf("%s: got %q, want %q", k, got[k], want[k])
			}
		}
		for _, k := range sortedKeys(want) {
			if _, ok := got[k]; !ok {
				t.Errorf("%s: missing, want %q", k, want[k])
			}
		}
	}
	var orphans int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM app.item_tags g WHERE NOT EXISTS (SELECT 1 FROM app.items i WHERE i.id = g.item_id)`).Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("orphan child rows: %d (%v)", orphans, err)
	}
}

// applied is the number of messages committed (not counting duplicates).
func applied(reg *prometheus.Registry) float64 {
	mfs, _ := reg.Gather()
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "replicator_apply_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			dup := false
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == "duplicate" {
					dup = true
				}
			}
			if !dup {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func TestRunAppliesAndResumes(t *testing.T) {
	buf := newBuffer(t)
	pool := testDB(t, testenv.PostgresURL(t))
	want := model{}
	buf.workload(t, 600, 1, want)
	r := startApplier(t, pool, buf.js, Config{BatchSize: 64})
	last := buf.lastSeq(t)
	waitFor(t, "catch-up", 30*time.Second, func() bool { return checkpointOf(pool) == last })
	checkState(t, pool, want)
	if got := applied(r.reg); got != float64(last) {
		t.Errorf("applied %v messages, want %d", got, last)
	}
	r.halt(t)

	// A new process resumes after the checkpoint.
	buf.workload(t, 400, 2, want)
	r2 := startApplier(t, pool, buf.js, Config{BatchSize: 64})
	last2 := buf.lastSeq(t)
	waitFor(t, "resume", 30*time.Second, func() bool { return checkpointOf(pool) == last2 })
	checkState(t, pool, want)
	if got := applied(r2.reg); got != float64(last2-last) {
		t.Errorf("after restart applied %v messages, want %d", got, last2-last)
	}
	if lag := gauge(t, r2.reg, "replicator_apply_lag_seconds"); lag < 3000 || lag > 4000 {
		t.Errorf("apply lag %vs, want about an hour (the workload's source times)", lag)
	}
}

func TestRunSurvivesRestarts(t *testing.T) {
	buf := newBuffer(t)
	srv := testenv.NewPostgresServer(t)
	pool := testDB(t, srv.Database())
	ctx := context.Background()
	want := model{}
	buf.workload(t, 1500, 3, want)
	last := buf.lastSeq(t)
	outer := t
	r := startApplier(t, pool, buf.js, Config{BatchSize: 25})

	t.Run("postgres killed mid-stream", func(t *testing.T) {
		waitFor(t, "progress", 30*time.Second, func() bool { return checkpointOf(pool) > 200 })
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if err := srv.Start(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("nats restarted mid-stream", func(t *testing.T) {
		waitFor(t, "progress", 30*time.Second, func() bool { return checkpointOf(pool) > 700 })
		buf.srv.Restart()
	})
	t.Run("in-flight batch abandoned while postgres is down", func(t *testing.T) {
		waitFor(t, "progress", 30*time.Second, func() bool { return checkpointOf(pool) > 1000 })
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a retry", 10*time.Second, func() bool {
			return testutil.CollectAndCount(r.reg, "replicator_apply_retries_total") > 0
		})
		r.halt(t) // abandons the retrying batch without acking it
		if err := srv.Start(ctx); err != nil {
			t.Fatal(err)
		}
		r = startApplier(outer, pool, buf.js, Config{BatchSize: 25})
	})
	waitFor(t, "catch-up", 60*time.Second, func() bool { return checkpointOf(pool) == last })
	checkState(t, pool, want)
	var dead int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM replicator.dead_letters`).Scan(&dead); err != nil || dead != 0 {
		t.Errorf("dead letters: %d (%v)", dead, err)
	}
}

func TestReplayFromCheckpoint(t *testing.T) {
	buf := newBuffer(t)
	pool := testDB(t, testenv.PostgresURL(t))
	ctx := context.Background()
	want := model{}
	buf.workload(t, 800, 4, want)
	last := buf.lastSeq(t)
	startApplier(t, pool, buf.js, Config{BatchSize: 50})
	waitFor(t, "catch-up", 30*time.Second, func() bool { return checkpointOf(pool) == last })
	before := dump(t, pool)
	versions := func() map[string][2]int64 {
		out := map[string][2]int64{}
		rows, err := pool.Query(ctx, `SELECT id, _cdc_ts, _cdc_seq FROM app.items`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var v [2]int64
			if err := rows.Scan(&id, &v[0], &v[1]); err != nil {
				t.Fatal(err)
			}
			out[id] = v
		}
		return out
	}
	v0 := versions()

	cases := []struct {
		name string
		seq  func() uint64
	}{
		{"to the beginning", func() uint64 { return 0 }},
		{"to a time", func() uint64 {
			// Every message of the workload is after this time.
			seq, ok, err := checkpoints.SeqBefore(ctx, buf.js, testStream, envelope.Subject(testPrefix, testNS), time.Now().Add(-time.Hour))
			if err != nil || !ok || seq != 0 {
				t.Fatalf("SeqBefore: %d %v %v", seq, ok, err)
			}
			return seq
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := checkpoints.Set(ctx, pool, testNS, tc.seq(), checkpoints.SetOptions{}); err != nil {
				t.Fatal(err)
			}
			dropUnitConsumers(t, buf.js, testNS)
			// While the replay runs, no row's version decreases.
			waitFor(t, "replay", 30*time.Second, func() bool {
				for id, v := range versions() {
					if old, ok := v0[id]; ok && (v[0] < old[0] || (v[0] == old[0] && v[1] < old[1])) {
						t.Fatalf("%s: version went back from %v to %v", id, old, v)
					}
				}
				return checkpointOf(pool) == last
			})
			if after := dump(t, pool); after != before {
				t.Errorf("replay changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// dropUnitConsumers deletes unit's apply consumers, as a replay does
// (checkpoints set), and fails the test unless there was one.
func dropUnitConsumers(t *testing.T, js jetstream.JetStream, unit string) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, testStream)
	if err != nil {
		t.Fatal(err)
	}
	names, err := UnitConsumers(ctx, s, unit)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatalf("no apply consumer of %s", unit)
	}
	if err := DropUnitConsumers(ctx, js, testStream, unit); err != nil {
		t.Fatal(err)
	}
}
