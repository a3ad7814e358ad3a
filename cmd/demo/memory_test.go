package main

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/internal/mongoemu"
	"github.com/mongopg/replicator/internal/workload"
)

// TestDemoMemoryLevelsOff drives the demo's emulator and workload, built
// with the demo's option functions, far past their bounds (the oplog bound
// scaled down from 64 MiB to 4 MiB and the data set to 500 documents per
// collection, so that it runs in seconds) and checks that memory levels off
// instead of growing with the writes:
//
//   - the retained oplog never exceeds its bound, while the workload writes
//     more than five times as much;
//   - no collection holds more than the workload's bound;
//   - the Go heap in use after a collection stays below the stated ceiling
//     (the heap before the emulator started, plus 1.5 times the oplog
//     bound, plus 8 MiB for the data set and connections), and grows by
//     less than 2 MiB over the second half of the run;
//   - a change stream opened now works and resumes, while resuming from
//     the first event fails with ChangeStreamHistoryLost (286): history
//     was discarded, never skipped.
//
// With an unbounded oplog and workload the heap ends near 40 MB, and grows
// by about 18 MB over the second half.
func TestDemoMemoryLevelsOff(t *testing.T) {
	const (
		oplogBytes = 4 << 20
		maxDocs    = 500
		ops        = 30_000
		dataSlack  = 8 << 20
		growSlack  = 2 << 20
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := heapInUse()

	emu := mongoemu.New(emulatorOptions(nil, oplogBytes))
	if err := emu.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(emu.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background()) //nolint:errcheck
	ns := workload.DefaultNamespaces()
	gen := workload.New(client, ns, workloadOptions(7, maxDocs))

	// The token of the first event: its resume point falls off the oplog.
	first := func() bson.Raw {
		cs, err := client.Watch(ctx, mongo.Pipeline{})
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close(ctx)
		if err := gen.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if !cs.Next(ctx) {
			t.Fatalf("no first event: %v", cs.Err())
		}
		return cs.ResumeToken()
	}()

	start := time.Now()
	var mid uint64
	var most int64 // the most oplog bytes retained at a check
	for i := 2; i <= ops; i++ {
		if err := gen.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if i%500 == 0 {
			most = max(most, emu.OplogStats().Bytes)
		}
		if i == ops/2 {
			mid = heapInUse()
		}
	}
	elapsed := time.Since(start)
	end := heapInUse()
	st := emu.OplogStats()
	events := gen.Stats().Events
	t.Logf("%d operations, %d events in %s; oplog %d entries, %d bytes, %d discarded; heap in use %.1f MB before, %.1f MB halfway, %.1f MB at the end",
		ops, events, elapsed.Round(time.Millisecond), st.Entries, st.Bytes, st.Discarded, mb(base), mb(mid), mb(end))

	if most > oplogBytes || st.Bytes > oplogBytes || st.Discarded < 4*int64(st.Entries) {
		t.Errorf("oplog %+v, at most %d bytes retained: want at most %d bytes and more than four times as many entries discarded as retained",
			st, most, oplogBytes)
	}
	for _, n := range []string{ns.Advisories, ns.Statements, ns.Runs} {
		db, coll, _ := strings.Cut(n, ".")
		count, err := client.Database(db).Collection(coll).CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if count > maxDocs {
			t.Errorf("%s holds %d documents, over the workload's bound of %d", n, count, maxDocs)
		}
	}
	if ceiling := base + oplogBytes*3/2 + dataSlack; end > ceiling {
		t.Errorf("heap in use %.1f MB at the end, over the ceiling of %.1f MB", mb(end), mb(ceiling))
	}
	if end > mid+growSlack {
		t.Errorf("heap in use grew from %.1f MB to %.1f MB over the second half", mb(mid), mb(end))
	}

	// History was discarded, never skipped.
	_, err = client.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(first))
	var se mongo.ServerError
	if !errors.As(err, &se) || !se.HasErrorCode(286) {
		t.Errorf("resume from the first event: %v, want ChangeStreamHistoryLost (286)", err)
	}
	// A stream opened now sees new writes, and resumes.
	marker := client.Database("demo").Collection("marker")
	cs, err := client.Watch(ctx, mongo.Pipeline{})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(ctx)
	for i := range 2 {
		if _, err := marker.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
		if !cs.Next(ctx) || cs.Current.Lookup("documentKey", "_id").Int32() != int32(i) {
			t.Fatalf("change stream opened now: event %v, err %v", cs.Current, cs.Err())
		}
		if i == 0 {
			tok := cs.ResumeToken()
			_ = cs.Close(ctx)
			if cs, err = client.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(tok)); err != nil {
				t.Fatalf("resume after a current event: %v", err)
			}
		}
	}
}

// heapInUse returns the Go heap in use after a full collection (two, so
// that pooled objects are released too).
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func mb(b uint64) float64 { return float64(b) / 1e6 }
