package capture

import (
	"context"
	"runtime"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"
)

// The capture pipeline has three stages:
//
//  1. the reader (one goroutine) takes events off the change stream, copies
//     them (the driver reuses its buffers), numbers them inside their
//     cluster time (ordinal.go) and cuts them into batches in stream order;
//     an empty getMore becomes a caught-up batch holding the
//     postBatchResumeToken;
//  2. workers (GOMAXPROCS of them) prepare each batch's events: parse,
//     transform, encode (prepare);
//  3. the ordered stage (one goroutine) takes the batches in the order the
//     reader cut them, waits for each to be prepared and publishes its
//     events one by one (emit), so the publisher sees exactly the sequence
//     a single reader would give it: per-document order and the contiguous
//     prefix of positions are unchanged (invariants 3 and 4).
//
// A stop (an unreadable event) is decided in the ordered stage at the exact
// event: nothing after it is published and the reader is cancelled. A
// hold (a drop or rename, on_error: halt) is decided there too, and only
// that collection's events are read past from then on (holds.go). Events read but not yet emitted when the stream
// fails are emitted before the stream reopens after the last one.
//
// Bounds (invariant 8): a batch holds at most batchEvents events and, past
// its first event, at most batchBytes bytes of them; at most 2×workers
// batches wait for the ordered stage, plus the one it emits and the one
// the reader fills.
const (
	batchEvents = 64
	batchBytes  = 1 << 20
)

// batch is a run of consecutive change events, or a caught-up mark.
type batch struct {
	raws []bson.Raw
	ords []uint32 // ords[i] is raws[i]'s ordinal inside its cluster time
	out  []prepared
	// caughtUp marks an empty getMore: token is the postBatchResumeToken
	// (may be empty), ord the ordinal of the position at it, and at the
	// time it came back.
	caughtUp bool
	token    string
	ord      uint32
	at       time.Time
	// done is closed once out is filled (or the pipeline gave up).
	done chan struct{}
}

// runPipeline runs the three stages over cs until the stream fails or a
// stage stops; it never returns nil. The ordered stage's error wins over
// the reader's, which is then only the cancellation it caused.
func (c *Capture) runPipeline(ctx context.Context, cs *mongo.ChangeStream, r *reader) error {
	workers := max(1, runtime.GOMAXPROCS(0))
	order := make(chan *batch, 2*workers)
	work := make(chan *batch, 2*workers)

	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for b := range work {
				if gctx.Err() == nil {
					b.out = make([]prepared, len(b.raws))
					for i, raw := range b.raws {
						b.out[i] = c.prepare(raw, b.ords[i])
					}
				}
				close(b.done)
			}
			return nil
		})
	}
	// r.pos is the position the stream was opened after, read before the
	// ordered stage starts moving it: the numbering goes on from there.
	ords := ordinalsAfter(r.pos)
	g.Go(func() error { return c.emitBatches(gctx, r, order) })

	readErr := c.readBatches(gctx, cs, ords, order, work)
	close(order)
	close(work)
	if err := g.Wait(); err != nil {
		return err
	}
	return readErr
}

// readBatches is the reader stage: it returns the stream's error, or the
// context's once a later stage has stopped. ords numbers the events from
// the position the stream was opened after.
func (c *Capture) readBatches(ctx context.Context, cs *mongo.ChangeStream, ords ordinals, order, work chan<- *batch) error {
	send := func(b *batch) error {
		select {
		case order <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.caughtUp {
			return nil
		}
		select {
		case work <- b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var cur *batch
	size := 0
	for {
		if cs.TryNext(ctx) {
			if cur == nil {
				n := min(batchEvents, cs.RemainingBatchLength()+1)
				cur = &batch{raws: make([]bson.Raw, 0, n), ords: make([]uint32, 0, n), done: make(chan struct{})}
				size = 0
			}
			raw := make(bson.Raw, len(cs.Current))
			copy(raw, cs.Current)
			cur.raws = append(cur.raws, raw)
			cur.ords = append(cur.ords, ords.next(raw))
			size += len(raw)
			// Cut at the bounds, and where the driver's batch ends, so no
			// event waits for the next getMore.
			if len(cur.raws) >= batchEvents || size >= batchBytes || cs.RemainingBatchLength() == 0 {
				if err := send(cur); err != nil {
					return err
				}
				cur = nil
			}
			continue
		}
		if cur != nil {
			if err := send(cur); err != nil {
				return err
			}
			cur = nil
		}
		if err := cs.Err(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		done := make(chan struct{})
		close(done)
		token := tokenData(cs.ResumeToken())
		if err := send(&batch{caughtUp: true, token: token, ord: ords.caughtUp(token), at: time.Now(), done: done}); err != nil {
			return err
		}
	}
}

// emitBatches is the ordered stage: it emits the batches in the order the
// reader sent them, until order is closed and drained or an event stops
// the stream.
func (c *Capture) emitBatches(ctx context.Context, r *reader, order <-chan *batch) error {
	for b := range order {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := c.syncHolds(ctx, r); err != nil {
			return err
		}
		if b.caughtUp {
			if err := c.caughtUp(ctx, r, b.token, b.ord, b.at); err != nil {
				return err
			}
			if err := c.maybeHeartbeat(ctx, r); err != nil {
				return err
			}
			continue
		}
		if b.out == nil && len(b.raws) > 0 {
			// The workers gave up: the pipeline is stopping.
			return ctx.Err()
		}
		for i := range b.out {
			if err := c.emit(ctx, r, &b.out[i]); err != nil {
				return err
			}
			if err := c.maybeHeartbeat(ctx, r); err != nil {
				return err
			}
		}
		// Groups fill while more events are ready (group.go).
		if len(order) == 0 || r.groupsDue() {
			if err := c.flushGroups(ctx, r); err != nil {
				return err
			}
		}
	}
	// The stream reopens after r.pos: the last groups go out first.
	return c.flushGroups(ctx, r)
}
