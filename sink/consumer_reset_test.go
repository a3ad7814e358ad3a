package sink

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// storeServer is an in-process nats-server on a storage directory the test
// controls, so it can alter the files between runs as a crash would.
type storeServer struct {
	dir string
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func (s *storeServer) start(t *testing.T) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: s.dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s.srv, s.nc, s.js = srv, nc, js
}

func (s *storeServer) stop() {
	if s.srv != nil {
		s.nc.Close()
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// TestResetConsumerIgnoresOrphanedConsumerState: a SIGKILL while the
// server writes a consumer's metadata (meta.inf written, meta.sum not yet)
// leaves a directory that the restarted server does not load as a
// consumer, but that still holds the consumer's state file. Deleting the
// consumer then answers "not found", and creating it again under the same
// durable name restores that state and ignores OptStartSeq: delivery
// resumed after the old consumer's last delivery, so every message between
// the checkpoint and it was never applied, and the checkpoint moved past
// them (they were redelivered only after AckWait, below the checkpoint,
// and skipped as duplicates). Delivery must start right after the
// checkpoint whatever the server's directory holds. (Each session's
// consumer now has a name of its own, so a create never meets the
// leftover; the test keeps both guards honest.)
func TestResetConsumerIgnoresOrphanedConsumerState(t *testing.T) {
	ctx := context.Background()
	s := &storeServer{dir: t.TempDir()}
	s.start(t)
	defer s.stop()
	if _, err := s.js.CreateStream(ctx, jetstream.StreamConfig{Name: testStream, Subjects: []string{testPrefix + ".>"},
		Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	subject := envelope.Subject(testPrefix, testNS)
	for i := 1; i <= 30; i++ {
		data, err := envelope.Encode(&envelope.Envelope{Kind: envelope.KindChange, Collection: testNS,
			ClusterTime: transform.ClusterTime{T: 1000, I: uint32(i)}, Ordinal: 1, Operation: "insert",
			Mutations: []transform.Mutation{item{id: "k", qty: i}.mutation()}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.js.Publish(ctx, subject, data); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(nil, []Collection{{Namespace: testNS, Tables: testTables()}},
		Config{Stream: testStream, SubjectPrefix: testPrefix, BatchSize: 10, BatchWait: 200 * time.Millisecond}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c := a.cols[0]

	// The first process: delivery from the start, ten messages delivered
	// and not yet committed when it dies (the checkpoint stays at 0).
	cons, err := c.resetConsumer(ctx, s.js)
	if err != nil {
		t.Fatal(err)
	}
	f := c.fetch(cons)
	msgs, err := f.msgs, f.err
	if err != nil || len(msgs) != 10 || msgs[0].seq != 1 {
		t.Fatalf("first fetch: %d messages from %v, %v", len(msgs), seqsOf(msgs), err)
	}
	s.stop()

	// The crash's leftover: the consumer directory without meta.sum.
	odir := filepath.Join(s.dir, "jetstream", "$G", "streams", testStream, "obs", cons.CachedInfo().Name)
	for _, f := range []string{"meta.inf", "o.dat"} {
		if _, err := os.Stat(filepath.Join(odir, f)); err != nil {
			t.Fatalf("consumer directory layout changed: %v", err)
		}
	}
	if err := os.Remove(filepath.Join(odir, "meta.sum")); err != nil {
		t.Fatal(err)
	}

	// The restarted process: the checkpoint is still 0.
	for run := 1; run <= 2; run++ {
		s.start(t)
		c.pos.seq = 0
		cons, err = c.resetConsumer(ctx, s.js)
		if err != nil {
			t.Fatal(err)
		}
		f := c.fetch(cons)
		msgs, err = f.msgs, f.err
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 || msgs[0].seq != 1 {
			t.Fatalf("restart %d: delivery after checkpoint 0 starts at %v, want 1 (messages in between would never be applied)", run, seqsOf(msgs))
		}
		s.stop()
	}
	// The consumer the last session made is whole: the next start finds
	// it, the only one of the unit, and deletes it.
	s.start(t)
	st, err := s.js.Stream(ctx, testStream)
	if err != nil {
		t.Fatal(err)
	}
	names, err := UnitConsumers(ctx, st, testNS)
	if err != nil || len(names) != 1 || names[0] != cons.CachedInfo().Name {
		t.Fatalf("the unit's consumers after a restart: %v, %v; want only %s", names, err, cons.CachedInfo().Name)
	}
	if err := s.js.DeleteConsumer(ctx, testStream, names[0]); err != nil {
		t.Fatal(err)
	}
}

func seqsOf(msgs []message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.seq
	}
	return out
}
