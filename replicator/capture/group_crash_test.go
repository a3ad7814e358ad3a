package capture

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// TestCrashWithOpenGroups: capture stops while change events sit in open
// groups, and nothing is lost or reordered (group.go, flushGroups).
//
// The stop is made deterministic by a publish the stream refuses: the
// stream's max message size is below one big event of the second
// collection (the last event of its subject, so its group is published
// only by a flush of every open group), the message holding it is
// refused and retried forever, and with a publish window of one nothing
// after it is handed to the publisher. The ordered stage goes on grouping
// the backlog until it blocks handing a group over; capture is stopped
// there, and the groups still open are dropped. Where the backlog's
// groups are cut, and so the 20 ms group timer, plays no part. Dead
// letters in the backlog before the big event flush the groups at known
// events, so the durable position moves through that part.
//
// Asserted, with the source's own change stream as the reference order:
//   - at the stop, the big event is not in the stream (the refusal
//     happened), and some events the ordered stage emitted are not in it
//     either (they were in open groups);
//   - the saved position names a source event, at or after the last dead
//     letter before the big event, and every source event up to it is in
//     the stream: the position was never saved past an event not
//     published;
//   - after the limit is lifted and capture restarted, on each subject the
//     first occurrences of the events, in stream order, are exactly that
//     subject's source events in source order, each of the expected kind
//     (change or dead letter);
//   - an event occurs more than once only when it comes after the saved
//     position (the restart reads it again), and every copy equals the
//     first in kind, token, cluster time, ordinal, operation, document key
//     and mutations (wall times aside: the skew is measured again), so the
//     applier's version guard writes nothing for it.
//
// It runs twice: with saves every 20 ms, and with only the last save of
// the stop (SaveInterval one hour), which must then save the acknowledged
// progress though the drain before it timed out, and return nil.
func TestCrashWithOpenGroups(t *testing.T) {
	t.Run("periodic saves", func(t *testing.T) { crashWithOpenGroups(t, 20*time.Millisecond) })
	t.Run("last save only", func(t *testing.T) { crashWithOpenGroups(t, time.Hour) })
}

