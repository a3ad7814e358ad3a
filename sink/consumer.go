package sink

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/schemas/envelope"
)

// consumers is the part of jetstream.JetStream the applier uses.
type consumers interface {
	CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error)
	DeleteConsumer(ctx context.Context, stream, consumer string) error
	Stream(ctx context.Context, stream string) (jetstream.Stream, error)
}

// run consumes one collection until ctx ends (nil) or it halts
// (*HaltError). Any other failure (NATS unreachable, consumer deleted,
// checkpoint reset) restarts the session after a backoff.
func (c *collection) run(ctx context.Context, js consumers) error {
	bo := newBackoff(c.conf.MaxRetryBackoff)
	for {
		progressed, err := c.session(ctx, js)
		if ctx.Err() != nil {
			return nil
		}
		var halt *HaltError
		if errors.As(err, &halt) {
			return err
		}
		if progressed {
			bo.reset()
		}
		if errors.Is(err, errEpochChanged) {
			c.log.Info("apply checkpoint was reset, restarting delivery", "collection", c.unit)
			continue
		}
		c.log.Warn("apply session ended, restarting", "collection", c.unit, "seq", c.pos.seq, "err", err)
		if bo.wait(ctx) != nil {
			return nil
		}
	}
}

// session reads the checkpoint, starts delivery right after it and applies
// batches until something fails. Fetching and decoding the next batch
// overlaps applying the current one: at most three batches are in memory
// (one applying, one waiting in the channel, one being fetched).
func (c *collection) session(ctx context.Context, js consumers) (progressed bool, err error) {
	if err := c.loadPosition(ctx); err != nil {
		return false, err
	}
	if err := c.detectInsertTriggers(ctx); err != nil {
		return false, err
	}
	if err := c.checkThreshold(ctx); err != nil {
		return false, err
	}
	st, err := js.Stream(ctx, c.conf.Stream)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", c.conf.Stream, err)
	}
	if err := c.checkStream(ctx, st); err != nil {
		return false, err
	}
	cons, err := c.resetConsumer(ctx, js)
	if err != nil {
		return false, err
	}
	fctx, cancel := context.WithCancel(ctx)
	batches := make(chan fetched, 1)
	done := make(chan struct{})
	start := c.pos.seq
	go func() {
		defer close(done)
		c.fetchLoop(fctx, cons, st, start, batches)
	}()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		c.watchBacklog(fctx, cons)
	}()
	defer func() {
		cancel()
		<-done // the fetcher and the backlog watcher end before the session returns
		<-watched
	}()
	idle := time.NewTicker(epochCheckInterval)
	defer idle.Stop()
	for {
		if ctx.Err() != nil {
			return progressed, nil // not another batch, whatever is ready
		}
		var f fetched
		select {
		case <-ctx.Done():
			return progressed, nil
		case <-idle.C:
			// No message to commit means no commit to notice a replay:
			// look at the epoch while idle.
			if err := c.checkEpoch(ctx); err != nil {
				return progressed, err
			}
			continue
		case f = <-batches:
			idle.Reset(epochCheckInterval)
		}
		if f.err != nil {
			return progressed, f.err
		}
		// A batch under way when ctx ends (a claim handed back, a
		// shutdown) may finish within applyGrace, so its commit is not
		// cut off after the work was done.
		actx, stop := withGrace(ctx, applyGrace)
		err = c.apply(actx, f.msgs)
		stop()
		// Invariant: ack only after commit (doc.go). Everything at or
		// below the checkpoint is committed; nothing above it is acked.
		// One AckAll on the newest committed message acknowledges it and
		// every message before it (the consumer's ack policy).
		if i := lastCommitted(f.seqs, c.pos.seq); i >= 0 {
			_ = f.raw[i].Ack() // a lost ack means a redelivery, skipped as a duplicate
			progressed = true
		}
		if err != nil {
			return progressed, err
		}
	}
}

// applyGrace is how long a batch under way may go on applying after its
// session's context ended.
const applyGrace = 5 * time.Second

