package sink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// publish publishes one change envelope holding mut at cluster time ts
// and returns its stream sequence.
func (b *bufferEnv) publish(t *testing.T, ts uint32, mut transform.Mutation) uint64 {
	t.Helper()
	env := &envelope.Envelope{Kind: envelope.KindChange, Collection: testNS, ClusterTime: transform.ClusterTime{T: ts, I: 1}, Ordinal: 1,
		WallTime: time.Unix(int64(ts), 0), Operation: "update", DocumentKey: fmt.Sprintf(`{"_id":%q}`, mut.Key[0].Text),
		Mutations: []transform.Mutation{mut}}
	data, err := envelope.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := b.js.Publish(context.Background(), envelope.Subject(testPrefix, testNS), data)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// A message larger than BatchBytes is fetched alone; it must not stall the
// collection (the server answers such a fetch with a status the client
// library does not report as an error).
func TestOversizedMessageIsApplied(t *testing.T) {
	buf := newBuffer(t)
	pool := testDB(t, testenv.PostgresURL(t))
	big := item{id: "big", qty: 1, tags: []string{strings.Repeat("x", 8<<10)}}
	buf.publish(t, buf.ts, item{id: "a", qty: 1}.mutation())
	buf.publish(t, buf.ts+1, big.mutation())
	last := buf.publish(t, buf.ts+2, item{id: "b", qty: 2}.mutation())
	startApplier(t, pool, buf.js, Config{BatchSize: 10, BatchBytes: 2048})
	waitFor(t, "the oversized message to apply", 20*time.Second, func() bool { return checkpointOf(pool) == last })
	if got := itemState(t, pool); len(got) != 3 || !strings.HasPrefix(got["big"], "qty=1") {
		t.Errorf("rows %v", sortedKeys(got))
	}
}

// Redeliveries (an ack wait that expired while a batch was retrying) can
// arrive after newer messages in one fetch: the checkpoint must never move
// back and every committed message is acknowledged.
func TestOutOfOrderRedeliveryKeepsCheckpoint(t *testing.T) {
	ctx := context.Background()
	c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1<<30, nil)
	first := []message{change(1, 10, item{id: "a", qty: 1}.mutation()), change(2, 11, item{id: "b", qty: 1}.mutation()),
		change(3, 12, item{id: "c", qty: 1}.mutation())}
	if err := c.apply(ctx, first); err != nil {
		t.Fatal(err)
	}
	mixed := []message{change(4, 13, item{id: "a", qty: 4}.mutation()), change(5, 14, item{id: "d", qty: 5}.mutation()),
		change(2, 11, item{id: "b", qty: 1}.mutation()), change(3, 12, item{id: "c", qty: 1}.mutation())}
	if err := c.apply(ctx, mixed); err != nil {
		t.Fatal(err)
	}
	if cp := checkpointSeq(t, c.pool); cp != 5 || c.pos.seq != 5 {
		t.Errorf("checkpoint %d (held %d), want 5", cp, c.pos.seq)
	}
	if got := itemState(t, c.pool); got["a"] != "qty=4 v=13/4 tags=" || got["d"] != "qty=5 v=14/5 tags=" {
		t.Errorf("rows %v", got)
	}
	if i := lastCommitted(seqsOf(mixed), c.pos.seq); i != 1 {
		t.Errorf("acknowledged message %d, want 1 (seq 5, which covers every committed one)", i)
	}
}

