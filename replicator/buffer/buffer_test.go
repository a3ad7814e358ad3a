package buffer

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/transform"
)

func open(t *testing.T, cfg Config) *Buffer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func token(i int) string { return fmt.Sprintf("82%016X%08X00", uint64(1000+i)<<32|1, 0) }

func pos(i int) Position {
	ct, _ := ClusterTimeOfToken(token(i))
	return Position{Token: token(i), ClusterTime: ct}
}

func TestProvisionIsIdempotent(t *testing.T) {
	n := testenv.NATS(t)
	cfg := Config{URL: n.URL, MaxAge: time.Hour, DuplicateWindow: time.Minute}
	b := open(t, cfg)
	b2 := open(t, cfg)
	s, err := b2.JetStream().Stream(context.Background(), DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config
	if got.Discard != jetstream.DiscardNew || got.Duplicates != time.Minute || got.Subjects[0] != "replicator.>" {
		t.Fatalf("stream config %+v", got)
	}
	_ = b
}

func TestPublisherContiguousPrefixAndDedup(t *testing.T) {
	n := testenv.NATS(t)
	b := open(t, Config{URL: n.URL, PublishWindow: 16})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := b.NewPublisher(Position{}, nil)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.Run(gctx) })
	const total = 500
	for i := range total {
		m := Message{Subject: b.Subject("db.c"), MsgID: token(i), Data: []byte(strconv.Itoa(i))}
		if err := pub.Publish(ctx, m, pos(i)); err != nil {
			t.Fatal(err)
		}
		if pub.Pending() > 16 {
			t.Fatalf("window exceeded: %d pending", pub.Pending())
		}
	}
	// Re-publish the tail, as after a crash: deduplicated.
	for i := total - 50; i < total; i++ {
		m := Message{Subject: b.Subject("db.c"), MsgID: token(i), Data: []byte(strconv.Itoa(i))}
		if err := pub.Publish(ctx, m, pos(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pub.Durable(); got.Token != token(total-1) || got.StreamSeq != total {
		t.Fatalf("durable %+v, want token %s seq %d", got, token(total-1), total)
	}
	s, _ := b.JetStream().Stream(ctx, DefaultStream)
	info, _ := s.Info(ctx)
	if info.State.Msgs != total {
		t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, total)
	}
	// Messages are in publish order.
	for i := 1; i <= total; i += 97 {
		m, err := s.GetMsg(ctx, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != strconv.Itoa(i-1) {
			t.Fatalf("seq %d holds %q", i, m.Data)
		}
	}
	cancel()
	_ = g.Wait()
}

func TestPublisherSurvivesNATSRestart(t *testing.T) {
	n := testenv.NATS(t)
	b := open(t, Config{URL: n.URL, PublishWindow: 64})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := b.NewPublisher(Position{}, nil)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.Run(gctx) })
	const total = 3000
	for i := range total {
		if i == total/3 {
			go n.Restart()
		}
		m := Message{Subject: b.Subject("db.c"), MsgID: token(i), Data: []byte(strconv.Itoa(i))}
		if err := pub.Publish(ctx, m, pos(i)); err != nil {
			t.Fatal(err)
		}
	}
	fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
	defer fcancel()
	if err := pub.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if got := pub.Durable(); got.Token != token(total-1) {
		t.Fatalf("durable %+v", got)
	}
	s, err := b.JetStream().Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != total {
		t.Fatalf("stream holds %d messages, want %d (nothing lost, nothing twice)", info.State.Msgs, total)
	}
	cancel()
	_ = g.Wait()
}

func TestEmbeddedKeepsDataAndPositions(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := open(t, Config{DataDir: dir})
	want := Position{Token: token(7), ClusterTime: transform.ClusterTime{T: 1007, I: 1}, StreamSeq: 1}
	if err := b.Positions().Save(ctx, "src", want); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JetStream().Publish(ctx, b.Subject("a.b"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A second process on the same directory attaches to the running server.
	b2 := open(t, Config{DataDir: dir})
	if b2.emb.srv != nil {
		t.Fatal("second open started a second server on the same directory")
	}
	b2.Close()
	b.Close()

	b3 := open(t, Config{DataDir: dir})
	got, err := b3.Positions().Load(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	if got.Token != want.Token || got.ClusterTime != want.ClusterTime {
		t.Fatalf("position %+v, want %+v", got, want)
	}
	s, _ := b3.JetStream().Stream(ctx, DefaultStream)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("after restart %d messages", info.State.Msgs)
	}
	if _, err := b3.Positions().Load(ctx, "other"); err != ErrNoPosition {
		t.Fatalf("unknown source: %v", err)
	}
}

func TestLeaseExcludesSecondHolder(t *testing.T) {
	n := testenv.NATS(t)
	b := open(t, Config{URL: n.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l1, err := b.AcquireLease(ctx, "src", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	short, scancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer scancel()
	if _, err := b.AcquireLease(short, "src", 3*time.Second); err == nil {
		t.Fatal("second holder acquired a held lease")
	}
	l1.Release(ctx)
	if _, err := b.AcquireLease(ctx, "src", 3*time.Second); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestClusterTimeOfToken(t *testing.T) {
	ct, ok := ClusterTimeOfToken("82" + "0000006500000002" + "0000000100")
	if !ok || ct != (transform.ClusterTime{T: 0x65, I: 2}) {
		t.Fatalf("got %+v %v", ct, ok)
	}
	if _, ok := ClusterTimeOfToken("zz"); ok {
		t.Fatal("bad token decoded")
	}
}