// withGrace returns a context that ends grace after ctx does (or when
// stop is called): a transaction under way can commit instead of being
// cancelled, while retries, which run until their context ends, stop.
func withGrace(ctx context.Context, grace time.Duration) (context.Context, func()) {
	g, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var timer *time.Timer
	var mu sync.Mutex
	unwatch := context.AfterFunc(ctx, func() {
		mu.Lock()
		timer = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return g, func() {
		unwatch()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// lastCommitted returns the position in seqs (the fetched messages'
// sequences) of the highest sequence at or below the checkpoint pos, or
// -1. Everything at or below the checkpoint is committed, so acknowledging
// that message with AckAll (which covers every message before it) is safe,
// and a redelivered message, wherever it sits in a batch, is covered too.
func lastCommitted(seqs []uint64, pos uint64) int {
	best := -1
	for i, s := range seqs {
		if s <= pos && (best < 0 || s > seqs[best]) {
			best = i
		}
	}
	return best
}

// epochCheckInterval is how often an idle session checks whether the
// checkpoint was reset.
const epochCheckInterval = 2 * time.Second

// checkEpoch returns errEpochChanged when an operator reset the checkpoint.
func (c *collection) checkEpoch(ctx context.Context) error {
	epoch, err := checkpoints.Epoch(ctx, c.pool, c.unit)
	if err != nil {
		return err
	}
	if epoch != c.pos.epoch {
		return errEpochChanged
	}
	return nil
}

// fetched is one decoded batch, or the error that ended fetching: the
// events of the buffer messages raw, whose sequences are seqs.
type fetched struct {
	msgs []message
	raw  []jetstream.Msg
	seqs []uint64
	err  error
}

// fetchLoop fetches and decodes batches until ctx ends or a fetch fails
// (the error is the last thing it sends). prev is the checkpoint delivery
// started after; each batch is checked for messages the stream removed
// before they were delivered (checkGap).
func (c *collection) fetchLoop(ctx context.Context, cons jetstream.Consumer, st streamInfo, prev uint64, out chan<- fetched) {
	for ctx.Err() == nil {
		f := c.fetch(cons)
		if f.err == nil && len(f.msgs) == 0 {
			continue
		}
		if f.err == nil {
			f.err = checkGap(ctx, st, prev, f.msgs)
			prev = max(prev, f.msgs[len(f.msgs)-1].seq)
		}
		select {
		case out <- f:
		case <-ctx.Done():
			return
		}
		if f.err != nil {
			return
		}
	}
}

// resetConsumer (re)creates the collection's durable consumer so delivery
// starts right after the PostgreSQL checkpoint, whatever the consumer's
// previous state (missing, behind, ahead after a PostgreSQL restore, or
// holding unacknowledged messages that would otherwise be redelivered out
// of order). The checkpoint, not the consumer, is the position of record.
//
// A consumer that comes back holding delivery state was not created afresh:
// a server killed while writing a consumer's metadata leaves a directory
// with the consumer's state but without meta.sum, which it does not load on
// restart (so the delete answers "not found") and which a create of the
// same name then reuses, restoring that state and ignoring OptStartSeq.
// Delivery would resume after the old consumer's last delivery and the
// checkpoint would move past everything in between, never applied. Such a
// consumer is loaded now, so deleting it removes the directory, and the
// second create starts where it is asked to. (A name of its own for each
// session, below, keeps a create from meeting such a directory at all;
// the check stays.)
//
// Each session's consumer has a name of its own (sessionDurable), and the
// unit's earlier consumers are deleted first: a pull request of an ended
// session addresses its consumer by name, and under the same name it
// could take the new consumer's first deliveries.
func (c *collection) resetConsumer(ctx context.Context, js consumers) (jetstream.Consumer, error) {
	if err := DropUnitConsumers(ctx, js, c.conf.Stream, c.unit); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		name := sessionDurable(c.unit)
		cons, err := js.CreateOrUpdateConsumer(ctx, c.conf.Stream, jetstream.ConsumerConfig{
			Durable:       name,
			Description:   "replicator apply " + c.unit,
			FilterSubject: envelope.PartitionSubject(c.conf.SubjectPrefix, c.cfg.Namespace, c.part),
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   c.pos.seq + 1,
			// AckAll: one ack per committed batch instead of one per
			// message; everything at or below the checkpoint is committed.
			AckPolicy:     jetstream.AckAllPolicy,
			AckWait:       ackWait,
			MaxDeliver:    -1, // never drop a message
			MaxAckPending: c.conf.MaxAckPending,
		})
		if err != nil {
			return nil, fmt.Errorf("create consumer %s: %w", name, err)
		}
		ci := cons.CachedInfo()
		fresh := ci.Delivered.Consumer == 0 && ci.NumAckPending == 0
		// A fresh consumer starts after the checkpoint, or at the stream's
		// first message when retention removed the ones before it (the
		// gap check reports that); a second create settles which.
		if fresh && (ci.Delivered.Stream == c.pos.seq || attempt > 1) {
			c.deliveries = 0 // its first delivery is number 1
			return cons, nil
		}
		if attempt > 1 {
			return nil, fmt.Errorf("consumer %s: created to start after sequence %d, it resumes an earlier consumer's state (delivered up to %d, %d unacknowledged)",
				name, c.pos.seq, ci.Delivered.Stream, ci.NumAckPending)
		}
		c.log.Warn("apply consumer did not start after the checkpoint, recreating it", "collection", c.unit,
			"seq", c.pos.seq, "delivered", ci.Delivered.Stream, "ack_pending", ci.NumAckPending)
		if err := dropConsumer(ctx, js, c.conf.Stream, name); err != nil {
			return nil, err
		}
	}
}

// fetch pulls one batch, bounded by count, bytes and wait, and decodes
// its events. Messages it cannot decode come back as dead letters, never
// as an error. The batch is in stream order: a redelivery can arrive after
// newer messages in one pull, so it is sorted (duplicates stay, commit
// skips them). BatchSize counts events: a batch message carries several,
// so the count fetched follows the events per message of the last fetch.
func (c *collection) fetch(cons jetstream.Consumer) fetched {
	f := c.fetchBounded(cons, c.conf.BatchBytes)
	if f.err != nil || len(f.raw) > 0 {
		return f
	}
	// Either nothing is pending or the next message is larger than
	// BatchBytes: the server then ends the pull with a status that the
	// client does not report as an error, so an empty bounded fetch is
	// always followed by an unbounded fetch of one message.
	return c.fetchOne(cons)
}

// fetchBounded pulls at most maxBytes of messages and decodes them.
func (c *collection) fetchBounded(cons jetstream.Consumer, maxBytes int) (f fetched) {
	count := max(1, c.conf.BatchSize/max(1, c.perMessage))
	batch, err := cons.Fetch(count, jetstream.FetchMaxBytes(maxBytes), jetstream.FetchMaxWait(c.conf.BatchWait))
	if err != nil {
		return fetched{err: fmt.Errorf("fetch: %w", err)}
	}
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			return fetched{err: fmt.Errorf("message metadata: %w", err)}
		}
		if err := c.delivered(md); err != nil {
			return fetched{err: err}
		}
		f.raw = append(f.raw, m)
		f.seqs = append(f.seqs, md.Sequence.Stream)
	}
	err = batch.Error()
	// A pull that ends because the next message would not fit, or because
	// it had its count with bytes to spare (the server says so when the
	// pull has a byte bound), is complete.
	if err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, jetstream.ErrMaxBytesExceeded) &&
		!errors.Is(err, jetstream.ErrBatchCompleted) {
		return fetched{err: fmt.Errorf("fetch: %w", err)}
	}
	if len(f.raw) == 0 {
		return f
	}
	sortBySeq(f.seqs, f.raw)
	f.msgs = decodeAll(c.cfg.Namespace, f.seqs, func(i int) []byte { return f.raw[i].Data() })
	c.perMessage = (len(f.msgs) + len(f.raw) - 1) / len(f.raw)
	return f
}

