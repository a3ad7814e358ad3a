package sink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/envelope"
	"github.com/mongopg/replicator/transform"
)

// publish publishes one change of it (or a deletion of it.id) at cluster
// time ts and returns its stream sequence.
func (b *bufferEnv) publish(t *testing.T, ts uint32, mut transform.Mutation) uint64 {
	t.Helper()
	env := &envelope.Envelope{Kind: envelope.KindChange, Collection: testNS, ClusterTime: transform.ClusterTime{T: ts, I: 1},
		WallTime: time.Unix(int64(ts), 0), Operation: "update", DocumentKey: fmt.Sprintf(`{"_id":%q}`, mut.Key[0].Text),
		Mutations: []transform.Mutation{mut}}
	data, err := envelope.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := b.js.Publish(context.Background(), buffer.Subject(testPrefix, testNS), data)
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
	if n := len(committedIdx(mixed, c.pos.seq)); n != len(mixed) {
		t.Errorf("%d of %d committed messages would be acknowledged", n, len(mixed))
	}
}

var _ = jetstream.ErrNoMessages
