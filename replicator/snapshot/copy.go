package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// copyChunk copies one chunk, retrying retryable failures with backoff.
// Each attempt is one PostgreSQL transaction holding the chunk's rows, its
// dead letters and its checkpoint, so a failed attempt leaves nothing
// behind. final says what a foreign-key violation does: defer the chunk
// (false) or dead-letter the document (true; see Config.ForeignKeyWait).
// It returns nil once the chunk is done, errDeferred, a *HaltError, or the
// error that fails the run.
func (s *Snapshot) copyChunk(ctx context.Context, j *job, c Chunk, final bool) error {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		docs, err := s.copyOnce(ctx, j, c, final)
		var halt *HaltError
		switch {
		case err == nil:
			j.track.committed.Add(docs)
			s.deps.Metrics.chunkDone(j.m.Namespace(), docs)
			s.deps.Metrics.setRemaining(j.m.Namespace(), j.track.estimated-j.track.copied())
			return nil
		case errors.Is(err, errChunkDone):
			// Another process finished it meanwhile; its rows stand.
			s.deps.Logger.Warn("snapshot chunk already done", "collection", j.m.Namespace(), "chunk", c.ID)
			return nil
		case errors.Is(err, errDeferred), errors.As(err, &halt):
			return err
		case ctx.Err() != nil:
			// Interrupted: whatever the cancelled connection reported (a
			// closed connection in the middle of a COPY), the cause is the
			// cancellation.
			return fmt.Errorf("snapshot %s %s: %w (%v)", j.m.Namespace(), c, ctx.Err(), err)
		case attempt < s.cfg.MaxRetries && retryable(err) && ctx.Err() == nil:
			s.deps.Logger.Warn("snapshot chunk failed, retrying", "collection", j.m.Namespace(),
				"chunk", c.ID, "attempt", attempt+1, "err", err, "detail", pgDetail(err))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		default:
			return fmt.Errorf("snapshot %s %s: %w", j.m.Namespace(), c, err)
		}
	}
}

// copyOnce copies the chunk in one transaction that ends by marking it
// done, and returns the documents written. It loads the whole chunk at
// once (copyWhole); when PostgreSQL refuses some document's rows
// (sink.EventError), that transaction rolls back and copyIsolating finds
// the document.
func (s *Snapshot) copyOnce(ctx context.Context, j *job, c Chunk, final bool) (int64, error) {
	n, err := s.copyWhole(ctx, j, c)
	if err == nil || !sink.EventError(err) {
		return n.docs - n.skipped, err
	}
	if foreignKey(err) && !final {
		return 0, errDeferred
	}
	s.deps.Logger.Warn("snapshot chunk refused by PostgreSQL; isolating the documents at fault",
		"collection", j.m.Namespace(), "chunk", c.ID, "err", err, "detail", pgDetail(err))
	return s.copyIsolating(ctx, j, c, final, err)
}

// copyWhole reads the chunk's documents and merges them batch by batch
// into one transaction that ends by marking the chunk done. It returns the
// documents read and skipped.
func (s *Snapshot) copyWhole(ctx context.Context, j *job, c Chunk) (counts, error) {
	filter, err := c.Filter()
	if err != nil {
		return counts{}, err
	}
	fl := &inflight{t: j.track}
	defer fl.release()
	tx, err := s.deps.Target.Begin(ctx)
	if err != nil {
		return counts{}, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	n, err := s.loadRange(ctx, tx, j, filter, fl)
	if err != nil {
		return counts{}, err
	}
	return n, s.commitChunk(ctx, tx, j, c, n)
}

// copyIsolating copies the chunk that PostgreSQL refused with cause in one
// transaction: the pieces that load, the documents at fault as dead
// letters (isolate.go), and the done mark. Constraints declared
// DEFERRABLE are checked at each statement in it, so a violation that
// only surfaced at the whole chunk's commit is found in its piece.
func (s *Snapshot) copyIsolating(ctx context.Context, j *job, c Chunk, final bool, cause error) (int64, error) {
	fl := &inflight{t: j.track}
	defer fl.release()
	tx, err := s.deps.Target.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL IMMEDIATE"); err != nil {
		return 0, fmt.Errorf("isolate: %w", err)
	}
	iso := &isolation{s: s, j: j, tx: tx, final: final, fl: fl}
	if err := iso.failed(ctx, c, cause); err != nil {
		return 0, err
	}
	return iso.n.docs - iso.n.skipped, s.commitChunk(ctx, tx, j, c, iso.n)
}

