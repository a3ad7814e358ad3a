package buffer

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/internal/testenv"
)

// BenchmarkPublish: the publisher's rate into an in-process nats-server
// with file storage, 2 KB messages with a Nats-Msg-Id each, the default
// window.
func BenchmarkPublish(b *testing.B) {
	n := testenv.NATS(b)
	buf, err := Open(context.Background(), Config{URL: n.URL}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := buf.NewPublisher(Position{}, nil)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.Run(gctx) })
	data := make([]byte, 2048)
	for i := range data {
		data[i] = 'a' + byte(i%26)
	}
	subject := buf.Subject("db.c")
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		m := Message{Subject: subject, MsgID: token(i), Data: data}
		if err := pub.Publish(ctx, m, pos(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	b.StopTimer()
	cancel()
	_ = g.Wait()
}