// Messages removed by the stream's retention before they were applied are
// reported (metric, control event) and the rest applies; with on_error:
// halt the collection stops before the gap.
func TestRetentionGapIsReported(t *testing.T) {
	for _, halt := range []bool{false, true} {
		t.Run(fmt.Sprintf("halt=%v", halt), func(t *testing.T) {
			ctx := context.Background()
			buf := newBuffer(t)
			pool := testDB(t, testenv.PostgresURL(t))
			for i := range 3 {
				buf.publish(t, buf.ts+uint32(i), item{id: fmt.Sprintf("a%d", i), qty: 1}.mutation())
			}
			r := startApplier(t, pool, buf.js, Config{BatchSize: 10})
			waitFor(t, "catch-up", 20*time.Second, func() bool { return checkpointOf(pool) == 3 })
			r.halt(t)
			for i := range 5 { // sequences 4..8
				buf.publish(t, buf.ts+10+uint32(i), item{id: fmt.Sprintf("b%d", i), qty: 2}.mutation())
			}
			st, err := buf.js.Stream(ctx, testStream)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Purge(ctx, jetstream.WithPurgeSequence(7)); err != nil { // removes 1..6
				t.Fatal(err)
			}
			last := buf.publish(t, buf.ts+20, item{id: "c", qty: 3}.mutation())

			cfg := Config{Stream: testStream, SubjectPrefix: testPrefix, BatchSize: 10, BatchWait: 50 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond}
			col := Collection{Namespace: testNS, Tables: testTables()}
			if halt {
				col.OnError = transform.OnErrorHalt
			}
			reg := prometheusRegistry()
			a, err := New(pool, []Collection{col}, cfg, reg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- a.Run(rctx, buf.js) }()
			if halt {
				err := <-done
				var h *HaltError
				if !errorsAs(err, &h) || h.Seq != 7 {
					t.Fatalf("Run: %v, want a halt at sequence 7", err)
				}
				if cp := checkpointOf(pool); cp != 3 {
					t.Errorf("checkpoint %d, want 3 (before the gap)", cp)
				}
				return
			}
			waitFor(t, "the rest to apply", 20*time.Second, func() bool { return checkpointOf(pool) == last })
			cancel()
			<-done
			var from, to int64
			if err := pool.QueryRow(ctx, `SELECT (raw_event->>'first_missing_seq')::bigint, (raw_event->>'last_missing_seq')::bigint
FROM replicator.control_events WHERE operation = 'gap'`).Scan(&from, &to); err != nil {
				t.Fatalf("gap control event: %v", err)
			}
			if from != 4 || to != 6 {
				t.Errorf("gap %d..%d, want 4..6", from, to)
			}
			if n := counter(t, reg, "replicator_apply_gaps_total"); n != 1 {
				t.Errorf("gaps metric %v, want 1", n)
			}
			got := itemState(t, pool)
			if len(got) != 6 || got["b3"] == "" || got["c"] == "" {
				t.Errorf("rows %v", sortedKeys(got))
			}
		})
	}
}

