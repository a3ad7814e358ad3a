package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

func TestFetchBudgetReserve(t *testing.T) {
	ctx := context.Background()
	b := newFetchBudget(1000, nil)
	if n, err := b.reserve(ctx, 100, 600); err != nil || n != 600 {
		t.Fatalf("first reserve: %d, %v; want 600", n, err)
	}
	// Fewer free than asked: it takes what is free.
	if n, err := b.reserve(ctx, 100, 600); err != nil || n != 400 {
		t.Fatalf("second reserve: %d, %v; want the 400 free", n, err)
	}
	// Nothing free: it waits for a release.
	got := make(chan int64)
	go func() {
		n, err := b.reserve(ctx, 100, 300)
		if err != nil {
			t.Error(err)
		}
		got <- n
	}()
	select {
	case n := <-got:
		t.Fatalf("reserved %d of a spent budget", n)
	case <-time.After(50 * time.Millisecond):
	}
	b.release(50) // less than it needs
	select {
	case n := <-got:
		t.Fatalf("reserved %d with 50 free, needing 100", n)
	case <-time.After(50 * time.Millisecond):
	}
	b.release(250)
	if n := <-got; n != 300 {
		t.Fatalf("after the release: reserved %d, want 300", n)
	}
	if b.inUse() != 1000 {
		t.Fatalf("in use %d, want 1000", b.inUse())
	}
	// A message larger than any fetch is counted even above the limit.
	b.add(500)
	if b.inUse() != 1500 {
		t.Fatalf("in use %d after add, want 1500", b.inUse())
	}
	// A waiting reserve ends with its context.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := b.reserve(cctx, 1, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reserve past its context: %v", err)
	}
	b.release(1500)
	if b.inUse() != 0 {
		t.Fatalf("in use %d after releasing everything", b.inUse())
	}
	// A minimum above the limit waits only for the whole budget.
	if n, err := b.reserve(ctx, 5000, 5000); err != nil || n != 1000 {
		t.Fatalf("reserve above the limit: %d, %v; want the whole 1000", n, err)
	}
}

func TestFetchSize(t *testing.T) {
	const batch = 8 << 20
	for _, c := range []struct{ asked, got, want int64 }{
		{minFetchBytes, 0, minFetchBytes},     // idle: stays small
		{minFetchBytes, minFetchBytes, batch}, // filled: a backlog, the most
		{1 << 20, 600 << 10, batch},           // more than half: the same
		{4 << 20, 300 << 10, 600 << 10},       // a trickle: twice what came
		{minFetchBytes, 3 << 20, batch},       // one large message: the most
		{1 << 20, 10 << 10, minFetchBytes},    // never below the minimum
		{8 << 20, 5 << 20, batch},             // never above BatchBytes
		{64 << 10, 100 << 10, batch},          // a budget-limited fetch that filled
	} {
		if got := fetchSize(c.asked, c.got, batch); got != c.want {
			t.Errorf("fetchSize(%d, %d) = %d, want %d", c.asked, c.got, got, c.want)
		}
	}
}

// TestFetchBudgetBoundsHeldBytes: four partitions with a backlog each
// would hold up to 4 × 3 × BatchBytes of messages without a budget; under
// one, the bytes fetched and not yet committed stay within it (but for
// the few messages of an unbounded single-message fetch), and every event
// is still applied.
func TestFetchBudgetBoundsHeldBytes(t *testing.T) {
	buf := newBuffer(t)
	pool := testDB(t, testenv.PostgresURL(t))
	ctx := context.Background()
	const parts, perPart = 4, 300
	tag := strings.Repeat("t", 200)
	want := model{}
	maxMsg := 0
	for p, part := range envelope.Partitions(parts) {
		subject := envelope.PartitionSubject(testPrefix, testNS, part)
		for i := range perPart {
			// Keys stay in their partition: k<partition>-<n>, ten each.
			id := fmt.Sprintf("k%d-%d", p, i%10)
			it := item{id: id, qty: i, tags: []string{tag, tag, tag, tag, tag}}
			ts := buf.ts + uint32(i)
			data, err := envelope.Encode(&envelope.Envelope{Kind: envelope.KindChange, Collection: testNS,
				ClusterTime: transform.ClusterTime{T: ts, I: 1}, Ordinal: 1, WallTime: time.Unix(int64(ts), 0),
				Operation: "update", DocumentKey: fmt.Sprintf(`{"_id":%q}`, id), Mutations: []transform.Mutation{it.mutation()}})
			if err != nil {
				t.Fatal(err)
			}
			maxMsg = max(maxMsg, len(data))
			if _, err := buf.js.Publish(ctx, subject, data); err != nil {
				t.Fatal(err)
			}
			want[id] = fmt.Sprintf("qty=%d v=%d/1 tags=%s", i, ts, strings.Join(it.tags, ","))
		}
	}
	const batchBytes, budget = 64 << 10, 160 << 10 // about 30 messages a fetch; demand 4 × 3 × 64 KiB
	cfg := Config{Stream: testStream, SubjectPrefix: testPrefix, BatchBytes: batchBytes, FetchBudget: budget,
		BatchWait: 20 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond}
	reg := prometheus.NewRegistry()
	a, err := New(pool, []Collection{{Namespace: testNS, Tables: testTables(), Partitions: parts}}, cfg, reg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	b := a.cols[0].budget
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx, buf.js) }()
	var peak int64
	var samples int
	deadline := time.Now().Add(60 * time.Second)
	for {
		peak = max(peak, b.inUse())
		samples++
		if applied(reg) >= parts*perPart {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("applied %v of %d events within 60s", applied(reg), parts*perPart)
		}
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := b.inUse(); got != 0 {
		t.Errorf("%d bytes still held after Run returned", got)
	}
	// Beyond the budget: at most one single-message fetch per unit.
	if limit := int64(budget + parts*maxMsg); peak > limit {
		t.Errorf("peak %d bytes held, above the budget %d (+%d for single-message fetches)", peak, budget, parts*maxMsg)
	}
	t.Logf("peak %d bytes held (budget %d, %d-byte messages, %d samples)", peak, budget, maxMsg, samples)
	checkState(t, pool, want)
}
