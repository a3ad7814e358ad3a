package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// reader is the state of the pipeline's ordered stage, the single
// goroutine that publishes, in change-stream order.
type reader struct {
	pub *buffer.Publisher
	// pos is the last position handed to the publisher: capture reopens
	// the stream after it, since everything up to it is queued in order.
	pos buffer.Position
	// groups are the change envelopes gathered for batch messages, not
	// yet published (group.go); pos is before them.
	groups groups
	// vouch is the source wall time up to which nothing is unread: an
	// event's wall time, or the time a getMore came back empty.
	vouch  time.Time
	lastHB time.Time
	// holds are the source's held collections (holds.go), read again
	// every holdSyncInterval (holdsSynced).
	holds       map[string]buffer.Hold
	holdsSynced time.Time
}

// The waits before reopening a failed change stream: firstReopenWait
// doubling up to maxReopenWait.
const (
	firstReopenWait = 100 * time.Millisecond
	maxReopenWait   = 10 * time.Second
)

// read opens the change stream and consumes it, reopening after transient
// errors from the last position handed to the publisher. The wait before
// a reopen doubles from firstReopenWait to maxReopenWait and starts over
// only after a stream that stayed open for maxReopenWait. A source that
// opens the stream and fails its first reads is so reopened ever more
// slowly, not ten times a second. (Whether the position moved says
// nothing: an idle stream's position follows the source's clock.)
func (c *Capture) read(ctx context.Context, client *mongo.Client, pub *buffer.Publisher, start buffer.Position) error {
	r := &reader{pub: pub, pos: start}
	backoff := firstReopenWait
	var series lostSeries
	for {
		cs, err := c.open(ctx, client, r.pos)
		if err == nil {
			opened := time.Now()
			c.streaming.Store(true)
			err = c.consume(ctx, cs, r)
			c.streaming.Store(false)
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = cs.Close(cctx)
			cancel()
			if time.Since(opened) >= maxReopenWait {
				backoff = firstReopenWait
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var stop *StopError
		switch {
		case errors.Is(err, errReopen):
			continue
		case errors.As(err, &stop):
			return err
		case historyLost(err):
			c.met.historyLost.Inc()
			lost := fmt.Sprintf("the resume point (cluster time %d.%d) is no longer in the oplog (ChangeStreamHistoryLost): changes after it cannot be read and the target may have missed some (%v)",
				r.pos.ClusterTime.T, r.pos.ClusterTime.I, err)
			if c.OnHistoryLost == nil {
				return &StopError{Reason: lost, Recovery: resyncAll()}
			}
			if serr := series.next(ctx, c, r.pos); serr != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return &StopError{Reason: lost + "; " + serr.Error(), Recovery: resyncAllAfterOplogResize()}
			}
			if rerr := c.recoverHistory(ctx, r, err); rerr != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return &StopError{Reason: lost + "; the automatic resync (on_history_lost: resync) failed: " + rerr.Error(), Recovery: resyncAll()}
			}
			continue
		case permanent(err):
			return fmt.Errorf("capture: change stream: %w", err)
		}
		c.met.restarts.Inc()
		c.log.Warn("change stream failed; reopening", "err", SourceError(c.cfg.URI, err), "after", backoff, "token", r.pos.Token)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		backoff = min(2*backoff, maxReopenWait)
	}
}

// open starts the change stream after pos: database-scoped when every
// namespace is in one database, else cluster-scoped, filtered to the
// configured namespaces and the operation types that matter.
func (c *Capture) open(ctx context.Context, client *mongo.Client, pos buffer.Position) (*mongo.ChangeStream, error) {
	opts := options.ChangeStream().
		SetBatchSize(int32(min(c.cfg.BatchSize, 1<<30))).
		SetMaxAwaitTime(c.cfg.MaxAwait).
		SetFullDocument(c.fullDocument())
	switch {
	case pos.Token != "":
		opts.SetStartAfter(bson.D{{Key: "_data", Value: pos.Token}})
	case !pos.ClusterTime.IsZero():
		opts.SetStartAtOperationTime(&bson.Timestamp{T: pos.ClusterTime.T, I: pos.ClusterTime.I})
	}
	pipeline := mongo.Pipeline{{{Key: "$match", Value: c.match()}}}
	if db, ok := c.singleDB(); ok {
		return client.Database(db).Watch(ctx, pipeline, opts)
	}
	return client.Watch(ctx, pipeline, opts)
}

// fullDocument is required (post-images) only when every collection asks
// for post_image; one stream serves all collections, and a lookup
// collection cannot be served with post-images it does not record.
func (c *Capture) fullDocument() options.FullDocument {
	for _, m := range c.mappings {
		if m.Config().FullDocument != transform.FullDocumentPostImage {
			return options.UpdateLookup
		}
	}
	return options.Required
}

