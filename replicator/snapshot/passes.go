package snapshot

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// copyPass copies refs, at most Parallelism at a time, and finishes each
// collection whose chunks are then all done (or were when it started). It
// returns the chunks a foreign-key violation deferred; with final set,
// none is deferred (copyChunk). A halting collection is recorded (halt)
// and skips its remaining chunks; any other failure stops the pass and is
// returned.
func (s *Snapshot) copyPass(ctx context.Context, refs []chunkRef, final bool) ([]chunkRef, error) {
	var (
		mu       sync.Mutex
		deferred []chunkRef
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Parallelism)
	for _, j := range s.jobs {
		if j.pending.Load() == 0 && !j.finishing.Swap(true) {
			g.Go(func() error { return s.finish(gctx, j) })
		}
	}
	for _, ref := range refs {
		j, c := ref.job, ref.chunk
		g.Go(func() error {
			if j.halted.Load() != nil {
				return nil
			}
			err := s.copyChunk(gctx, j, c, final)
			var halt *HaltError
			switch {
			case err == nil:
			case errors.Is(err, errDeferred):
				mu.Lock()
				deferred = append(deferred, ref)
				mu.Unlock()
				return nil
			case errors.As(err, &halt):
				s.halt(j, halt)
				return nil
			default:
				j.track.setState(StateFailed)
				s.deps.Metrics.setState(j.m.Namespace(), StateFailed)
				return err
			}
			if j.pending.Add(-1) == 0 && !j.finishing.Swap(true) {
				return s.finish(gctx, j)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return deferred, nil
}

// Backoff between passes over chunks deferred by a foreign key.
const (
	firstDeferredBackoff = time.Second
	maxDeferredBackoff   = 10 * time.Second
)

// retryDeferred copies the chunks a foreign-key violation deferred: their
// referenced rows may come from chunks copied after them, from streaming
// (documents written since T0), or from another run. Every other chunk has
// been copied when it starts; it retries them in passes with backoff
// (1 s doubling to 10 s), and the pass that starts once
// Config.ForeignKeyWait has passed is final: a document still violating a
// foreign key is then dead-lettered, or halts its collection, like any
// other violation. So a deferred chunk is done at most ForeignKeyWait plus
// one pass after the others.
func (s *Snapshot) retryDeferred(ctx context.Context, refs []chunkRef) error {
	start := time.Now()
	delay := firstDeferredBackoff
	for len(refs) > 0 {
		if wait := min(delay, s.cfg.ForeignKeyWait-time.Since(start)); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		delay = min(2*delay, maxDeferredBackoff)
		final := time.Since(start) >= s.cfg.ForeignKeyWait
		s.deps.Logger.Info("snapshot retrying chunks that failed on a foreign key", "chunks", len(refs),
			"final", final, "waited", time.Since(start).Round(time.Millisecond))
		var err error
		if refs, err = s.copyPass(ctx, refs, final); err != nil {
			return err
		}
	}
	return nil
}

// halt stops collection j's run at h: its remaining chunks are not copied,
// and the run stays unfinished, so running it again resumes there.
func (s *Snapshot) halt(j *job, h *HaltError) {
	if !j.halted.CompareAndSwap(nil, h) {
		return
	}
	j.track.setState(StateFailed)
	s.deps.Metrics.setState(j.m.Namespace(), StateFailed)
	s.deps.Logger.Error("snapshot halted", "collection", h.Collection, "kind", h.Kind, "run", j.run.ID,
		"document", h.DocumentKey, "err", h)
}
