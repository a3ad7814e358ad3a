package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/internal/testenv"
)

// TestPublisherByteWindow: with messages so large that the byte window
// (windowBytes) fills long before the count window (PublishWindow), the
// bytes in flight never exceed windowBytes, every publish completes and
// the stream holds the messages once each, in publish order.
//
// The bytes in flight are p.inflight. While Run is not running nothing
// resolves, so the window's fill is exact: the messages that fit are
// accepted and the next one waits (with a short deadline, it gives up:
// nothing could ever make room). Then Run resolves and the rest go out;
// inflight is read after each publish.
func TestPublisherByteWindow(t *testing.T) {
	n := testenv.NATS(t)
	b := open(t, Config{URL: n.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const size = 900_000 // under the server's max payload (1 MB) with the headers
	const total = 60
	fit := int(windowBytes / size)
	if fit+1 >= b.Config().PublishWindow {
		t.Fatalf("%d messages fill the byte window, the count window holds %d: the count window would bind first", fit+1, b.Config().PublishWindow)
	}
	subject := b.Subject("db.c")
	msg := func(i int) Message {
		data := make([]byte, size)
		binary.BigEndian.PutUint32(data, uint32(i))
		return Message{Subject: subject, MsgID: token(i), Data: data}
	}
	pub := b.NewPublisher(Position{}, nil)

	for i := range fit {
		if err := pub.Publish(ctx, msg(i), pos(i)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if got, want := pub.inflight.Load(), int64(i+1)*size; got != want {
			t.Fatalf("after publish %d, %d bytes in flight, want %d", i, got, want)
		}
	}
	short, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := pub.Publish(short, msg(fit), pos(fit))
	scancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish %d, past the byte window with nothing resolving: %v, %d bytes in flight (window %d); want it to wait",
			fit, err, pub.inflight.Load(), windowBytes)
	}
	if got := pub.Pending(); got != fit {
		t.Fatalf("%d publishes pending, want %d: the refused one joined the window", got, fit)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.Run(gctx) })
	var peak int64
	for i := fit; i < total; i++ {
		if err := pub.Publish(ctx, msg(i), pos(i)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		cur := pub.inflight.Load()
		if cur > windowBytes {
			t.Fatalf("after publish %d, %d bytes in flight, more than the window's %d", i, cur, windowBytes)
		}
		peak = max(peak, cur)
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pub.inflight.Load(); got != 0 {
		t.Fatalf("%d bytes in flight after Flush, want 0", got)
	}
	if got := pub.Durable(); got.Token != token(total-1) || got.StreamSeq != total {
		t.Fatalf("durable %+v, want token %s at sequence %d", got, token(total-1), total)
	}
	t.Logf("%d messages of %d bytes; %d fit in the byte window; at most %d bytes in flight seen with Run running", total, size, fit, peak)

	s, err := b.JetStream().Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != total {
		t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, total)
	}
	for seq := uint64(1); seq <= total; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		i := int(binary.BigEndian.Uint32(m.Data))
		if i != int(seq-1) || len(m.Data) != size || m.Header.Get(jetstream.MsgIDHeader) != token(i) {
			t.Fatalf("sequence %d holds message %d (%d bytes, id %q), want message %d: out of publish order",
				seq, i, len(m.Data), m.Header.Get(jetstream.MsgIDHeader), seq-1)
		}
	}
	cancel()
	_ = g.Wait()
}

// TestPublisherByteWindowOversized: the one case that exceeds windowBytes
// (reserve) is a message larger than the window, and it goes alone: it
// waits until nothing is in flight, and nothing joins it until it
// resolves. The server refuses payloads that large, so the oversized
// message is a reservation (reserve) without a send.
func TestPublisherByteWindowOversized(t *testing.T) {
	n := testenv.NATS(t)
	b := open(t, Config{URL: n.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subject := b.Subject("db.c")
	pub := b.NewPublisher(Position{}, nil)
	if err := pub.Publish(ctx, Message{Subject: subject, MsgID: token(0), Data: []byte("small")}, pos(0)); err != nil {
		t.Fatal(err)
	}

	big := &entry{}
	short, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := pub.reserve(short, big, windowBytes+1)
	scancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("oversized reservation beside a message in flight: %v, %d bytes in flight; want it to wait", err, pub.inflight.Load())
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.Run(gctx) })
	wait, wcancel := context.WithTimeout(ctx, 10*time.Second)
	err = pub.reserve(wait, big, windowBytes+1)
	wcancel()
	if err != nil {
		t.Fatalf("oversized reservation once the window is empty: %v", err)
	}
	if got := pub.inflight.Load(); got != windowBytes+1 {
		t.Fatalf("%d bytes in flight, want the oversized message's %d alone", got, windowBytes+1)
	}
	short, scancel = context.WithTimeout(ctx, 200*time.Millisecond)
	err = pub.Publish(short, Message{Subject: subject, MsgID: token(1), Data: []byte("small")}, pos(1))
	scancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish beside the oversized message: %v, %d bytes in flight; want it to wait", err, pub.inflight.Load())
	}
	cancel()
	_ = g.Wait()
}