// sortBySeq sorts the fetched messages by stream sequence (usually a
// no-op).
func sortBySeq(seqs []uint64, raw []jetstream.Msg) {
	if slices.IsSorted(seqs) {
		return
	}
	idx := make([]int, len(seqs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return seqs[idx[a]] < seqs[idx[b]] })
	s2, r2 := make([]uint64, len(seqs)), make([]jetstream.Msg, len(raw))
	for i, j := range idx {
		s2[i], r2[i] = seqs[j], raw[j]
	}
	copy(seqs, s2)
	copy(raw, r2)
}

// delivered checks that md's message is the delivery that follows the
// last one the session received: the consumer numbers its deliveries
// (Sequence.Consumer), one by one, from 1 for the fresh consumer each
// session creates (resetConsumer), redeliveries included.
//
// A delivery can go to a pull request that its client has already given
// up on: the request outlived the client's wait, or a new consumer leader
// served a request the old one had taken (after a NATS node crashed). The
// message is then delivered and never received, and the next batch's
// AckAll would acknowledge it and the checkpoint move past it: an event
// silently skipped. A delivery number that is not the next one says that
// happened (or that a new leader numbered deliveries again), so the batch
// is dropped and the session restarts, delivering again from the
// checkpoint (deliveryGapError).
func (c *collection) delivered(md *jetstream.MsgMetadata) error {
	if md.Sequence.Consumer != c.deliveries+1 {
		return &deliveryGapError{want: c.deliveries + 1, got: md.Sequence.Consumer, seq: md.Sequence.Stream}
	}
	c.deliveries = md.Sequence.Consumer
	return nil
}

