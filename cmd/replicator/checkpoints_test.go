package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/sink"
)

func TestCheckpointsCommand(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	if code, _, errs := run(t, "migrate", "--target", url); code != 0 {
		t.Fatal(errs)
	}
	pool := testenv.Pool(t, url)
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	const ns = "shop.items"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "REPLICATOR", Subjects: []string{"replicator.>"}}); err != nil {
		t.Fatal(err)
	}
	var mid time.Time
	for i := 1; i <= 10; i++ {
		if i == 6 {
			time.Sleep(20 * time.Millisecond)
			mid = time.Now()
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := js.Publish(ctx, envelope.Subject("replicator", ns), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := checkpoints.Set(ctx, pool, ns, 10, checkpoints.SetOptions{AllowForward: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, "REPLICATOR", jetstream.ConsumerConfig{Durable: sink.Durable(ns)}); err != nil {
		t.Fatal(err)
	}
	seqOf := func() uint64 {
		c, err := checkpoints.Get(ctx, pool, ns)
		if err != nil {
			t.Fatal(err)
		}
		return c.Seq
	}
	cases := []struct {
		name    string
		args    []string
		code    int
		out     string
		wantSeq uint64
	}{
		{"list", []string{"list"}, 0, "shop.items  10", 10},
		{"set needs a position", []string{"set", "--collection", ns}, 2, "", 10},
		{"forward is refused", []string{"set", "--collection", ns, "--seq", "20"}, 1, "", 10},
		{"rewind to a sequence", []string{"set", "--collection", ns, "--seq", "7"}, 0, "moved from 10 to 7", 7},
		{"rewind to a time", []string{"set", "--collection", ns, "--time", mid.Format(time.RFC3339Nano)}, 0, "moved from 7 to 5", 5},
		{"a time after every message replays nothing", []string{"set", "--collection", ns, "--time", time.Now().Add(time.Hour).Format(time.RFC3339)}, 0, "nothing to replay", 5},
		{"rewind to the beginning", []string{"set", "--collection", ns, "--seq", "0"}, 0, "moved from 5 to 0", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"checkpoints"}, tc.args...)
			args = append(args, "--target", url)
			if tc.args[0] == "set" {
				args = append(args, "--nats-url", srv.URL)
			}
			code, out, errs := run(t, args...)
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Fatalf("code %d (want %d), stdout %q, stderr %q", code, tc.code, out, errs)
			}
			if got := seqOf(); got != tc.wantSeq {
				t.Errorf("checkpoint %d, want %d", got, tc.wantSeq)
			}
		})
	}
	if _, err := js.Consumer(ctx, "REPLICATOR", sink.Durable(ns)); err == nil {
		t.Error("the durable consumer survived a rewind")
	}
}
