package oplogwindow_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture/oplogwindow"
	"github.com/mongopg/replicator/transform"
)

func TestGuard(t *testing.T) {
	env := mongotest.New(t, mongotest.Options{OplogMaxEvents: 20})
	env.RequireEmulator("a 20-entry oplog")
	ctx := context.Background()
	coll := env.Client.Database(env.Database("guard")).Collection("c")
	for i := range 50 {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	oldest, err := oplogwindow.OldestEntry(ctx, env.Client)
	if err != nil {
		t.Fatal(err)
	}
	if oldest.IsZero() {
		t.Fatal("oldest oplog entry has no ts")
	}
	tests := []struct {
		name      string
		ahead     uint32 // position seconds after the oldest entry
		warning   time.Duration
		remaining time.Duration
		want      string // substring of the warning, "" for none
	}{
		{name: "plenty", ahead: 7200, warning: time.Hour, remaining: -1},
		{name: "below threshold", ahead: 100, warning: time.Hour, remaining: -1, want: "below the 1h0m0s warning threshold"},
		{name: "shorter than the snapshot", ahead: 100, warning: time.Minute, remaining: 5 * time.Minute, want: "shorter than the snapshot's estimated remaining 5m0s"},
		{name: "snapshot fits", ahead: 1000, warning: time.Minute, remaining: 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			reg := prometheus.NewRegistry()
			pos := transform.ClusterTime{T: oldest.T + tc.ahead, I: 1}
			g := oplogwindow.New(env.Client, func(context.Context) (transform.ClusterTime, bool, error) { return pos, true, nil },
				oplogwindow.Config{Warning: tc.warning}, reg, slog.New(slog.NewTextHandler(&logs, nil)))
			g.SnapshotRemaining = func() time.Duration { return tc.remaining }
			h, err := g.Check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if h.Headroom != time.Duration(tc.ahead)*time.Second {
				t.Fatalf("headroom %v, want %ds", h.Headroom, tc.ahead)
			}
			if got := gauge(t, reg, "replicator_capture_oplog_headroom_seconds"); got != float64(tc.ahead) {
				t.Fatalf("gauge %v, want %d", got, tc.ahead)
			}
			if tc.want == "" {
				if h.Warning != "" || logs.Len() > 0 {
					t.Fatalf("unexpected warning %q, logs %q", h.Warning, logs.String())
				}
				return
			}
			if !strings.Contains(h.Warning, tc.want) || !strings.Contains(logs.String(), "level=WARN") {
				t.Fatalf("warning %q, logs %q; want %q", h.Warning, logs.String(), tc.want)
			}
		})
	}
}

// TestGuardAfterStart checks the headroom right after the source starts:
// the oldest oplog entry (a replica set's initiation entry) is at or before
// every capture position, so the headroom is never negative.
func TestGuardAfterStart(t *testing.T) {
	env := mongotest.New(t)
	ctx := context.Background()
	coll := env.Client.Database(env.Database("fresh")).Collection("c")
	cs, err := coll.Watch(ctx, mongo.Pipeline{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cs.Close(ctx) }()
	opened, ok := buffer.ClusterTimeOfToken(cs.ResumeToken().Lookup("_data").StringValue())
	if !ok {
		t.Fatalf("resume token %v has no cluster time", cs.ResumeToken())
	}
	// The first write lands in a later second than the stream's position,
	// as when capture starts and saves its position before anything is
	// written; an oplog that began with that write would be newer than
	// the position.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if !cs.Next(ctx) {
		t.Fatalf("no change event: %v", cs.Err())
	}
	et, ei := cs.Current.Lookup("clusterTime").Timestamp()
	tests := []struct {
		name string
		pos  transform.ClusterTime
	}{
		{name: "position saved before the first write", pos: opened},
		{name: "position of the first event", pos: transform.ClusterTime{T: et, I: ei}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			g := oplogwindow.New(env.Client, func(context.Context) (transform.ClusterTime, bool, error) { return tc.pos, true, nil },
				oplogwindow.Config{}, reg, nil)
			h, err := g.Check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if h.Headroom < 0 || tc.pos.Before(h.Oldest) {
				t.Fatalf("headroom %v: oldest oplog entry %v is after the position %v", h.Headroom, h.Oldest, tc.pos)
			}
			if got := gauge(t, reg, "replicator_capture_oplog_headroom_seconds"); got < 0 {
				t.Fatalf("gauge %v, want >= 0", got)
			}
		})
	}
}

func TestGuardWithoutPosition(t *testing.T) {
	env := mongotest.New(t)
	g := oplogwindow.New(env.Client, func(context.Context) (transform.ClusterTime, bool, error) { return transform.ClusterTime{}, false, nil },
		oplogwindow.Config{}, nil, nil)
	h, err := g.Check(context.Background())
	if err != nil || h.Headroom != 0 {
		t.Fatalf("Check = %+v, %v; want nothing measured", h, err)
	}
}

// gauge reads a label-less gauge from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
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
	t.Fatalf("gauge %s not registered", name)
	return 0
}
