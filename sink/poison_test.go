package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// poisonBatch is ten inserts; three of them break a constraint or a type.
func poisonBatch() []message {
	var msgs []message
	for i := 1; i <= 10; i++ {
		it := item{id: string(rune('a' + i - 1)), qty: i}
		switch i {
		case 4:
			it.qty = -1 // check constraint, 23514
		case 7:
			it.null = true // NOT NULL, 23502
		case 9:
			it.price = "abc" // invalid numeric, 22P02
		}
		msgs = append(msgs, change(uint64(i), 100, it.mutation()))
	}
	return msgs
}

type deadRow struct {
	Seq      int64
	Stage    string
	Reason   string
	SQLState string
}

func deadLetters(t *testing.T, c *collection) []deadRow {
	t.Helper()
	rows, err := c.pool.Query(context.Background(), `SELECT coalesce(stream_seq, 0), stage, reason, coalesce(sqlstate, '') FROM replicator.dead_letters ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []deadRow
	for rows.Next() {
		var d deadRow
		if err := rows.Scan(&d.Seq, &d.Stage, &d.Reason, &d.SQLState); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// TestPoisonIsolation: the ten inserts of poisonBatch, one per message and
// in two batch messages (six events, then four; batchmsg_test.go): the
// events at fault become dead letters with their message's sequence, the
// rest commits, and applying the messages again changes nothing.
func TestPoisonIsolation(t *testing.T) {
	ctx := context.Background()
	layouts := []struct {
		name       string
		msgs       func(t *testing.T) []message
		seqs       [3]int64 // the dead letters' sequences
		checkpoint uint64
	}{
		{"single", func(*testing.T) []message { return poisonBatch() }, [3]int64{4, 7, 9}, 10},
		{"batch messages", func(t *testing.T) []message { return batchMessages(t, poisonBatch(), 6, 4) }, [3]int64{1, 2, 2}, 2},
	}
	for _, l := range layouts {
		for _, p := range []struct {
			name      string
			threshold int
		}{{"arrays", 1 << 30}, {"copy", 1}} {
			t.Run(l.name+"/"+p.name, func(t *testing.T) {
				c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), p.threshold, nil)
				if err := c.apply(ctx, l.msgs(t)); err != nil {
					t.Fatal(err)
				}
				got := itemState(t, c.pool)
				if len(got) != 7 || got["d"] != "" || got["g"] != "" || got["i"] != "" {
					t.Errorf("applied rows %v, want the seven good ones", sortedKeys(got))
				}
				want := []deadRow{{l.seqs[0], "apply", "constraint", "23514"}, {l.seqs[1], "apply", "constraint", "23502"}, {l.seqs[2], "apply", "data", "22P02"}}
				if dl := deadLetters(t, c); !reflect.DeepEqual(dl, want) {
					t.Errorf("dead letters %+v, want %+v", dl, want)
				}
				if cp := checkpointSeq(t, c.pool); cp != l.checkpoint {
					t.Errorf("checkpoint %d, want %d", cp, l.checkpoint)
				}
				var raw, key string
				if err := c.pool.QueryRow(ctx, `SELECT raw_event->>'collection', document_key FROM replicator.dead_letters WHERE sqlstate = '23514'`).Scan(&raw, &key); err != nil {
					t.Fatal(err)
				}
				if raw != testNS || key != `{"_id": "d"}` {
					t.Errorf("dead letter keeps raw event collection %q and key %q", raw, key)
				}

				// Applied again, as when the applier never saw the COMMIT's
				// answer: nothing changes, no dead letter is added.
				before := dump(t, c.pool)
				c.pos.seq = 0
				if err := c.apply(ctx, l.msgs(t)); err != nil {
					t.Fatal(err)
				}
				if after := dump(t, c.pool); after != before {
					t.Errorf("applying the messages again changed rows:\n%s\nwant\n%s", after, before)
				}
				if n := len(deadLetters(t, c)); n != 3 {
					t.Errorf("%d dead letters after applying again, want the 3 from the first time", n)
				}
			})
		}
	}
}

// TestDeadLetterRecordedOnce: the events of poisonBatch stored again under
// new sequences, as after a capture restart that cut its batch messages
// elsewhere (or a replay), change no row and add no dead letter while the
// first ones are unresolved; an event whose dead letter was resolved and
// that fails again is recorded again.
func TestDeadLetterRecordedOnce(t *testing.T) {
	ctx := context.Background()
	c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1<<30, nil)
	if err := c.apply(ctx, poisonBatch()); err != nil {
		t.Fatal(err)
	}
	first := []deadRow{{4, "apply", "constraint", "23514"}, {7, "apply", "constraint", "23502"}, {9, "apply", "data", "22P02"}}
	if dl := deadLetters(t, c); !reflect.DeepEqual(dl, first) {
		t.Fatalf("dead letters %+v, want %+v", dl, first)
	}
	before := dump(t, c.pool)

	if err := c.apply(ctx, batchMessagesAt(t, 11, poisonBatch(), 3, 7)); err != nil {
		t.Fatal(err)
	}
	if after := dump(t, c.pool); after != before {
		t.Errorf("the same events again changed rows:\n%s\nwant\n%s", after, before)
	}
	if dl := deadLetters(t, c); !reflect.DeepEqual(dl, first) {
		t.Errorf("dead letters after the same events again %+v, want the first three only", dl)
	}
	if cp := checkpointSeq(t, c.pool); cp != 12 {
		t.Errorf("checkpoint %d, want 12", cp)
	}
	if n := testutil.ToFloat64(c.m.deadLetters.WithLabelValues(c.unit, "constraint")) + testutil.ToFloat64(c.m.deadLetters.WithLabelValues(c.unit, "data")); n != 3 {
		t.Errorf("replicator_dead_letters_total %v after the same events again, want 3 (the first time only)", n)
	}

	if _, err := c.pool.Exec(ctx, `UPDATE replicator.dead_letters SET resolved_at = now() WHERE sqlstate = '23514'`); err != nil {
		t.Fatal(err)
	}
	again := poisonBatch()
	for i := range again {
		again[i].seq += 12
	}
	if err := c.apply(ctx, again); err != nil {
		t.Fatal(err)
	}
	want := append(first, deadRow{16, "apply", "constraint", "23514"})
	if dl := deadLetters(t, c); !reflect.DeepEqual(dl, want) {
		t.Errorf("dead letters after resolving d and applying again %+v, want %+v", dl, want)
	}
}

func TestPoisonHalts(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name       string
		mod        func(*Collection)
		checkpoint uint64
		dead       int
	}{
		{"on_error halt stops before the poison", func(c *Collection) { c.OnError = transform.OnErrorHalt }, 3, 0},
		{"dead_letter_threshold stops at the threshold", func(c *Collection) { c.DeadLetterThreshold = 2 }, 7, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1<<30, tc.mod)
			err := c.apply(ctx, poisonBatch())
			var halt *HaltError
			if !errors.As(err, &halt) {
				t.Fatalf("apply returned %v, want a HaltError", err)
			}
			t.Logf("halt: %v", err)
			if cp := checkpointSeq(t, c.pool); cp != tc.checkpoint {
				t.Errorf("checkpoint %d, want %d", cp, tc.checkpoint)
			}
			if n := len(deadLetters(t, c)); n != tc.dead {
				t.Errorf("%d dead letters, want %d", n, tc.dead)
			}
			// A restarted collection halts again until the cause is fixed.
			if tc.dead > 0 {
				if err := c.checkThreshold(ctx); !errors.As(err, &halt) {
					t.Errorf("after restart: %v, want a HaltError", err)
				}
			}
		})
	}
}

func TestEnvelopeKinds(t *testing.T) {
	ctx := context.Background()
	c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1<<30, nil)
	wall := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	raw := json.RawMessage(`{"operationType":"insert","fullDocument":{"_id":"x","qty":"NaN"}}`)
	msgs := []message{
		change(1, 10, item{id: "a", qty: 1}.mutation()),
		encodeMsg(2, &envelope.Envelope{Kind: envelope.KindDeadLetter, Collection: testNS, ClusterTime: transform.ClusterTime{T: 11, I: 1},
			DocumentKey: `{"_id": "x"}`, DeadLetter: &envelope.DeadLetter{Error: "qty: not a number", Path: "qty", RawEvent: raw}}),
		encodeMsg(3, &envelope.Envelope{Kind: envelope.KindControl, Collection: testNS, Operation: "drop", ClusterTime: transform.ClusterTime{T: 12, I: 1}}),
		decode(testNS, 4, []byte("not json at all")),
		encodeMsg(5, &envelope.Envelope{Kind: envelope.KindChange, Collection: "other.coll", Ordinal: 1}),
		decode(testNS, 6, []byte(`{"v":7,"kind":"change","collection":"shop.items","op":"\u0000"}`)),
		change(7, 13, transform.Mutation{Table: "app.items", Op: transform.OpUpsert, Key: []transform.Value{transform.Text("b")}}),
		encodeMsg(8, &envelope.Envelope{Kind: envelope.KindHeartbeat, Collection: testNS, ClusterTime: transform.ClusterTime{T: 14, I: 2}, WallTime: wall}),
	}
	if err := c.apply(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	want := []deadRow{{2, "transform", "transform", ""}, {4, "decode", "decode", ""}, {5, "apply", "wrong_collection", ""},
		{6, "decode", "decode", ""}, {7, "apply", "invalid_mutation", ""}}
	if dl := deadLetters(t, c); !reflect.DeepEqual(dl, want) {
		t.Errorf("dead letters\n got %+v\nwant %+v", dl, want)
	}
	var (
		path     string
		rawEvent string
		rawBytes []byte
	)
	if err := c.pool.QueryRow(ctx, `SELECT field_path, raw_event->>'operationType' FROM replicator.dead_letters WHERE stream_seq = 2`).Scan(&path, &rawEvent); err != nil {
		t.Fatal(err)
	}
	if path != "qty" || rawEvent != "insert" {
		t.Errorf("transform dead letter: path %q, raw event operation %q", path, rawEvent)
	}
	if err := c.pool.QueryRow(ctx, `SELECT raw_bytes FROM replicator.dead_letters WHERE stream_seq = 6`).Scan(&rawBytes); err != nil {
		t.Fatal(err)
	}
	if string(rawBytes) != string(msgs[5].data) {
		t.Errorf("a raw event jsonb refuses is kept as bytes, got %q", rawBytes)
	}
	var op string
	if err := c.pool.QueryRow(ctx, `SELECT operation FROM replicator.control_events WHERE stream_seq = 3`).Scan(&op); err != nil || op != "drop" {
		t.Errorf("control event: %q, %v", op, err)
	}
	var (
		seq, ts, inc int64
		gotWall      time.Time
	)
	if err := c.pool.QueryRow(ctx, `SELECT stream_seq, cluster_ts, cluster_inc, source_wall_time FROM replicator.apply_checkpoints WHERE collection = $1`, testNS).
		Scan(&seq, &ts, &inc, &gotWall); err != nil {
		t.Fatal(err)
	}
	if seq != 8 || ts != 14 || inc != 2 || !gotWall.Equal(wall) {
		t.Errorf("checkpoint after heartbeat: seq %d, cluster time %d.%d, wall %v", seq, ts, inc, gotWall)
	}
	if got := itemState(t, c.pool); len(got) != 1 || got["a"] == "" {
		t.Errorf("rows %v, want only a", got)
	}
}

// TestCorruptBinaryEnvelope: a binary envelope cut short is a decode dead
// letter holding the message's bytes, and the next envelope applies.
func TestCorruptBinaryEnvelope(t *testing.T) {
	ctx := context.Background()
	c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1<<30, nil)
	whole := encodeMsg(1, &envelope.Envelope{Kind: envelope.KindChange, Collection: testNS, ClusterTime: transform.ClusterTime{T: 10, I: 1}, Ordinal: 1,
		Token: "82", Operation: "insert", Mutations: []transform.Mutation{item{id: "a", qty: 1}.mutation()}})
	cut := whole.data[:len(whole.data)-3]
	msgs := []message{decode(testNS, 1, cut), change(2, 11, item{id: "b", qty: 2}.mutation())}
	if err := c.apply(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if dl := deadLetters(t, c); !reflect.DeepEqual(dl, []deadRow{{1, "decode", "decode", ""}}) {
		t.Errorf("dead letters %+v, want one decode dead letter at 1", dl)
	}
	var rawBytes []byte
	if err := c.pool.QueryRow(ctx, `SELECT raw_bytes FROM replicator.dead_letters WHERE stream_seq = 1`).Scan(&rawBytes); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rawBytes, cut) {
		t.Errorf("raw bytes % x, want % x", rawBytes, cut)
	}
	if got := itemState(t, c.pool); len(got) != 1 || got["b"] == "" {
		t.Errorf("rows %v, want only b", got)
	}
}

func TestDirectCopyConflictFallsBackToMerge(t *testing.T) {
	ctx := context.Background()
	c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1, nil)
	// A leftover child row (no foreign key to stop it) makes the direct COPY
	// of a new document's children fail with a unique violation.
	if _, err := c.pool.Exec(ctx, `ALTER TABLE app.item_tag_notes DROP CONSTRAINT item_tag_notes_item_id_parent_ordinal_fkey;
INSERT INTO app.item_tag_notes VALUES ('a', 0, 0, 'leftover')`); err != nil {
		t.Fatal(err)
	}
	if err := c.apply(ctx, []message{change(1, 10, item{id: "a", qty: 1, tags: []string{"x"}}.mutation())}); err != nil {
		t.Fatal(err)
	}
	if dl := deadLetters(t, c); len(dl) != 0 {
		t.Fatalf("dead letters %+v", dl)
	}
	var note string
	if err := c.pool.QueryRow(ctx, `SELECT note FROM app.item_tag_notes WHERE item_id = 'a'`).Scan(&note); err != nil || note != "note x" {
		t.Fatalf("note %q, %v", note, err)
	}
}
