package buffer

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/internal/testenv"
)

// TestStreamGauges: the stream gauges say what the buffer holds and how
// full it is against buffer.max_bytes.
func TestStreamGauges(t *testing.T) {
	srv := testenv.NATS(t)
	ctx := context.Background()
	b, err := Open(ctx, Config{URL: srv.URL, Stream: "GAUGES", SubjectPrefix: "gauges", MaxBytes: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.JetStream().DeleteStream(context.Background(), "GAUGES")
		_ = b.JetStream().DeleteKeyValue(context.Background(), "GAUGES_capture")
		b.Close()
	})
	payload := make([]byte, 1000)
	for range 100 {
		if _, err := b.JetStream().Publish(ctx, b.Subject("db.c"), payload); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collector())
	if n := gatherValue(t, reg, "replicator_buffer_stream_messages"); n != 100 {
		t.Fatalf("stream messages %v, want 100", n)
	}
	fill := gatherValue(t, reg, "replicator_buffer_fill_ratio")
	if fill < 0.09 || fill > 0.2 {
		t.Fatalf("fill ratio %v, want about 100 KB of 1 MiB", fill)
	}
	if max := gatherValue(t, reg, "replicator_buffer_stream_max_bytes"); max != 1<<20 {
		t.Fatalf("max bytes %v", max)
	}
}

func gatherValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}