func (c *Capture) dbs() map[string][]string {
	out := map[string][]string{}
	for _, ns := range c.names {
		db, coll, _ := strings.Cut(ns, ".")
		out[db] = append(out[db], coll)
	}
	return out
}

func (c *Capture) singleDB() (string, bool) {
	dbs := c.dbs()
	if len(dbs) != 1 {
		return "", false
	}
	for db := range dbs {
		return db, true
	}
	return "", false
}

// match selects the configured namespaces' data events, their drops and
// renames (from or to them), their databases' drops, and invalidates.
func (c *Capture) match() bson.D {
	var or bson.A
	var dbNames bson.A
	for db, colls := range c.dbs() {
		in := bson.A{}
		for _, coll := range colls {
			in = append(in, coll)
		}
		dbNames = append(dbNames, db)
		or = append(or,
			bson.D{{Key: "ns.db", Value: db}, {Key: "ns.coll", Value: bson.D{{Key: "$in", Value: in}}}},
			bson.D{{Key: "to.db", Value: db}, {Key: "to.coll", Value: bson.D{{Key: "$in", Value: in}}}},
		)
	}
	or = append(or,
		bson.D{{Key: "operationType", Value: transform.OpDropDatabase}, {Key: "ns.db", Value: bson.D{{Key: "$in", Value: dbNames}}}},
		bson.D{{Key: "operationType", Value: transform.OpInvalidate}},
	)
	ops := bson.A{transform.OpInsert, transform.OpUpdate, transform.OpReplace, transform.OpDeleteEvent,
		transform.OpDrop, transform.OpRename, transform.OpDropDatabase, transform.OpInvalidate}
	return bson.D{
		{Key: "operationType", Value: bson.D{{Key: "$in", Value: ops}}},
		{Key: "$or", Value: or},
	}
}

// consume runs the capture pipeline over cs until an error (it never
// returns nil); see pipeline.go.
func (c *Capture) consume(ctx context.Context, cs *mongo.ChangeStream, r *reader) error {
	return c.runPipeline(ctx, cs, r)
}

// caughtUp handles an empty getMore in the ordered stage: the
// postBatchResumeToken moves the position on though nothing happened
// (invariant 9). ord is the position's ordinal, as the reader stage
// numbered it (ordinals.caughtUp).
func (c *Capture) caughtUp(ctx context.Context, r *reader, data string, ord uint32, now time.Time) error {
	if err := c.flushGroups(ctx, r); err != nil {
		return err
	}
	if data != "" && data != r.pos.Token {
		p := buffer.Position{Token: data, ClusterTime: r.pos.ClusterTime, Ordinal: ord}
		if ct, ok := buffer.ClusterTimeOfToken(data); ok && r.pos.ClusterTime.Before(ct) {
			p.ClusterTime = ct
		}
		if err := r.pub.Advance(ctx, p); err != nil {
			return err
		}
		r.pos = p
	}
	r.vouch = now
	c.met.touch(now)
	return nil
}

// maybeHeartbeat sends the heartbeats when the interval has passed.
func (c *Capture) maybeHeartbeat(ctx context.Context, r *reader) error {
	if time.Since(r.lastHB) >= c.cfg.HeartbeatInterval {
		return c.heartbeat(ctx, r)
	}
	return nil
}

// tokenData returns a resume token document's _data string.
func tokenData(tok bson.Raw) string {
	if tok == nil {
		return ""
	}
	v, err := tok.LookupErr("_data")
	if err != nil {
		return ""
	}
	s, _ := v.StringValueOK()
	return s
}

// heartbeat publishes, on every collection's subject, the latest source
// time read, so apply lag reads ≈ 0 on an idle collection.
func (c *Capture) heartbeat(ctx context.Context, r *reader) error {
	if err := c.flushGroups(ctx, r); err != nil {
		return err
	}
	r.lastHB = time.Now()
	if r.pos.ClusterTime.IsZero() {
		return nil
	}
	for _, ns := range c.names {
		if r.held(ns) {
			continue // no heartbeat: a held collection's apply lag grows
		}
		data, err := envelope.Encode(&envelope.Envelope{
			Kind:        envelope.KindHeartbeat,
			Collection:  ns,
			ClusterTime: r.pos.ClusterTime,
			WallTime:    r.vouch,
		})
		if err != nil {
			return err
		}
		for _, part := range c.partitions(ns) {
			if err := r.pub.Heartbeat(ctx, buffer.Message{Subject: c.buf.PartitionSubject(ns, part), Data: data}); err != nil {
				return err
			}
			c.met.heartbeats.Inc()
		}
	}
	return nil
}
