package sink

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// batchMessages packs events, decoded single-event messages, into batch
// messages: sizes[k] events into the message of sequence k+1, as capture
// groups a backlog. It returns the events as the applier decodes them.
func batchMessages(t testing.TB, events []message, sizes ...int) []message {
	t.Helper()
	return batchMessagesAt(t, 1, events, sizes...)
}

// batchMessagesAt is batchMessages with the first message at sequence from.
func batchMessagesAt(t testing.TB, from uint64, events []message, sizes ...int) []message {
	t.Helper()
	var out []message
	for k, n := range sizes {
		var frames [][]byte
		for _, m := range events[:n] {
			frames = append(frames, m.data)
		}
		events = events[n:]
		out = decodeFrames(out, testNS, from+uint64(k), envelope.AppendBatch(nil, frames))
	}
	if len(events) != 0 {
		t.Fatalf("%d events left over", len(events))
	}
	return out
}

// TestPoisonHaltsBatchMessage: under on_error: halt the events before the
// one at fault apply, as from messages of one event each, but the
// checkpoint stays before their batch message, which a restart applies
// again from its first event (the poisoned batch messages themselves:
// TestPoisonIsolation).
func TestPoisonHaltsBatchMessage(t *testing.T) {
	ctx := context.Background()
	c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1<<30, func(c *Collection) { c.OnError = transform.OnErrorHalt })
	err := c.apply(ctx, batchMessages(t, poisonBatch(), 6, 4))
	var halt *HaltError
	if !errors.As(err, &halt) || halt.Seq != 1 || !strings.Contains(err.Error(), `{"_id": "d"}`) {
		t.Fatalf("apply returned %v, want a HaltError at message 1 naming document d", err)
	}
	if cp := checkpointSeq(t, c.pool); cp != 0 {
		t.Errorf("checkpoint %d, want 0", cp)
	}
	if got := itemState(t, c.pool); len(got) != 3 || got["a"] == "" || got["b"] == "" || got["c"] == "" {
		t.Errorf("rows %v, want a, b and c (the events before d)", sortedKeys(got))
	}
	before := dump(t, c.pool)
	c.pos.seq = 0
	if err := c.apply(ctx, batchMessages(t, poisonBatch(), 6, 4)); !errors.As(err, &halt) || halt.Seq != 1 {
		t.Fatalf("applied again: %v, want the same halt", err)
	}
	if after := dump(t, c.pool); after != before {
		t.Errorf("applying the halted message again changed rows:\n%s\nwant\n%s", after, before)
	}
}

// TestBatchMessageAppliesInOrder: inside one batch message a delete that
// frees a unique value and an insert that takes it fail together (the
// batch writes upserts before deletes); applied in halves, in order, both
// apply and nothing is dead-lettered.
func TestBatchMessageAppliesInOrder(t *testing.T) {
	ctx := context.Background()
	c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1<<30, nil)
	if _, err := c.pool.Exec(ctx, `ALTER TABLE app.items ADD CONSTRAINT items_qty_unique UNIQUE (qty)`); err != nil {
		t.Fatal(err)
	}
	events := []message{
		change(1, 10, item{id: "a", qty: 7}.mutation()),
		change(2, 11, item{id: "x", qty: 1}.mutation()),
		change(3, 12, deletion("a")),
		change(4, 13, item{id: "b", qty: 7}.mutation()), // a's qty, free once a is deleted
		change(5, 14, item{id: "y", qty: 2}.mutation()),
	}
	if err := c.apply(ctx, batchMessages(t, events[:1], 1)); err != nil {
		t.Fatal(err)
	}
	msgs := batchMessages(t, events, 1, 4)[1:] // the second message: x, delete a, b, y
	if err := c.apply(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if dl := deadLetters(t, c); len(dl) != 0 {
		t.Errorf("dead letters %+v, want none", dl)
	}
	if got := itemState(t, c.pool); len(got) != 3 || got["a"] != "" || got["b"] == "" {
		t.Errorf("rows %v, want b, x and y", sortedKeys(got))
	}
	if cp := checkpointSeq(t, c.pool); cp != 2 {
		t.Errorf("checkpoint %d, want 2", cp)
	}
}

