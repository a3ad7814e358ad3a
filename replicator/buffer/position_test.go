package buffer

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/transform"
)

// TestPositionOrdinal: the ordinal of the event at the token is saved and
// loaded with the position and becomes durable with its publish; positions
// saved before the field existed load with ordinal 0.
func TestPositionOrdinal(t *testing.T) {
	n := testenv.NATS(t)
	b := open(t, Config{URL: n.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps := b.Positions()

	tests := []struct {
		name string
		pos  Position
	}{
		{"inside a transaction", Position{Token: token(1), ClusterTime: transform.ClusterTime{T: 1001, I: 1}, Ordinal: 3, StreamSeq: 9}},
		{"postBatchResumeToken", Position{Token: token(2), ClusterTime: transform.ClusterTime{T: 1002, I: 1}}},
		{"start time", Position{ClusterTime: transform.ClusterTime{T: 1003, I: 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ps.Save(ctx, "src", tt.pos); err != nil {
				t.Fatal(err)
			}
			got, err := ps.Load(ctx, "src")
			if err != nil {
				t.Fatal(err)
			}
			got.SavedAt = time.Time{}
			if got != tt.pos {
				t.Fatalf("loaded %+v, want %+v", got, tt.pos)
			}
		})
	}

	b0, err := json.Marshal(Position{Token: token(3)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b0), "ordinal") {
		t.Fatalf("ordinal 0 is written: %s", b0)
	}
	// A position saved by an older capture has no ordinal.
	if _, err := b.kv.Put(ctx, positionKey("old"), []byte(`{"token":"`+token(4)+`","cluster_time":{"t":1004,"i":1},"stream_seq":3}`)); err != nil {
		t.Fatal(err)
	}
	old, err := ps.Load(ctx, "old")
	if err != nil || old.Ordinal != 0 || old.Token != token(4) {
		t.Fatalf("old position %+v (%v), want its token and ordinal 0", old, err)
	}

	pub := b.NewPublisher(Position{}, nil)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.Run(gctx) })
	want := Position{Token: token(5), ClusterTime: transform.ClusterTime{T: 1005, I: 1}, Ordinal: 2}
	if err := pub.Publish(ctx, Message{Subject: b.Subject("a.b"), MsgID: want.Token, Data: []byte("x")}, want); err != nil {
		t.Fatal(err)
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := pub.Durable(); d.Ordinal != want.Ordinal || d.Token != want.Token || d.StreamSeq == 0 {
		t.Fatalf("durable %+v, want %+v with its stream sequence", d, want)
	}
	cancel()
	_ = g.Wait()
}
