package capture

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas/envelope"
)

// rawMessage is one buffer message of a subject, undecoded.
type rawMessage struct {
	seq   uint64
	msgID string
	data  []byte
}

// rawMessages reads every message on ns's subject.
func (f *fixture) rawMessages(t *testing.T, ns string) []rawMessage {
	t.Helper()
	ctx := context.Background()
	c, err := f.buf.JetStream().OrderedConsumer(ctx, buffer.DefaultStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{f.buf.Subject(ns)}})
	if err != nil {
		t.Fatal(err)
	}
	var out []rawMessage
	for {
		b, err := c.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rawMessage{seq: md.Sequence.Stream, msgID: m.Headers().Get(jetstream.MsgIDHeader), data: m.Data()})
		}
		if n == 0 {
			return out
		}
	}
}

// TestBacklogIsGrouped: a backlog of two collections' inserts is
// published as batch messages, each subject's events in source order and
// each batch named by its first and last event; the saved position
// reaches the last event; a live event afterwards goes alone, at once.
func TestBacklogIsGrouped(t *testing.T) {
	f := newFixture(t, "dead_letter")
	ctx := context.Background()
	run, cancel := context.WithCancel(ctx)
	done := f.start(t, run)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}

	// The backlog, written while capture is stopped, the two collections
	// interleaved.
	coll := func(ns string) *mongo.Collection {
		db, name, _ := strings.Cut(ns, ".")
		return f.env.Client.Database(db).Collection(name)
	}
	const rounds, items, others = 10, 100, 20
	for r := range rounds {
		var a, b []any
		for i := range items {
			a = append(a, bson.D{{Key: "_id", Value: fmt.Sprintf("i%05d", r*items+i)}, {Key: "n", Value: r*items + i}})
		}
		for i := range others {
			b = append(b, bson.D{{Key: "_id", Value: fmt.Sprintf("o%05d", r*others+i)}})
		}
		if _, err := coll(f.ns).InsertMany(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := coll(f.otherNS).InsertMany(ctx, b); err != nil {
			t.Fatal(err)
		}
	}

	run, cancel = context.WithCancel(ctx)
	done = f.start(t, run)
	defer func() {
		cancel()
		if err := wait(t, done); err != nil {
			t.Error(err)
		}
	}()
	got := waitEnvelopes(t, f, rounds*items)
	for i, e := range got {
		if want := fmt.Sprintf(`{"_id":"i%05d"}`, i); e.DocumentKey != want {
			t.Fatalf("event %d of items is %s, want %s: out of source order", i, e.DocumentKey, want)
		}
	}
	waitFor(t, "the others' events", func() bool { return len(f.envelopesOf(t, f.otherNS)) == rounds*others })

	for _, ns := range []string{f.ns, f.otherNS} {
		msgs := f.rawMessages(t, ns)
		events, batches := 0, 0
		for _, m := range msgs {
			envs, err := envelope.DecodeAll(m.data)
			if err != nil {
				t.Fatalf("%s message %d: %v", ns, m.seq, err)
			}
			if envs[0].Kind == envelope.KindHeartbeat {
				continue
			}
			events += len(envs)
			want := buffer.MsgID(envs[0].Token)
			if envelope.IsBatch(m.data) {
				batches++
				want = buffer.BatchMsgID(envs[0].Token, envs[len(envs)-1].Token)
				if len(envs) > groupEvents {
					t.Errorf("%s message %d holds %d events, more than %d", ns, m.seq, len(envs), groupEvents)
				}
			}
			if m.msgID != want {
				t.Errorf("%s message %d has id %q, want %q", ns, m.seq, m.msgID, want)
			}
		}
		if batches == 0 || len(msgs) >= events {
			t.Errorf("%s: %d events in %d messages, %d of them batches: the backlog was not grouped", ns, events, len(msgs), batches)
		}
		t.Logf("%s: %d events in %d messages (%d batches)", ns, events, len(msgs), batches)
	}

	last := got[len(got)-1]
	waitFor(t, "the saved position at the backlog's end", func() bool {
		pos, err := f.buf.Positions().Load(ctx, "default")
		return err == nil && !pos.ClusterTime.Before(last.ClusterTime)
	})

	// A live event is published at once, alone, under its own id.
	before := len(f.rawMessages(t, f.ns))
	f.insert(t, bson.D{{Key: "_id", Value: "live"}, {Key: "n", Value: 1}})
	live := waitEnvelopes(t, f, rounds*items+1)[rounds*items]
	msgs := f.rawMessages(t, f.ns)
	for _, m := range msgs[before:] {
		envs, err := envelope.DecodeAll(m.data)
		if err != nil || envs[0].Kind == envelope.KindHeartbeat {
			continue
		}
		if envelope.IsBatch(m.data) || envs[0].Token != live.Token || m.msgID != buffer.MsgID(live.Token) {
			t.Fatalf("the live event went out as %d events (batch %t) with id %q", len(envs), envelope.IsBatch(m.data), m.msgID)
		}
	}
}