func TestTombstoneGC(t *testing.T) {
	ctx := context.Background()
	pool := testDB(t, testenv.PostgresURL(t))
	// a, d: old, removable. b: recent. c: old but newer than the T0 of a
	// running resync, which could still copy the document. e: another
	// table's. f: old, but a running resync of another collection does
	// keep it (f is older than this collection's run).
	if _, err := pool.Exec(ctx, `
INSERT INTO replicator.tombstones (table_name, key, cluster_ts, cluster_inc, seq, deleted_at) VALUES
  ('app.items', '{a}', 100, 1, 5, now() - interval '30 days'),
  ('app.items', '{b}', 100, 1, 6, now() - interval '1 day'),
  ('app.items', '{c}', 300, 1, 2, now() - interval '30 days'),
  ('app.items', '{d}', 150, 0, 0, now() - interval '30 days'),
  ('app.other', '{e}', 100, 1, 5, now() - interval '30 days'),
  ('app.items', '{f}', 180, 1, 5, now() - interval '30 days')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO replicator.snapshot_runs (collection, kind, t0_ts, t0_inc, state) VALUES
  ($1, 'resync', 200, 1, 'copying'), ('other.coll', 'resync', 10, 1, 'copying')`, testNS); err != nil {
		t.Fatal(err)
	}
	defer func(n int) { tombstoneGCBatch = n }(tombstoneGCBatch)
	tombstoneGCBatch = 1 // three batches and an empty one
	cfg := Config{BatchWait: 50 * time.Millisecond, TombstoneRetention: 7 * 24 * time.Hour, TombstoneGCInterval: 50 * time.Millisecond}
	r := startApplier(t, pool, newBuffer(t).js, cfg)
	waitFor(t, "garbage collection", 20*time.Second, func() bool {
		return counter(t, r.reg, "replicator_apply_tombstones_removed_total") == 3
	})
	r.halt(t)
	rows, err := pool.Query(ctx, `SELECT table_name || ':' || key[1] FROM replicator.tombstones ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		left = append(left, s)
	}
	if want := "app.items:b app.items:c app.other:e"; strings.Join(left, " ") != want {
		t.Errorf("tombstones left %v, want %s", left, want)
	}
}

// A snapshot or resync commits a row (version (T0, 0)) for a key the
// direct COPY of new keys picked as new: the unique violation must fall
// back to the guarded merge, never dead-letter or lose the event.
func TestDirectCopyRacesSnapshot(t *testing.T) {
	ctx := context.Background()
	pool := testDB(t, testenv.PostgresURL(t))
	c := newTestCollection(t, pool, 1, nil)
	snap, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = snap.Rollback(ctx) }()
	if _, err := snap.Exec(ctx, `INSERT INTO app.items VALUES ('k', $1, 9, NULL, '{}', 5, 0, 0)`, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Exec(ctx, `INSERT INTO app.item_tags VALUES ('k', 0, 'from-snapshot'), ('k', 1, 'from-snapshot')`); err != nil {
		t.Fatal(err)
	}
	msgs := []message{
		change(1, 10, item{id: "x", qty: 1, tags: []string{"a"}}.mutation()),
		change(2, 10, item{id: "k", qty: 2, tags: []string{"event"}}.mutation()),
		change(3, 11, item{id: "y", qty: 3}.mutation()),
	}
	done := make(chan error, 1)
	go func() { done <- c.apply(ctx, msgs) }()
	waitFor(t, "the direct COPY to wait for the snapshot's row", 20*time.Second, func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&n)
		return n > 0
	})
	if err := snap.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if dl := deadLetters(t, c); len(dl) != 0 {
		t.Fatalf("dead letters %+v", dl)
	}
	want := map[string]string{"x": "qty=1 v=10/1 tags=a", "k": "qty=2 v=10/2 tags=event", "y": "qty=3 v=11/3 tags="}
	if got := itemState(t, pool); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	if cp := checkpointSeq(t, pool); cp != 3 {
		t.Errorf("checkpoint %d, want 3", cp)
	}
	if n := committedBatches(t, c); n != 1 {
		t.Errorf("%d transactions committed the batch, want 1 (retried through the merge, not split)", n)
	}
}

// Deleting the durable consumer (an operator, or a replay's DropUnitConsumers)
// while the applier fetches ends the session; the next one recreates it
// from the checkpoint and nothing is lost.
func TestConsumerDeletedDuringFetch(t *testing.T) {
	buf := newBuffer(t)
	pool := testDB(t, testenv.PostgresURL(t))
	want := model{}
	buf.workload(t, 200, 7, want)
	startApplier(t, pool, buf.js, Config{BatchSize: 20, BatchWait: 500 * time.Millisecond})
	last := buf.lastSeq(t)
	waitFor(t, "catch-up", 20*time.Second, func() bool { return checkpointOf(pool) == last })
	for range 3 {
		time.Sleep(100 * time.Millisecond) // inside an idle fetch
		dropUnitConsumers(t, buf.js, testNS)
		buf.workload(t, 100, uint64(last), want)
		last = buf.lastSeq(t)
		waitFor(t, "catch-up after the consumer was deleted", 30*time.Second, func() bool { return checkpointOf(pool) == last })
	}
	checkState(t, pool, want)
}

// A commit whose outcome the applier did not learn (COMMIT sent, then the
// connection dropped) is retried: the checkpoint guard notices the commit
// happened, nothing is written twice and the batch counts as committed.
func TestLostCommitOutcomeIsNotReapplied(t *testing.T) {
	ctx := context.Background()
	c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1<<30, nil)
	msgs := []message{change(1, 10, item{id: "a", qty: 1}.mutation()), change(2, 11, item{id: "b", qty: -1}.mutation()),
		change(3, 12, deletion("a"))}
	if err := c.apply(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	before := dump(t, c.pool)
	c.pos.seq = 0 // the applier never saw the COMMIT's answer
	if err := c.apply(ctx, redecode(msgs)); err != nil {
		t.Fatal(err)
	}
	if c.pos.seq != 3 {
		t.Errorf("position %d after the retry, want 3", c.pos.seq)
	}
	if i := lastCommitted(seqsOf(msgs), c.pos.seq); i != 2 {
		t.Errorf("acknowledged message %d, want 2 (seq 3)", i)
	}
	if dl := deadLetters(t, c); len(dl) != 1 {
		t.Errorf("dead letters %+v, want the one from the first attempt", dl)
	}
	if after := dump(t, c.pool); after != before {
		t.Errorf("state changed:\n%s\n%s", before, after)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		code string
		want errClass
	}{
		{"40001", classRetry}, {"40P01", classRetry}, {"57P01", classRetry}, {"08006", classRetry},
		{"25006", classRetry}, // read-only transaction: connected to a standby during a failover
		{"40003", classRetry}, // statement completion unknown
		{"23505", classEvent}, {"22P02", classEvent}, {"54000", classEvent},
		{"42P01", classFatal}, {"42501", classFatal},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			if got, _ := classify(&pgconn.PgError{Code: tc.code}); got != tc.want {
				t.Errorf("class %d, want %d", got, tc.want)
			}
		})
	}
}

// One collection halting (on_error: halt) stops only that collection.
func TestHaltedCollectionDoesNotStallOthers(t *testing.T) {
	ctx := context.Background()
	buf := newBuffer(t)
	pool := testDB(t, testenv.PostgresURL(t))
	const otherNS = "shop.other"
	ddl := strings.ReplaceAll(strings.ReplaceAll(testDDL, "SCHEMA app;", "SCHEMA app2;"), "app.", "app2.")
	if _, err := pool.Exec(ctx, ddl); err != nil {
		t.Fatal(err)
	}
	other := testTables()
	for i := range other {
		other[i].Name = strings.Replace(other[i].Name, "app.", "app2.", 1)
		if other[i].Root != "" {
			other[i].Root = strings.Replace(other[i].Root, "app.", "app2.", 1)
			other[i].Parent = strings.Replace(other[i].Parent, "app.", "app2.", 1)
		}
	}
	var ord uint32 // every event shares one cluster time
	pub := func(ns string, it item) uint64 {
		ord++
		mut := it.mutation()
		if ns == otherNS {
			mut.Table = "app2.items"
			mut.Children[0].Table, mut.Children[1].Table = "app2.item_tags", "app2.item_tag_notes"
		}
		data, err := envelope.Encode(&envelope.Envelope{Kind: envelope.KindChange, Collection: ns,
			ClusterTime: transform.ClusterTime{T: buf.ts, I: 1}, Ordinal: ord, Operation: "insert", Mutations: []transform.Mutation{mut}})
		if err != nil {
			t.Fatal(err)
		}
		ack, err := buf.js.Publish(ctx, envelope.Subject(testPrefix, ns), data)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	pub(testNS, item{id: "a", qty: 1})
	pub(testNS, item{id: "poison", qty: -1})
	pub(testNS, item{id: "b", qty: 1})
	var last uint64
	for i := range 50 {
		last = pub(otherNS, item{id: fmt.Sprint(i), qty: i, tags: []string{"t"}})
	}
	cfg := Config{Stream: testStream, SubjectPrefix: testPrefix, BatchSize: 7, BatchWait: 50 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond}
	reg := prometheusRegistry()
	a, err := New(pool, []Collection{
		{Namespace: testNS, Tables: testTables(), OnError: transform.OnErrorHalt},
		{Namespace: otherNS, Tables: other},
	}, cfg, reg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx, buf.js) }()
	seqOf := func(ns string) uint64 {
		var s int64
		_ = pool.QueryRow(ctx, `SELECT stream_seq FROM replicator.apply_checkpoints WHERE collection = $1`, ns).Scan(&s)
		return uint64(s)
	}
	waitFor(t, "the other collection to apply", 20*time.Second, func() bool { return seqOf(otherNS) == last })
	if s := seqOf(testNS); s != 1 {
		t.Errorf("halted collection's checkpoint %d, want 1", s)
	}
	waitFor(t, "the halted gauge", 10*time.Second, func() bool {
		return gaugeValue(t, reg, "replicator_apply_collection_halted", testNS) == 1
	})
	if v := gaugeValue(t, reg, "replicator_apply_collection_halted", otherNS); v != 0 {
		t.Errorf("replicator_apply_collection_halted of the other collection = %v, want 0", v)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned while a collection still runs: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A recreated buffer stream numbers new messages from 1 again: delivery
// from the old checkpoint would skip them. The checkpoint is rewound and
// everything the new stream holds applies.
func TestRecreatedStreamIsReplayed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fresh int // messages in the recreated stream
	}{{"fewer messages than the checkpoint", 2}, {"more messages than the checkpoint", 8}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			buf := newBuffer(t)
			pool := testDB(t, testenv.PostgresURL(t))
			for i := range 5 {
				buf.publish(t, buf.ts+uint32(i), item{id: fmt.Sprintf("old%d", i), qty: 1}.mutation())
			}
			r := startApplier(t, pool, buf.js, Config{BatchSize: 10})
			waitFor(t, "catch-up", 20*time.Second, func() bool { return checkpointOf(pool) == 5 })
			r.halt(t)
			if err := buf.js.DeleteStream(ctx, testStream); err != nil {
				t.Fatal(err)
			}
			if _, err := buf.js.CreateStream(ctx, jetstream.StreamConfig{Name: testStream, Subjects: []string{testPrefix + ".>"}, Storage: jetstream.FileStorage}); err != nil {
				t.Fatal(err)
			}
			var last uint64
			for i := range tc.fresh {
				last = buf.publish(t, buf.ts+100+uint32(i), item{id: fmt.Sprintf("new%d", i), qty: 2}.mutation())
			}
			r = startApplier(t, pool, buf.js, Config{BatchSize: 10})
			waitFor(t, "the new stream to apply", 20*time.Second, func() bool { return len(itemState(t, pool)) == 5+tc.fresh })
			waitFor(t, "the checkpoint", 20*time.Second, func() bool { return checkpointOf(pool) == last })
			if n := counter(t, r.reg, "replicator_apply_buffer_resets_total"); n != 1 {
				t.Errorf("resets metric %v, want 1", n)
			}
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM replicator.control_events WHERE operation = 'buffer_reset'`).Scan(&n); err != nil || n != 1 {
				t.Errorf("buffer_reset control events: %d (%v)", n, err)
			}
		})
	}
}
