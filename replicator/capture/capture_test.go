package capture

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type fixture struct {
	env *mongotest.Env
	buf *buffer.Buffer
	ns  string
	m   *transform.Mapping
	// other is a second collection of the same database, captured beside
	// ns, to see that a hold of ns leaves it alone.
	otherNS string
	other   *transform.Mapping
}

func newFixture(t *testing.T, onError string, opts ...mongotest.Options) *fixture {
	t.Helper()
	env := mongotest.New(t, opts...)
	ns := env.Database("cap") + ".items"
	m, err := transform.Compile(transform.CollectionConfig{
		Source: ns, Table: "app.items", OnError: onError,
		Columns: transform.Columns{
			{Name: "id", ColumnConfig: transform.ColumnConfig{Path: "_id", Type: "text"}},
			{Name: "n", ColumnConfig: transform.ColumnConfig{Path: "n", Type: "integer", Required: true}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	otherNS := env.Database("cap") + ".others"
	other, err := transform.Compile(transform.CollectionConfig{Source: otherNS, Table: "app.others"})
	if err != nil {
		t.Fatal(err)
	}
	n := testenv.NATS(t)
	buf, err := buffer.Open(context.Background(), buffer.Config{URL: n.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(buf.Close)
	return &fixture{env: env, buf: buf, ns: ns, m: m, otherNS: otherNS, other: other}
}

// start runs a capture and returns a channel with its result.
func (f *fixture) start(t *testing.T, ctx context.Context) <-chan error {
	t.Helper()
	c, err := New(Config{URI: f.env.URI, MaxAwait: 200 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond, SaveInterval: 100 * time.Millisecond},
		f.buf, []*transform.Mapping{f.m, f.other}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	out := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ready() != nil {
		select {
		case err := <-done: // stopped before streaming (or right after)
			out <- err
			return out
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("capture not streaming within 10s")
		}
	}
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("capture did not stop within 30s")
		return nil
	}
}

// envelopes reads every non-heartbeat envelope on the collection's subject.
func (f *fixture) envelopes(t *testing.T) []*envelope.Envelope {
	t.Helper()
	return f.envelopesOf(t, f.ns)
}

// envelopesOf reads every non-heartbeat envelope on ns's subject, those
// of batch messages one by one.
func (f *fixture) envelopesOf(t *testing.T, ns string) []*envelope.Envelope {
	t.Helper()
	var out []*envelope.Envelope
	for _, m := range f.rawMessages(t, ns) {
		envs, err := envelope.DecodeAll(m.data)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			if e.Kind != envelope.KindHeartbeat {
				out = append(out, e)
			}
		}
	}
	return out
}

func (f *fixture) insert(t *testing.T, docs ...bson.D) {
	t.Helper()
	f.insertInto(t, f.ns, docs...)
}

func (f *fixture) insertInto(t *testing.T, ns string, docs ...bson.D) {
	t.Helper()
	db, coll, _ := strings.Cut(ns, ".")
	for _, d := range docs {
		if _, err := f.env.Client.Database(db).Collection(coll).InsertOne(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTransformErrorIsDeadLetteredAndStreamGoesOn(t *testing.T) {
	f := newFixture(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := f.start(t, ctx)
	f.insert(t, bson.D{{Key: "_id", Value: "bad"}}, bson.D{{Key: "_id", Value: "good"}, {Key: "n", Value: 2}})
	time.Sleep(time.Second)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	envs := f.envelopes(t)
	if len(envs) != 2 || envs[0].Kind != envelope.KindDeadLetter || envs[1].Kind != envelope.KindChange {
		t.Fatalf("envelopes %+v", envs)
	}
	dl := envs[0].DeadLetter
	if dl.Path != "n" || !strings.Contains(string(dl.RawEvent), `"bad"`) {
		t.Fatalf("dead letter %+v", dl)
	}
}

func TestHistoryLostStopsWithResyncAll(t *testing.T) {
	f := newFixture(t, "", mongotest.Options{OplogMaxEvents: 50})
	f.env.RequireEmulator("a tiny oplog")
	ctx, cancel := context.WithCancel(context.Background())
	done := f.start(t, ctx)
	f.insert(t, bson.D{{Key: "_id", Value: 0}, {Key: "n", Value: 0}})
	time.Sleep(500 * time.Millisecond)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 200; i++ {
		f.insert(t, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}})
	}
	err := wait(t, f.start(t, context.Background()))
	if !strings.Contains(fmtErr(err), "replicator resync --all") || !strings.Contains(fmtErr(err), "ChangeStreamHistoryLost") {
		t.Fatalf("got %v, want a stop naming ChangeStreamHistoryLost and resync --all", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestFirstStartHookRunsBeforeSave: OnFirstStart runs before T0 is saved,
// so a failed (or crashed) hook leaves no position and the next start runs
// it again.
func TestFirstStartHookRunsBeforeSave(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	var calls []transform.ClusterTime
	run := func(hookErr error) error {
		c := f.capture(t)
		c.OnFirstStart = func(ctx context.Context, t0 transform.ClusterTime) error {
			if _, err := f.buf.Positions().Load(ctx, "default"); !errors.Is(err, buffer.ErrNoPosition) {
				t.Errorf("position saved before OnFirstStart ran (%v)", err)
			}
			calls = append(calls, t0)
			return hookErr
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(rctx) }()
		select {
		case <-c.Started():
			cancel()
		case err := <-done:
			cancel()
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("capture did not start")
		}
		return wait(t, done)
	}
	if err := run(errors.New("target down")); err == nil || !strings.Contains(err.Error(), "target down") {
		t.Fatalf("Run = %v, want the hook's error", err)
	}
	if _, err := f.buf.Positions().Load(ctx, "default"); !errors.Is(err, buffer.ErrNoPosition) {
		t.Fatalf("a position was saved although the first-start hook failed (%v)", err)
	}
	if err := run(nil); err != nil {
		t.Fatal(err)
	}
	pos, err := f.buf.Positions().Load(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || pos.ClusterTime.Before(calls[1]) {
		t.Fatalf("hook calls %v, saved position %+v; want two calls and the position at or after the second T0", calls, pos)
	}
}

// TestHistoryLostRunsHookAndReopensAtT0: with OnHistoryLost set, a lost
// resume point is counted, the hook gives T0, the buffered events are
// purged, T0 becomes the saved position and capture streams on from it
// without stopping.
func TestHistoryLostRunsHookAndReopensAtT0(t *testing.T) {
	f := newFixture(t, "", mongotest.Options{OplogMaxEvents: 50})
	f.env.RequireEmulator("a tiny oplog")
	ctx, cancel := context.WithCancel(context.Background())
	done := f.start(t, ctx)
	f.insert(t, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 1}})
	time.Sleep(500 * time.Millisecond)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if n := len(f.envelopes(t)); n != 1 {
		t.Fatalf("%d envelopes buffered before the loss, want 1", n)
	}
	for i := 2; i < 200; i++ {
		f.insert(t, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}})
	}

	reg := prometheus.NewRegistry()
	c, err := New(Config{URI: f.env.URI, MaxAwait: 200 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond, SaveInterval: 100 * time.Millisecond},
		f.buf, []*transform.Mapping{f.m}, nil, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var t0 transform.ClusterTime
	var hookCalls atomic.Int32 // stored after t0
	c.OnHistoryLost = func(ctx context.Context, cause error) (transform.ClusterTime, error) {
		if !historyLost(cause) {
			t.Errorf("hook called with %v, want ChangeStreamHistoryLost", cause)
		}
		ct, err := ClusterTime(ctx, f.env.Client)
		t0 = ct
		hookCalls.Add(1)
		return ct, err
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	running := make(chan error, 1)
	go func() { running <- c.Run(ctx) }()
	deadline := time.Now().Add(15 * time.Second)
	for c.Ready() != nil || hookCalls.Load() == 0 {
		select {
		case err := <-running:
			t.Fatalf("capture stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("capture did not recover from the lost history")
		}
	}
	f.insert(t, bson.D{{Key: "_id", Value: 500}, {Key: "n", Value: 500}})
	// Only events at or after T0 remain (T0 itself is inclusive): the
	// ones buffered before the loss are purged.
	for after := false; !after; {
		for _, e := range f.envelopes(t) {
			if e.ClusterTime.Before(t0) {
				t.Fatalf("envelope at %v buffered, before T0 %v: not purged", e.ClusterTime, t0)
			}
			after = after || t0.Before(e.ClusterTime)
		}
		if time.Now().After(deadline) {
			t.Fatal("the write after T0 never reached the buffer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := wait(t, running); err != nil {
		t.Fatal(err)
	}
	if n := hookCalls.Load(); n != 1 || testutil.ToFloat64(c.met.historyLost) != 1 {
		t.Fatalf("hook called %d times, replicator_capture_history_lost_total %v; want 1 and 1", n, testutil.ToFloat64(c.met.historyLost))
	}
	pos, err := f.buf.Positions().Load(context.Background(), "default")
	if err != nil || pos.ClusterTime.Before(t0) {
		t.Fatalf("saved position %+v (%v), want at or after T0 %v", pos, err, t0)
	}
}

func (f *fixture) capture(t *testing.T) *Capture {
	t.Helper()
	c, err := New(Config{URI: f.env.URI, MaxAwait: 200 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond, SaveInterval: 100 * time.Millisecond},
		f.buf, []*transform.Mapping{f.m, f.other}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
