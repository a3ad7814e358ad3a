package testenv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestNATSClusterSurvivesLeaderLoss(t *testing.T) {
	start := time.Now()
	c := NATSCluster(t, 3)
	t.Logf("cluster up in %v", time.Since(start).Round(time.Millisecond))

	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const stream = "T"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     stream,
		Subjects: []string{"t.>"},
		Replicas: 3,
		Storage:  jetstream.FileStorage,
	}); err != nil {
		t.Fatal(err)
	}

	// publish sends messages from..to-1, retrying each (same message ID, so
	// the stream drops a copy that did get stored) until it is acknowledged.
	// While the first try is still in flight, a retry is refused with
	// "duplicate message id is in process".
	publish := func(from, to int) {
		t.Helper()
		t0 := time.Now()
		retries, errs := 0, map[string]bool{}
		defer func() {
			t.Logf("published %d..%d in %v, %d retries %v", from, to-1, time.Since(t0).Round(time.Millisecond), retries, errs)
		}()
		for i := from; i < to; i++ {
			deadline := time.Now().Add(20 * time.Second)
			for {
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := js.Publish(pctx, "t.x", []byte(strconv.Itoa(i)), jetstream.WithMsgID(fmt.Sprintf("m-%d", i)))
				pcancel()
				if err == nil {
					break
				}
				retries++
				errs[err.Error()] = true
				if time.Now().After(deadline) {
					t.Fatalf("publish %d: no acknowledgement within 20s: %v", i, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	// down stops node (crashes it, or shuts it down) and reports how long
	// until the stream has another leader.
	down := func(node *ClusterNode, crash bool) {
		t.Helper()
		t0 := time.Now()
		how := "shut down"
		if crash {
			how = "crashed"
			node.Crash()
			node.Crash() // safe twice
		} else {
			node.Shutdown()
			node.Shutdown() // safe twice
		}
		if node.Running() {
			t.Fatalf("%s still running after it was %s", node.Name, how)
		}
		leader := c.StreamLeader(stream)
		if leader == node {
			t.Fatalf("stream leader is the stopped node %s", node.Name)
		}
		t.Logf("%s %s: stream leader %s after %v", node.Name, how, leader.Name, time.Since(t0).Round(time.Millisecond))
	}

	publish(0, 200)

	first := c.StreamLeader(stream)
	if c.Node(first.Name) != first {
		t.Fatalf("Node(%q) is not the stream leader node", first.Name)
	}
	down(first, true)
	publish(200, 400)
	first.Start()
	// R3 tolerates one node down at a time: the restarted node catches up
	// (after a crash it may hold entries it must truncate) before another
	// goes down.
	c.WaitHealthy(30 * time.Second)

	leader := c.StreamLeader(stream)
	var second *ClusterNode
	for _, node := range c.Nodes {
		if node != first && node != leader {
			second = node
		}
	}
	if second == nil {
		t.Fatalf("no node other than %s (restarted) and %s (leader)", first.Name, leader.Name)
	}
	down(second, false)
	publish(400, 600)
	second.Start()

	t0 := time.Now()
	c.WaitHealthy(30 * time.Second)
	t.Logf("healthy %v after the last restart", time.Since(t0).Round(time.Millisecond))

	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	st := s.CachedInfo().State
	if st.Msgs != 600 || st.FirstSeq != 1 || st.LastSeq != 600 {
		t.Fatalf("stream holds %d messages, sequences %d..%d; want 600, 1..600", st.Msgs, st.FirstSeq, st.LastSeq)
	}

	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// A node just started may not have every route's interest yet: a
	// fetch can find no responder for a moment.
	deadline := time.Now().Add(30 * time.Second)
	for want := 0; want < 600; {
		batch, err := cons.Fetch(600-want, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for msg := range batch.Messages() {
			if string(msg.Data()) != strconv.Itoa(want) {
				t.Fatalf("message %d reads %q", want, msg.Data())
			}
			if id := msg.Headers().Get(jetstream.MsgIDHeader); id != fmt.Sprintf("m-%d", want) {
				t.Fatalf("message %d has ID %q", want, id)
			}
			want++
			got++
		}
		err = batch.Error()
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, nats.ErrNoResponders) {
			t.Fatal(err)
		}
		if got == 0 && time.Now().After(deadline) {
			t.Fatalf("consumer stopped after %d of 600 messages (last: %v)", want, err)
		}
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range batch.Messages() {
		t.Fatalf("a message after the 600th: %q", msg.Data())
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
