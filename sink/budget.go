package sink

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// fetchBudget bounds the bytes of buffer messages an Applier holds across
// all of its units: fetched (or being fetched) and not yet committed
// (Config.FetchBudget). Each unit keeps up to three batches in memory
// (session: one applying, one waiting, one being fetched), so without a
// bound an apply process's memory would grow with the number of units it
// applies, whatever each unit's BatchBytes.
//
// A fetch reserves its FetchMaxBytes before it is sent and gives back what
// the batch did not use as soon as it arrives; the rest goes back once the
// batch is committed or dropped. A unit asks for little while it is idle
// and for BatchBytes as soon as a fetch fills (fetchSize), so idle units
// hold little of the budget. The one message
// larger than any fetch (fetchOne) is counted when it arrives, even above
// the limit: it has to be applied, and it is bounded by the stream's
// largest message.
type fetchBudget struct {
	limit int64
	gauge prometheus.Gauge

	mu    sync.Mutex
	held  int64
	freed chan struct{} // closed (and replaced) whenever bytes are released
}

func newFetchBudget(limit int64, gauge prometheus.Gauge) *fetchBudget {
	return &fetchBudget{limit: limit, gauge: gauge, freed: make(chan struct{})}
}

// reserve waits until at least least bytes are free (or ctx ends), then
// takes as many as are free, up to most. least is capped at the limit.
func (b *fetchBudget) reserve(ctx context.Context, least, most int64) (int64, error) {
	if b == nil {
		return most, nil
	}
	least = min(least, most, b.limit)
	for {
		b.mu.Lock()
		if free := b.limit - b.held; free >= least {
			n := min(most, free)
			b.held += n
			b.report()
			b.mu.Unlock()
			return n, nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-freed:
		}
	}
}

// add counts n bytes that arrived without a reservation (fetchOne), even
// above the limit.
func (b *fetchBudget) add(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	b.held += n
	b.report()
	b.mu.Unlock()
}

// release gives n bytes back.
func (b *fetchBudget) release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	b.held -= n
	if b.held < 0 {
		panic("sink: fetch budget released more than it held")
	}
	b.report()
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// inUse is the bytes held now.
func (b *fetchBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

func (b *fetchBudget) report() {
	if b.gauge != nil {
		b.gauge.Set(float64(b.held))
	}
}

// minFetchBytes is the least a fetch asks for: what an idle unit reserves
// for its next poll, and what a fetch waits for when the budget is spent.
// It holds one of capture's batch messages (at most 128 KiB).
const minFetchBytes = 128 << 10

// fetchSize is the bytes the unit's next fetch asks for: BatchBytes after
// a fetch that filled at least half of what it asked (a backlog: the
// budget limits what it gets), otherwise twice what it got, at least
// minFetchBytes.
func fetchSize(asked, got int64, batchBytes int) int64 {
	if got >= asked/2 {
		return int64(batchBytes)
	}
	return min(int64(batchBytes), max(minFetchBytes, 2*got))
}