// TestDeferredConstraintInBatchMessage: an event of a batch message that
// breaks a deferred constraint (checked only at COMMIT) is the one
// dead-lettered: each half of the message commits on its own.
func TestDeferredConstraintInBatchMessage(t *testing.T) {
	ctx := context.Background()
	c := newTestCollection(t, testDB(t, testenv.PostgresURL(t)), 1<<30, nil)
	if _, err := c.pool.Exec(ctx, `ALTER TABLE app.items ADD CONSTRAINT items_qty_unique UNIQUE (qty) DEFERRABLE INITIALLY DEFERRED`); err != nil {
		t.Fatal(err)
	}
	var events []message
	for i, qty := range []int{1, 2, 2, 4, 5} { // c repeats b's qty
		events = append(events, change(uint64(i+1), 10, item{id: string(rune('a' + i)), qty: qty}.mutation()))
	}
	if err := c.apply(ctx, batchMessages(t, events, 5)); err != nil {
		t.Fatal(err)
	}
	var key, state string
	if err := c.pool.QueryRow(ctx, `SELECT document_key, sqlstate FROM replicator.dead_letters`).Scan(&key, &state); err != nil {
		t.Fatal(err)
	}
	if key != `{"_id": "c"}` || state != "23505" {
		t.Errorf("dead letter for %s (%s), want c's unique violation", key, state)
	}
	if got := itemState(t, c.pool); len(got) != 4 || got["c"] != "" {
		t.Errorf("applied rows %v, want a, b, d and e", sortedKeys(got))
	}
	if cp := checkpointSeq(t, c.pool); cp != 1 {
		t.Errorf("checkpoint %d, want 1", cp)
	}
}

// TestBatchMessagesDecode: a batch message is one event per frame, in
// order, all with the message's sequence; a frame that does not decode is
// a dead letter of its own; a batch whose frames cannot be told apart is
// one dead letter.
func TestBatchMessagesDecode(t *testing.T) {
	events := []message{change(1, 10, item{id: "a", qty: 1}.mutation()), change(2, 11, item{id: "b", qty: 2}.mutation()),
		change(3, 12, item{id: "c", qty: 3}.mutation())}
	good := envelope.AppendBatch(nil, [][]byte{events[0].data, events[1].data, events[2].data})
	got := decodeFrames(nil, testNS, 7, good)
	if len(got) != 3 {
		t.Fatalf("%d events, want 3", len(got))
	}
	for k, m := range got {
		if m.seq != 7 || m.frame != k || m.bad != nil || m.env.Ordinal != uint32(k+1) {
			t.Errorf("event %d: seq %d frame %d bad %v ordinal %d", k, m.seq, m.frame, m.bad, m.env.Ordinal)
		}
	}
	if e, err := lastEnvelope(good); err != nil || e.ClusterTime.T != 12 {
		t.Errorf("lastEnvelope: %v %+v, want the cluster time of the last frame", err, e)
	}

	cut := events[1].data[:len(events[1].data)-2]
	got = decodeFrames(nil, testNS, 8, envelope.AppendBatch(nil, [][]byte{events[0].data, cut, events[2].data}))
	if len(got) != 3 || got[0].bad != nil || got[2].bad != nil || got[1].bad == nil || got[1].bad.reason != reasonDecode ||
		!strings.Contains(got[1].bad.err, "frame 2 of 3") {
		t.Fatalf("a bad frame: %+v", got)
	}

	got = decodeFrames(nil, testNS, 9, good[:len(good)-1])
	if len(got) != 1 || got[0].bad == nil || got[0].bad.reason != reasonDecode || got[0].seq != 9 {
		t.Fatalf("a batch cut short: %+v", got)
	}
}

// TestPendingEventsOfBatchMessages: a redelivered batch message in a
// batch is dropped whole, and the events keep their order inside their
// message.
func TestPendingEventsOfBatchMessages(t *testing.T) {
	var events []message
	for i := range 5 {
		events = append(events, change(uint64(i+1), 10, item{id: string(rune('a' + i)), qty: 1}.mutation()))
	}
	msgs := batchMessages(t, events, 2, 3) // seq 1: a b; seq 2: c d e
	redelivered := append(append([]message{}, msgs[2:]...), msgs...)
	got, skipped := pendingMsgs(redelivered, 0)
	if skipped != 3 || len(got) != 5 {
		t.Fatalf("%d events pending, %d skipped; want 5 and 3", len(got), skipped)
	}
	for k, m := range got {
		if m.env.Ordinal != uint32(k+1) {
			t.Fatalf("event %d is ordinal %d: out of order", k, m.env.Ordinal)
		}
	}
	if got, skipped := pendingMsgs(msgs, 1); skipped != 2 || len(got) != 3 || got[0].seq != 2 {
		t.Fatalf("above checkpoint 1: %d pending, %d skipped", len(got), skipped)
	}
	if mid := split(msgs); mid != 2 {
		t.Errorf("split at %d, want 2 (between the messages)", mid)
	}
	if mid := split(msgs[2:]); mid != 1 {
		t.Errorf("split of one message of three events at %d, want 1 (the middle)", mid)
	}
}