// deliveryGapError: a delivery arrived out of its number (delivered).
type deliveryGapError struct{ want, got, seq uint64 }

func (e *deliveryGapError) Error() string {
	return fmt.Sprintf("apply consumer delivery %d (stream sequence %d) arrived where %d was next: a delivery was lost to an ended pull request; delivering again from the checkpoint",
		e.got, e.seq, e.want)
}

// fetchOne fetches a single message without a byte bound; no message
// within BatchWait is an empty batch.
func (c *collection) fetchOne(cons jetstream.Consumer) fetched {
	m, err := cons.Next(jetstream.FetchMaxWait(c.conf.BatchWait))
	if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
		return fetched{}
	}
	if err != nil {
		return fetched{err: fmt.Errorf("fetch: %w", err)}
	}
	md, err := m.Metadata()
	if err != nil {
		return fetched{err: fmt.Errorf("message metadata: %w", err)}
	}
	if err := c.delivered(md); err != nil {
		return fetched{err: err}
	}
	seq := md.Sequence.Stream
	return fetched{msgs: decodeFrames(nil, c.cfg.Namespace, seq, m.Data()), raw: []jetstream.Msg{m}, seqs: []uint64{seq}}
}

// checkThreshold halts a collection that starts with as many unresolved
// dead letters as its threshold allows.
func (c *collection) checkThreshold(ctx context.Context) error {
	if c.cfg.DeadLetterThreshold <= 0 {
		return nil
	}
	n := 0
	b := &pgx.Batch{}
	queueUnresolved(b, c.cfg.Namespace, &n)
	if err := c.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("count dead letters: %w", err)
	}
	return c.thresholdHalt(n, 0)
}

// decodeAll decodes the events of n buffer messages (decodeFrames), in
// order, on up to GOMAXPROCS goroutines.
func decodeAll(ns string, seqs []uint64, data func(int) []byte) []message {
	workers := min(runtime.GOMAXPROCS(0), (len(seqs)+63)/64)
	if workers <= 1 {
		out := make([]message, 0, len(seqs))
		for i, s := range seqs {
			out = decodeFrames(out, ns, s, data(i))
		}
		return out
	}
	parts := make([][]message, workers)
	var wg sync.WaitGroup
	chunk := (len(seqs) + workers - 1) / workers
	for w, lo := 0, 0; lo < len(seqs); w, lo = w+1, lo+chunk {
		hi := min(lo+chunk, len(seqs))
		wg.Go(func() {
			out := make([]message, 0, hi-lo)
			for i := lo; i < hi; i++ {
				out = decodeFrames(out, ns, seqs[i], data(i))
			}
			parts[w] = out
		})
	}
	wg.Wait()
	return slices.Concat(parts...)
}