func crashWithOpenGroups(t *testing.T, saveInterval time.Duration) {
	f := newFixture(t, "")
	ctx := context.Background()
	var err error
	f.other, err = transform.Compile(transform.CollectionConfig{
		Source: f.otherNS, Table: "app.others",
		Columns: transform.Columns{
			{Name: "id", ColumnConfig: transform.ColumnConfig{Path: "_id", Type: "text"}},
			{Name: "blob", ColumnConfig: transform.ColumnConfig{Path: "blob", Type: "text"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := testenv.NATS(t)
	f.buf = openBuffer(t, buffer.Config{URL: n.URL, PublishWindow: 1})

	// The first start saves T0; the backlog is written after it.
	run, cancel := context.WithCancel(ctx)
	done := f.start(t, run)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	t0, err := f.buf.Positions().Load(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	bl := f.writeCrashBacklog(t)
	src := f.sourceEvents(t, t0, len(bl.items)+len(bl.others))
	index := map[string]int{} // token → place in source order
	for i, e := range src {
		index[e.token] = i
	}
	keyAt := func(key string) int { return slices.IndexFunc(src, func(e sourceEvent) bool { return e.key == key }) }
	bigAt, lastDeadLetterAt := keyAt(bl.others[len(bl.others)-1]), keyAt(bl.lastDeadLetter)

	const maxMsgSize = 200 << 10 // above any batch message (groupBytes), below the big event
	setMaxMsgSize(t, f.buf, maxMsgSize)

	c, err := New(Config{URI: f.env.URI, MaxAwait: 200 * time.Millisecond, HeartbeatInterval: time.Hour,
		SaveInterval: saveInterval, ShutdownTimeout: time.Second}, // the last save keeps 200 ms of it
		f.buf, []*transform.Mapping{f.m, f.other}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run, cancel = context.WithCancel(ctx)
	defer func() { cancel() }() // the run current when the test ends
	crashed := make(chan error, 1)
	go func() { crashed <- c.Run(run) }()
	waitFor(t, "the refused publish to be retried", func() bool {
		return testutil.ToFloat64(c.met.publisher.Retries) >= 1
	})
	waitHandOverBlocked(t)
	if saveInterval < time.Second {
		waitFor(t, "the position of the last dead letter before the big event saved", func() bool {
			pos, err := f.buf.Positions().Load(ctx, "default")
			i, ok := index[pos.Token]
			return err == nil && ok && i >= lastDeadLetterAt
		})
		// The durable position cannot move any more; the save loop saves
		// where it stands within a SaveInterval.
		time.Sleep(10 * c.cfg.SaveInterval)
	}
	cancel()
	// The drain cannot finish (the refused publish is never acknowledged);
	// the stop was asked for, so Run still returns nil, after its last save
	// (with a deadline of its own).
	if err := wait(t, crashed); err != nil {
		t.Errorf("capture stopped with %v, want nil", err)
	}

	saved, err := f.buf.Positions().Load(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, ns := range []string{f.ns, f.otherNS} {
		for _, e := range f.envelopesOf(t, ns) {
			stored[e.Token] = true
		}
	}
	if stored[src[bigAt].token] {
		t.Fatalf("the big event %s was stored: the stream did not refuse it", src[bigAt].key)
	}
	emitted := testutil.ToFloat64(c.met.events.WithLabelValues(f.ns, transform.OpInsert)) +
		testutil.ToFloat64(c.met.events.WithLabelValues(f.otherNS, transform.OpInsert))
	// The big event was handed to the publisher and refused; the other
	// emitted events not stored were in open groups.
	dropped := int(emitted) - len(stored) - 1
	if dropped <= 0 {
		t.Fatalf("%v events emitted, %d stored: no open group was dropped at the stop", emitted, len(stored))
	}
	at, ok := index[saved.Token]
	if !ok {
		t.Fatalf("saved position %+v is at no source event", saved)
	}
	for _, e := range src[:at+1] {
		if !stored[e.token] {
			t.Fatalf("saved position %d.%d ordinal %d (source event %d) is past %s %s (source event %d), which was not published at the stop: lost",
				saved.ClusterTime.T, saved.ClusterTime.I, saved.Ordinal, at, e.ns, e.key, index[e.token])
		}
	}
	if at < lastDeadLetterAt {
		t.Fatalf("saved position at source event %d, before the dead letter at %d whose publish was acknowledged", at, lastDeadLetterAt)
	}
	t.Logf("at the stop: %d of %d events stored, %d dropped from open groups; saved position at source event %d, the big one is %d",
		len(stored), len(src), dropped, at, bigAt)

	// Restart with the limit lifted and the default window.
	setMaxMsgSize(t, f.buf, -1)
	f.buf = openBuffer(t, buffer.Config{URL: n.URL})
	run, cancel = context.WithCancel(ctx)
	done = f.start(t, run)
	last := src[len(src)-1]
	waitFor(t, "the saved position at the last event after the restart", func() bool {
		pos, err := f.buf.Positions().Load(ctx, "default")
		return err == nil && !pos.ClusterTime.Before(last.clusterTime)
	})
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	checkStreamOrder(t, f.ns, f.envelopesOf(t, f.ns), bl.items, bl.deadLetters, index, at)
	checkStreamOrder(t, f.otherNS, f.envelopesOf(t, f.otherNS), bl.others, nil, index, at)
}

// crashBacklog is the backlog of TestCrashWithOpenGroups: each
// collection's document keys (as capture renders them) in source order.
type crashBacklog struct {
	items, others []string
	// deadLetters are the items whose events become dead letters (no n);
	// lastDeadLetter is the last one before the big other.
	deadLetters    map[string]bool
	lastDeadLetter string
}

// writeCrashBacklog writes rounds of items and small others, each round
// ending with an item that becomes a dead letter, then the big other (the
// last event of its collection), then many more items.
func (f *fixture) writeCrashBacklog(t *testing.T) crashBacklog {
	t.Helper()
	ctx := context.Background()
	coll := func(ns string) *mongo.Collection {
		db, name, _ := strings.Cut(ns, ".")
		return f.env.Client.Database(db).Collection(name)
	}
	bl := crashBacklog{deadLetters: map[string]bool{}}
	addItems := func(k int, deadLetter bool) {
		var docs []any
		for range k {
			id := fmt.Sprintf("i%05d", len(bl.items))
			doc := bson.D{{Key: "_id", Value: id}, {Key: "n", Value: len(bl.items)}}
			key := fmt.Sprintf(`{"_id":%q}`, id)
			if deadLetter {
				doc = doc[:1] // n is required
				bl.deadLetters[key], bl.lastDeadLetter = true, key
			}
			docs = append(docs, doc)
			bl.items = append(bl.items, key)
		}
		if _, err := coll(f.ns).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	addOther := func(blob string) {
		id := fmt.Sprintf("o%03d", len(bl.others))
		if _, err := coll(f.otherNS).InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "blob", Value: blob}}); err != nil {
			t.Fatal(err)
		}
		bl.others = append(bl.others, fmt.Sprintf(`{"_id":%q}`, id))
	}
	for range 10 {
		addItems(60, false)
		for range 6 {
			addOther("small")
		}
		addItems(1, true)
	}
	addOther(strings.Repeat("x", 300<<10))
	for range 20 {
		addItems(100, false)
	}
	return bl
}

// sourceEvent is a change event as the source gives it.
type sourceEvent struct {
	ns, key     string // key: the documentKey as capture renders it
	token       string
	clusterTime transform.ClusterTime
}

// sourceEvents reads the first n change events of the fixture's two
// collections from the source's own change stream, from t0 on.
func (f *fixture) sourceEvents(t *testing.T, t0 buffer.Position, n int) []sourceEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var in bson.A
	for _, ns := range []string{f.ns, f.otherNS} {
		db, coll, _ := strings.Cut(ns, ".")
		in = append(in, bson.D{{Key: "ns.db", Value: db}, {Key: "ns.coll", Value: coll}})
	}
	cs, err := f.env.Client.Watch(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "$or", Value: in}}}}},
		options.ChangeStream().SetStartAtOperationTime(&bson.Timestamp{T: t0.ClusterTime.T, I: t0.ClusterTime.I}))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	var out []sourceEvent
	for len(out) < n && cs.Next(ctx) {
		ev, err := transform.ParseEvent(cs.Current)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sourceEvent{ns: ev.Namespace(), key: extJSON(ev.DocumentKey), token: ev.Token, clusterTime: ev.ClusterTime})
	}
	if len(out) < n {
		t.Fatalf("%d source events read, want %d (%v)", len(out), n, cs.Err())
	}
	return out
}

