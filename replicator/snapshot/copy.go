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
// Each attempt is one PostgreSQL transaction holding the chunk's rows and
// its checkpoint, so a failed attempt leaves nothing behind.
func (s *Snapshot) copyChunk(ctx context.Context, j *job, c Chunk) error {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		docs, err := s.copyOnce(ctx, j, c)
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

// copyOnce reads the chunk's documents and merges them batch by batch into
// one transaction that ends by marking the chunk done. It returns the
// documents read.
func (s *Snapshot) copyOnce(ctx context.Context, j *job, c Chunk) (docs int64, err error) {
	filter, err := c.Filter()
	if err != nil {
		return 0, err
	}
	var counted int64 // documents added to the tracker's in-flight count
	defer func() { j.track.inflight.Add(-counted) }()

	tx, err := s.deps.Target.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	cur, err := j.coll.Find(ctx, filter, options.Find().SetBatchSize(int32(min(s.cfg.BatchSize, 10000))))
	if err != nil {
		return 0, fmt.Errorf("find: %w", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()

	version := transform.Version{ClusterTime: j.run.T0}
	mp, err := s.merger.plan(j.m.Table())
	if err != nil {
		return 0, err
	}
	load := mp.newLoad(version)
	halt := j.m.Config().OnError == transform.OnErrorHalt
	batch := make([]transform.Mutation, 0, s.cfg.BatchSize)
	var skipped int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := load.add(ctx, tx, batch); err != nil {
			return err
		}
		j.track.inflight.Add(int64(len(batch)))
		counted += int64(len(batch))
		batch = batch[:0]
		return nil
	}
	for cur.Next(ctx) {
		docs++
		mut, err := j.m.SnapshotRow(cur.Current, j.run.T0)
		if err != nil {
			if errors.Is(err, transform.ErrSkipped) {
				skipped++
				continue
			}
			var te *transform.Error
			if !errors.As(err, &te) || halt {
				return 0, err
			}
			if err := deadLetter(ctx, tx, te, cur.Current, j.run.T0); err != nil {
				return 0, err
			}
			skipped++
			continue
		}
		batch = append(batch, mut)
		if len(batch) >= s.cfg.BatchSize {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if _, err := load.finish(ctx, tx); err != nil {
		return 0, err
	}
	if err := markChunkDone(ctx, tx, j.run.ID, c.ID, docs, skipped); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return docs - skipped, nil
}

// deadLetter records a document the mapping cannot transform in the
// dead-letter table, in the chunk's transaction (never lost, never twice).
// The raw event is the document as canonical extended JSON, or its BSON
// bytes when the JSON holds \u0000, which jsonb refuses; the row is
// written by the sink's one dead-letter writer.
func deadLetter(ctx context.Context, tx pgx.Tx, te *transform.Error, doc bson.Raw, t0 transform.ClusterTime) error {
	var rawEvent, rawBytes []byte
	if js, err := bson.MarshalExtJSON(doc, true, false); err == nil && !strings.Contains(string(js), `\u0000`) {
		rawEvent = js
	} else {
		rawBytes = doc
	}
	return sink.WriteSnapshotDeadLetter(ctx, tx, te, rawEvent, rawBytes, t0)
}