// commitChunk marks the chunk done in tx, which holds its rows, and
// commits.
func (s *Snapshot) commitChunk(ctx context.Context, tx pgx.Tx, j *job, c Chunk, n counts) error {
	if err := markChunkDone(ctx, tx, j.run.ID, c.ID, n.docs, n.skipped); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// counts are the documents a load read and, of those, the ones it skipped:
// left out by the mapping's filter, or dead-lettered.
type counts struct{ docs, skipped int64 }

func (n *counts) add(o counts) { n.docs, n.skipped = n.docs+o.docs, n.skipped+o.skipped }

// inflight counts the documents an uncommitted load has read into the
// tracker, so progress moves while a chunk copies. release takes them
// back: the load rolled back, or its chunk committed and counts them as
// committed (copyChunk).
type inflight struct {
	t *tracker
	n int64
}

func (f *inflight) add(k int64) { f.t.inflight.Add(k); f.n += k }

// adopt takes over o's documents (a piece that stays in the chunk).
func (f *inflight) adopt(o *inflight) { f.n += o.n; o.n = 0 }

func (f *inflight) release() { f.t.inflight.Add(-f.n); f.n = 0 }

// loadRange reads the documents filter selects and writes them in tx
// (load).
func (s *Snapshot) loadRange(ctx context.Context, tx pgx.Tx, j *job, filter bson.D, fl *inflight) (counts, error) {
	cur, err := j.coll.Find(ctx, filter, options.Find().SetBatchSize(int32(min(s.cfg.BatchSize, 10000))))
	if err != nil {
		return counts{}, fmt.Errorf("find: %w", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	next := func() (bson.Raw, error) {
		if cur.Next(ctx) {
			return cur.Current, nil
		}
		if err := cur.Err(); err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		return nil, nil
	}
	return s.load(ctx, tx, j, next, s.cfg.BatchSize, fl)
}

// load transforms the documents next yields until it yields nil, and
// writes their rows in tx at the run's version (T0, 0): batch by batch
// into a chunkLoad, at most BatchSize documents in memory, then merged
// under the root table lock (chunkLoad.finish). A document the mapping
// cannot transform becomes a dead letter in tx, or a *HaltError under
// on_error: halt. Nothing is written when reading fails. size is the
// expected number of documents, at most BatchSize.
func (s *Snapshot) load(ctx context.Context, tx pgx.Tx, j *job, next func() (bson.Raw, error), size int, fl *inflight) (counts, error) {
	var n counts
	mp, err := s.merger.plan(j.m.Table())
	if err != nil {
		return n, err
	}
	ld := mp.newLoad(transform.Version{ClusterTime: j.run.T0})
	halt := j.m.Config().OnError == transform.OnErrorHalt
	batch := make([]transform.Mutation, 0, min(size, s.cfg.BatchSize))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := ld.add(ctx, tx, batch); err != nil {
			return err
		}
		fl.add(int64(len(batch)))
		batch = batch[:0]
		return nil
	}
	for {
		doc, err := next()
		if err != nil {
			return n, err
		}
		if doc == nil {
			break
		}
		n.docs++
		mut, err := j.m.SnapshotRow(doc, j.run.T0)
		if err != nil {
			if errors.Is(err, transform.ErrSkipped) {
				n.skipped++
				continue
			}
			var te *transform.Error
			if !errors.As(err, &te) {
				return n, err
			}
			if halt {
				return n, &HaltError{Collection: j.m.Namespace(), Kind: j.run.Kind, DocumentKey: te.DocumentKey, Err: err}
			}
			if err := deadLetter(ctx, tx, te, doc, j.run.T0); err != nil {
				return n, err
			}
			n.skipped++
			continue
		}
		batch = append(batch, mut)
		if len(batch) >= s.cfg.BatchSize {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	if _, err := ld.finish(ctx, tx); err != nil {
		return n, err
	}
	return n, nil
}

// deadLetter records a document the mapping cannot transform in the
// dead-letter table, in the chunk's transaction (never lost, never twice).
// The raw event is the document as canonical extended JSON, or its BSON
// bytes when the JSON holds \u0000, which jsonb refuses; the row is
// written by the sink's one dead-letter writer.
func deadLetter(ctx context.Context, tx pgx.Tx, te *transform.Error, doc bson.Raw, t0 transform.ClusterTime) error {
	rawEvent, rawBytes := rawDocument(doc)
	return sink.WriteSnapshotDeadLetter(ctx, tx, te, rawEvent, rawBytes, t0)
}

// rawDocument is a document as a dead letter keeps it: canonical extended
// JSON, or (nil, the BSON bytes) when the JSON holds \u0000.
func rawDocument(doc bson.Raw) (rawEvent, rawBytes []byte) {
	if js, err := bson.MarshalExtJSON(doc, true, false); err == nil && !strings.Contains(string(js), `\u0000`) {
		return js, nil
	}
	return nil, doc
}
