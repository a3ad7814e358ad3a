package sink

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mongopg/replicator/internal/testenv"
)

// TestLostDeliveryIsDeliveredAgain: a message the apply consumer delivers
// to a pull request nobody reads any more (here a thief's request on the
// applier's consumer; in production a request its client gave up on, or
// one a new consumer leader served after a NATS node crashed) is applied
// all the same: the next delivery's number shows the gap, and the session
// delivers again from the checkpoint. Without that, the next batch's
// AckAll acknowledged the lost message and the checkpoint passed it.
func TestLostDeliveryIsDeliveredAgain(t *testing.T) {
	buf := newBuffer(t)
	pool := testDB(t, testenv.PostgresURL(t))
	want := model{}
	buf.workload(t, 40, 1, want)
	r := startApplier(t, pool, buf.js, Config{BatchSize: 64})
	waitFor(t, "the first messages applied", 30*time.Second, func() bool { return checkpointOf(pool) == buf.lastSeq(t) })

	nc := buf.js.Conn()
	stolen := make(chan uint64, 1)
	inbox := nats.NewInbox()
	sub, err := nc.Subscribe(inbox, func(m *nats.Msg) {
		if m.Header.Get("Status") != "" {
			return // 404, 408: nothing delivered
		}
		md, err := m.Metadata()
		if err != nil {
			t.Error(err)
			return
		}
		select {
		case stolen <- md.Sequence.Stream:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// One message for the thief, waiting up to 20 s; the applier's own
	// pull requests come and go every batch_wait, and the server serves
	// the requests in order.
	s, err := buf.js.Stream(context.Background(), testStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := UnitConsumer(context.Background(), s, testNS)
	if err != nil {
		t.Fatal(err)
	}
	next := "$JS.API.CONSUMER.MSG.NEXT." + testStream + "." + cons.CachedInfo().Name
	if err := nc.PublishRequest(next, inbox, []byte(`{"batch":1,"expires":20000000000}`)); err != nil {
		t.Fatal(err)
	}
	var seq uint64
	for round := uint64(0); seq == 0; round++ {
		if round == 60 {
			t.Fatal("the thief's pull request got no message in 60 rounds")
		}
		buf.workload(t, 5, 100+round, want)
		select {
		case seq = <-stolen:
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Logf("message %d was delivered to the thief", seq)
	// Later messages, whose AckAll would cover the stolen one.
	buf.workload(t, 60, 7, want)
	last := buf.lastSeq(t)
	waitFor(t, "everything applied", 30*time.Second, func() bool { return checkpointOf(pool) == last })
	if got := applied(r.reg); got != float64(last) {
		t.Errorf("applied %v messages, want %d: the stolen one was skipped", got, last)
	}
	checkState(t, pool, want)
}

func TestSessionConsumerNames(t *testing.T) {
	a, b := sessionDurable("db.c$p0of2"), sessionDurable("db.c$p0of2")
	if a == b {
		t.Fatalf("two sessions share the consumer name %s", a)
	}
	for _, c := range []struct {
		name, unit string
		want       bool
	}{
		{a, "db.c$p0of2", true},
		{Durable("db.c$p0of2"), "db.c$p0of2", true}, // an older version's
		{a, "db.c$p1of2", false},
		{sessionDurable("db.c"), "db.c$p0of2", false},
		{Durable("db.c$p0of2") + "_x", "db.c$p0of2", false},
	} {
		if got := OfUnit(c.name, c.unit); got != c.want {
			t.Errorf("OfUnit(%s, %s) = %v, want %v", c.name, c.unit, got, c.want)
		}
	}
}
