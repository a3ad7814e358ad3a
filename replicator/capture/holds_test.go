package capture

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/transform"
)

// kinds lists envelopes as kind/operation/_id.
func kinds(envs []string) string { return strings.Join(envs, ",") }

func (f *fixture) kindsOf(t *testing.T, ns string) string {
	t.Helper()
	var out []string
	for _, e := range f.envelopesOf(t, ns) {
		k := string(e.Kind) + "/" + e.Operation
		if e.DocumentKey != "" {
			k += e.DocumentKey
		}
		out = append(out, k)
	}
	return kinds(out)
}

// running fails the test if capture has stopped.
func running(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("capture stopped: %v", err)
	default:
	}
}

func (f *fixture) release(t *testing.T, ns string) transform.ClusterTime {
	t.Helper()
	t0, err := ReleaseHolds(context.Background(), f.buf, DefaultSource, []string{ns},
		func(ctx context.Context) (transform.ClusterTime, error) { return ClusterTime(ctx, f.env.Client) })
	if err != nil {
		t.Fatal(err)
	}
	if t0.IsZero() {
		t.Fatal("ReleaseHolds returned no T0 for a held collection")
	}
	return t0
}

// TestDropHoldsOnlyThatCollection: a drop holds the dropped collection
// (control envelope, hold with the recovery) while the others stream on,
// across a restart; the recovery releases the hold and the collection's
// new events are published again, with capture running or stopped.
func TestDropHoldsOnlyThatCollection(t *testing.T) {
	for _, captureRuns := range []bool{true, false} {
		name := "capture running"
		if !captureRuns {
			name = "capture stopped"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, "")
			ctx, cancel := context.WithCancel(context.Background())
			done := f.start(t, ctx)
			f.insert(t, bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 1}})
			db, coll, _ := strings.Cut(f.ns, ".")
			if err := f.env.Client.Database(db).Collection(coll).Drop(ctx); err != nil {
				t.Fatal(err)
			}
			f.insert(t, bson.D{{Key: "_id", Value: "b"}, {Key: "n", Value: 2}}) // recreated, held
			f.insertInto(t, f.otherNS, bson.D{{Key: "_id", Value: "x"}})
			waitFor(t, "the other collection's insert", func() bool {
				return strings.Contains(f.kindsOf(t, f.otherNS), `change/insert{"_id":"x"}`)
			})
			running(t, done)
			h, _, err := f.buf.Holds().Get(ctx, DefaultSource, f.ns)
			if err != nil {
				t.Fatalf("hold of %s: %v", f.ns, err)
			}
			if !strings.Contains(h.Reason, "dropped") || !strings.Contains(h.Recovery, "replicator resync --collection "+f.ns) {
				t.Fatalf("hold %+v", h)
			}
			want := `change/insert{"_id":"a"},control/drop`
			if got := f.kindsOf(t, f.ns); got != want {
				t.Fatalf("held collection's buffer holds %s, want %s", got, want)
			}

			// A restart reads on: the drop is behind the position, the hold stays.
			cancel()
			if err := wait(t, done); err != nil {
				t.Fatalf("graceful stop: %v", err)
			}
			if !captureRuns {
				f.release(t, f.ns)
			}
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			done = f.start(t, ctx)
			f.insert(t, bson.D{{Key: "_id", Value: "c"}, {Key: "n", Value: 3}})
			if captureRuns {
				time.Sleep(time.Second)
				running(t, done)
				if got := f.kindsOf(t, f.ns); got != want {
					t.Fatalf("after a restart the held collection's buffer holds %s, want %s", got, want)
				}
				f.release(t, f.ns)
			}
			f.insert(t, bson.D{{Key: "_id", Value: "d"}, {Key: "n", Value: 4}})
			waitFor(t, "the released collection's insert", func() bool {
				return strings.Contains(f.kindsOf(t, f.ns), `change/insert{"_id":"d"}`)
			})
			running(t, done)
			// Once the saved position is past the release, the hold is gone.
			waitFor(t, "the released hold to be forgotten", func() bool {
				_, _, err := f.buf.Holds().Get(ctx, DefaultSource, f.ns)
				return errors.Is(err, buffer.ErrNoHold)
			})
		})
	}
}

// TestRenameHoldsSourceAndTarget: a rename holds the renamed collection
// and its target, and names the configuration change and the resync of
// the target as the recovery.
func TestRenameHoldsSourceAndTarget(t *testing.T) {
	f := newFixture(t, "")
	f.env.RequireEmulator("renameCollection inside the test database")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := f.start(t, ctx)
	f.insert(t, bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 1}})
	db, coll, _ := strings.Cut(f.ns, ".")
	to := db + ".renamed"
	if err := f.env.Client.Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: f.ns}, {Key: "to", Value: to}}).Err(); err != nil {
		t.Fatal(err)
	}
	_ = coll
	f.insertInto(t, f.otherNS, bson.D{{Key: "_id", Value: "x"}})
	waitFor(t, "the other collection's insert", func() bool {
		return strings.Contains(f.kindsOf(t, f.otherNS), `change/insert{"_id":"x"}`)
	})
	running(t, done)
	h, _, err := f.buf.Holds().Get(ctx, DefaultSource, f.ns)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.Recovery, "set this collection's source to "+to) || !strings.Contains(h.Recovery, "replicator resync --collection "+to) {
		t.Fatalf("recovery %q", h.Recovery)
	}
	if _, _, err := f.buf.Holds().Get(ctx, DefaultSource, to); err != nil {
		t.Fatalf("the rename target is not held: %v", err)
	}
}

// TestHaltHoldsOnlyThatCollection: under on_error: halt a document that
// cannot be transformed holds its collection (nothing of it published
// after the good insert) while the other collection streams on; the
// recovery the hold names works.
func TestHaltHoldsOnlyThatCollection(t *testing.T) {
	f := newFixture(t, transform.OnErrorHalt)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := f.start(t, ctx)
	f.insert(t, bson.D{{Key: "_id", Value: "ok"}, {Key: "n", Value: 1}}, bson.D{{Key: "_id", Value: "bad"}})
	f.insert(t, bson.D{{Key: "_id", Value: "later"}, {Key: "n", Value: 2}})
	f.insertInto(t, f.otherNS, bson.D{{Key: "_id", Value: "x"}})
	waitFor(t, "the other collection's insert", func() bool {
		return strings.Contains(f.kindsOf(t, f.otherNS), `change/insert{"_id":"x"}`)
	})
	running(t, done)
	if got, want := f.kindsOf(t, f.ns), `change/insert{"_id":"ok"}`; got != want {
		t.Fatalf("halted collection's buffer holds %s, want %s", got, want)
	}
	h, _, err := f.buf.Holds().Get(ctx, DefaultSource, f.ns)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.Reason, "on_error: halt") || !strings.Contains(h.Recovery, "resync --collection "+f.ns) {
		t.Fatalf("hold %+v", h)
	}
	f.release(t, f.ns)
	f.insert(t, bson.D{{Key: "_id", Value: "after"}, {Key: "n", Value: 3}})
	waitFor(t, "the released collection's insert", func() bool {
		return strings.Contains(f.kindsOf(t, f.ns), `change/insert{"_id":"after"}`)
	})
}