// openBuffer opens a buffer closed when the test ends.
func openBuffer(t *testing.T, cfg buffer.Config) *buffer.Buffer {
	t.Helper()
	b, err := buffer.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// setMaxMsgSize sets the stream's largest message (-1: no limit beyond
// the server's).
func setMaxMsgSize(t *testing.T, b *buffer.Buffer, n int32) {
	t.Helper()
	ctx := context.Background()
	s, err := b.JetStream().Stream(ctx, buffer.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = n
	if _, err := b.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// waitHandOverBlocked waits until the ordered stage waits in the
// publisher for room to hand grouped events over: a goroutine whose stack
// (runtime.Stack) is in Publisher.add called from group or flushGroups.
// With the window held by a refused publish, it waits there for good, its
// groups open.
func waitHandOverBlocked(t *testing.T) {
	t.Helper()
	waitFor(t, "the ordered stage to block handing a group over", func() bool {
		buf := make([]byte, 1<<20)
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				buf = buf[:n]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "buffer.(*Publisher).add(") &&
				(strings.Contains(g, "capture.(*Capture).group(") || strings.Contains(g, "capture.(*Capture).flushGroups(")) {
				return true
			}
		}
		return false
	})
}

// checkStreamOrder checks one subject's envelopes, in stream order, after
// a restart from the source event at saved (index: token → place in
// source order): the first occurrences are the source order want
// (document keys), dead letters exactly at the keys of deadLetters; a
// later occurrence is of an event after saved and equals the first in
// everything the applier reads.
func checkStreamOrder(t *testing.T, ns string, envs []*envelope.Envelope, want []string, deadLetters map[string]bool,
	index map[string]int, saved int) {
	t.Helper()
	first := map[string]*envelope.Envelope{}
	var order []string
	copies := 0
	for i, e := range envs {
		wantKind := envelope.KindChange
		if deadLetters[e.DocumentKey] {
			wantKind = envelope.KindDeadLetter
		}
		if e.Kind != wantKind {
			t.Fatalf("%s envelope %d (%s) is a %s envelope, want %s", ns, i, e.DocumentKey, e.Kind, wantKind)
		}
		f, seen := first[e.Token]
		if !seen {
			first[e.Token] = e
			order = append(order, e.DocumentKey)
			continue
		}
		copies++
		if at, ok := index[e.Token]; !ok || at <= saved {
			t.Fatalf("%s %s is in the stream twice though at or before the saved position (source event %d, saved %d)", ns, e.DocumentKey, at, saved)
		}
		if e.Kind != f.Kind || e.ClusterTime != f.ClusterTime || e.Ordinal != f.Ordinal || e.Operation != f.Operation ||
			e.DocumentKey != f.DocumentKey || !reflect.DeepEqual(e.Mutations, f.Mutations) {
			t.Fatalf("%s envelope %d, a copy of %s, differs from the first: %+v, first %+v", ns, i, e.DocumentKey, e, f)
		}
	}
	for i := range min(len(order), len(want)) {
		if order[i] != want[i] {
			t.Fatalf("%s: event %d (first occurrence) is %s, want %s: lost or out of source order", ns, i, order[i], want[i])
		}
	}
	if len(order) != len(want) {
		t.Fatalf("%s: %d distinct events, want %d", ns, len(order), len(want))
	}
	t.Logf("%s: %d events, %d copies stored again after the restart", ns, len(want), copies)
}
