package sink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// position is the apply checkpoint as this applier last saw it.
type position struct {
	seq   uint64
	epoch int64
	ct    transform.ClusterTime // of the message at seq, zero when unknown
}

// collection applies one collection's messages. Its methods run on the
// collection's goroutine only.
type collection struct {
	cfg   Collection
	part  envelope.Partition
	unit  string // part.Unit(cfg.Namespace): the checkpoint, consumer and metrics name
	conf  Config
	ts    *tableSet
	rels  *relations
	pool  *pgxpool.Pool
	m     *metrics
	clock *clock
	log   *slog.Logger

	pos   position
	stale bool // pos must be re-read before the next commit
	// perMessage is the events per buffer message of the last fetch
	// (batch messages carry several), which sizes the next one.
	perMessage int
	// deliveries is the consumer's number of the last delivery this
	// session received (consumer.go, delivered).
	deliveries uint64
}

// loadPosition makes sure the checkpoint row exists and reads it.
func (c *collection) loadPosition(ctx context.Context) error {
	if err := checkpoints.Ensure(ctx, c.pool, c.unit); err != nil {
		return err
	}
	cp, err := checkpoints.Get(ctx, c.pool, c.unit)
	if err != nil {
		return err
	}
	c.pos, c.stale = position{seq: cp.Seq, epoch: cp.Epoch, ct: cp.ClusterTime}, false
	if !cp.WallTime.IsZero() && c.clock.source.Load() == 0 {
		c.clock.source.Store(cp.WallTime.UnixNano())
	}
	if !cp.UpdatedAt.IsZero() && c.clock.commit.Load() == 0 {
		c.clock.commit.Store(cp.UpdatedAt.UnixNano())
	}
	return nil
}

// detectInsertTriggers looks whether the root table has an enabled BEFORE
// INSERT row trigger; without one the upsert skips its pre-filter
// (tableSet.noInsertTriggers). A trigger created while the applier runs
// is seen at its next session.
func (c *collection) detectInsertTriggers(ctx context.Context) error {
	const q = `SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
  WHERE tgrelid = to_regclass($1) AND NOT tgisinternal AND tgenabled <> 'D' AND tgtype & 7 = 7)` // ROW | BEFORE | INSERT
	var none bool
	if err := c.pool.QueryRow(ctx, q, c.ts.root.ident).Scan(&none); err != nil {
		return fmt.Errorf("look for insert triggers on %s: %w", c.ts.root.def.Name, err)
	}
	c.ts.noInsertTriggers = none
	return nil
}

// guard is the position this applier holds, which its next checkpoint
// write names (checkpoints.Position).
func (c *collection) guard() checkpoints.Position {
	return checkpoints.Position{Seq: c.pos.seq, Epoch: c.pos.epoch}
}

// apply commits msgs (ascending sequences), retrying transient failures
// in order until ctx ends and isolating a failing event by splitting the
// batch. It returns nil once every message is committed (applied, skipped
// as already applied, or dead-lettered), a *HaltError, errEpochChanged or
// ctx's error. Committed messages are those at or below c.pos.seq.
func (c *collection) apply(ctx context.Context, msgs []message) error {
	if c.cfg.halts() {
		for i := range msgs {
			if msgs[i].gap != nil && msgs[i].seq > c.pos.seq {
				if i > 0 {
					if err := c.apply(ctx, msgs[:i]); err != nil {
						return err
					}
				}
				return c.gapHalt(&msgs[i])
			}
		}
	}
	bo := newBackoff(c.conf.MaxRetryBackoff)
	fresh := true
	for attempt := 1; ; attempt++ {
		err := c.commit(ctx, msgs, fresh)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var halt *HaltError
		if errors.As(err, &halt) || errors.Is(err, errEpochChanged) {
			return err
		}
		if errors.Is(err, errCheckpointMoved) {
			c.stale = true
			continue
		}
		class, reason := c.classify(err)
		switch class {
		case classRetry:
			c.m.retries.WithLabelValues(c.unit, reason).Inc()
			c.log.Warn("apply failed, retrying", "collection", c.unit, "attempt", attempt,
				"first_seq", msgs[0].seq, "last_seq", msgs[len(msgs)-1].seq, "reason", reason, "err", err)
			if err := bo.wait(ctx); err != nil {
				return err
			}
		case classEvent:
			var fe *freshError
			if fresh && errors.As(err, &fe) {
				// A concurrent writer (a snapshot or resync chunk) committed
				// a row for a key the direct COPY took as new: the guarded
				// merge handles it, no event is at fault yet.
				fresh = false
				continue
			}
			if len(msgs) > 1 {
				mid := split(msgs) // poison.go
				if err := c.apply(ctx, msgs[:mid]); err != nil {
					return err
				}
				return c.apply(ctx, msgs[mid:])
			}
			var pgErr *pgconn.PgError
			if fresh && errors.As(err, &pgErr) && pgErr.Code == "23505" {
				// A row appeared (or a leftover child row exists) where the
				// direct COPY assumed none: retry through the merge first.
				fresh = false
				continue
			}
			if err := c.isolate(&msgs[0], err); err != nil {
				return err
			}
		default:
			return c.schemaHalt(msgs[0].seq, err)
		}
	}
}

// schemaHalt stops the collection on an error no event causes alone.
func (c *collection) schemaHalt(seq uint64, err error) *HaltError {
	return &HaltError{Collection: c.unit, Seq: seq, Err: err,
		Hint: "the target schema does not accept this collection's writes (compare it with `replicator check`), fix it and restart"}
}

// isolate handles one message that fails on its own: it becomes a dead
// letter, or halts the collection when it says on_error: halt.
func (c *collection) isolate(m *message, err error) error {
	switch {
	case m.bad == nil && c.cfg.halts():
		key := ""
		if m.env != nil {
			key = m.env.DocumentKey
		}
		return &HaltError{Collection: c.unit, Seq: m.seq, Err: fmt.Errorf("document %s: %w", key, err),
			Hint: "on_error is halt: fix the cause (or set on_error: dead_letter) and restart"}
	case m.bad == nil:
		m.poisoned(err) // logged with the batch that records it (committed)
		return nil
	case m.bad.rawEvent != nil:
		// The dead letter itself did not fit (jsonb refuses \u0000): keep
		// the raw bytes instead.
		m.bad.rawBytes, m.bad.rawEvent = m.readable(), nil
		return nil
	}
	return &HaltError{Collection: c.unit, Seq: m.seq, Err: fmt.Errorf("cannot record dead letter: %w", err)}
}

// classify is classify (errors.go) for this collection: under a tenant
// setting one row can fail its tenant's policy (a document that moved to
// another tenant), which is that event's fault.
func (c *collection) classify(err error) (errClass, string) {
	class, reason := classify(err)
	if class == classFatal && c.ts.setting != "" && rlsViolation(err) {
		class = classEvent
	}
	return class, reason
}

// commit applies msgs in one transaction together with the checkpoint,
// which moves to the last buffer message msgs hold whole (plan; poison.go
// splits inside a batch message only to isolate a failing event).
// fresh allows COPYing rows of new keys straight into the target tables.
func (c *collection) commit(ctx context.Context, msgs []message, fresh bool) error {
	if c.stale {
		old := c.pos.epoch
		if err := c.loadPosition(ctx); err != nil {
			return err
		}
		if c.pos.epoch != old {
			return errEpochChanged
		}
	}
	msgs, skipped := pendingMsgs(msgs, c.pos.seq)
	if skipped > 0 {
		c.m.events.WithLabelValues(c.unit, "duplicate").Add(float64(skipped))
	}
	if len(msgs) == 0 {
		return nil
	}
	start := time.Now()
	p := plan(c.ts, msgs)
	if p.last == 0 {
		p.last = c.pos.seq // inside one batch message: the checkpoint stays
	}
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }() // no-op after commit
	var src source = arraySource{}
	var analyzed []string // temporary tables created and analyzed by this transaction
	// Under row-level security every tenant's rows go in their own
	// statements (rls.go), passed as arrays.
	rls := c.ts.setting != ""
	if c.conf.CopyThreshold > 0 && p.rows >= c.conf.CopyThreshold && !rls {
		// New keys go straight into the tables with COPY, unless the
		// versions live outside them (the version rows must be written
		// with the rows).
		if fresh && !c.ts.external {
			if err := insertFresh(ctx, tx, c.ts, c.rels, p); err != nil {
				return &freshError{err}
			}
		}
		if analyzed, err = stageCopy(ctx, tx, c.rels, p); err != nil {
			return err
		}
		src = copySource{c.rels}
	}
	if created, err := c.ensureApplied(ctx, tx, p); err != nil {
		return err
	} else if created != "" {
		analyzed = append(analyzed, created)
	}
	// The checkpoint goes before the merge: a stale applier learns it
	// before merging, and two transactions of one unit queue on the
	// checkpoint row instead of locking target rows in different orders
	// (only the direct COPY of new keys, insertFresh, comes before it).
	b := &pgx.Batch{}
	c.queueCheckpoint(b, p)
	var ub *pgx.Batch // the upserts, when they go after b
	if rls {
		if err := c.queueTenantWrites(ctx, tx, b, p); err != nil {
			return err
		}
	} else if _, staged := src.(copySource); staged {
		// The upserts read the staging tables, in statements without
		// arguments: PostgreSQL caches one plan for such a prepared
		// statement, made for the first batch it ran in, so a plan for
		// a large batch (a hash join over a whole child or tombstone
		// table) would be reused for every small one after it. Sent in
		// one simple-protocol round trip after b, each is planned for this
		// batch, after the statements before it ran (applied rows
		// included).
		ub = &pgx.Batch{}
		queueWrites(ub, b, c.ts, c.rels, src, p)
	} else {
		queueWrites(b, b, c.ts, c.rels, src, p)
	}
	c.queueRecords(b, p)
	unresolved := -1
	if len(p.deadLetters) > 0 && c.cfg.DeadLetterThreshold > 0 {
		queueUnresolved(b, c.cfg.Namespace, &unresolved)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if ub != nil {
		if err := execReplanned(ctx, tx, ub); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, t := range analyzed {
		tx.Conn().PgConn().CustomData()[t] = true
	}
	c.pos.seq = p.last
	if !p.ct.IsZero() {
		c.pos.ct = p.ct
	}
	c.committed(p, len(msgs), start)
	return c.thresholdHalt(unresolved, p.last)
}

// ensureApplied creates the table of applied root rows (tables.go) on tx's
// connection, once, and analyzes it while empty (analyzeTemp): the batch's
// statements are prepared before any runs, so it must exist before the
// batch is sent. It returns the table's name when tx created it; the mark
// is set after a commit, which keeps the table.
func (c *collection) ensureApplied(ctx context.Context, tx pgx.Tx, p *batchPlan) (string, error) {
	a := c.ts.applied
	if a == nil || len(p.upserts) == 0 || tx.Conn().PgConn().CustomData()[a.temp] != nil {
		return "", nil
	}
	if _, err := tx.Exec(ctx, a.create(c.ts.root)+"; "+analyzeTemp(a.temp), pgx.QueryExecModeSimpleProtocol); err != nil {
		return "", fmt.Errorf("create the applied-rows table for %s: %w", c.ts.root.def.Name, err)
	}
	return a.temp, nil
}

// pendingMsgs returns the messages of msgs above the checkpoint pos, in
// ascending sequence order without repeats, and how many it left out.
// Messages at or below pos are committed already; a redelivery can repeat
// one anywhere in a batch, and taking the batch's last message as the new
// checkpoint would then move it backwards.
func pendingMsgs(msgs []message, pos uint64) ([]message, int) {
	first := 0
	for first < len(msgs) && msgs[first].seq <= pos {
		first++
	}
	ordered := true
	for i := first + 1; i < len(msgs) && ordered; i++ {
		ordered = eventOrder(msgs[i-1], msgs[i]) < 0
	}
	if ordered {
		// The usual case: the batch's own messages, so marks that plan
		// and isolate leave on them last across attempts.
		return msgs[first:], first
	}
	out := make([]message, 0, len(msgs))
	for _, m := range msgs {
		if m.seq > pos {
			out = append(out, m)
		}
	}
	if !slices.IsSortedFunc(out, eventOrder) {
		slices.SortStableFunc(out, eventOrder)
	}
	out = slices.CompactFunc(out, func(a, b message) bool { return eventOrder(a, b) == 0 })
	return out, len(msgs) - len(out)
}

// eventOrder orders events by stream sequence, then by their place in
// their batch message.
func eventOrder(a, b message) int {
	return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.frame, b.frame))
}

func (c *collection) committed(p *batchPlan, n int, start time.Time) {
	ns := c.unit
	for op, k := range p.ops {
		c.m.events.WithLabelValues(ns, op).Add(float64(k))
	}
	for _, d := range p.deadLetters {
		if d.twin {
			c.log.Info("dead letter already recorded and unresolved; not recorded again", "collection", ns, "seq", d.seq,
				"stage", d.stage, "reason", d.reason, "document_key", d.documentKey)
			continue
		}
		c.m.deadLetters.WithLabelValues(ns, d.reason).Inc()
		c.log.Warn("dead letter recorded", "collection", ns, "seq", d.seq, "stage", d.stage, "reason", d.reason,
			"path", d.path, "sqlstate", d.sqlstate, "document_key", d.documentKey, "err", d.err)
	}
	c.m.batchSize.WithLabelValues(ns).Observe(float64(n))
	c.m.duration.WithLabelValues(ns).Observe(time.Since(start).Seconds())
	if !p.wall.IsZero() {
		c.clock.source.Store(p.wall.UnixNano())
	}
	c.clock.commit.Store(time.Now().UnixNano())
	for _, m := range p.controls {
		c.log.Warn("control event recorded", "collection", ns, "seq", m.seq, "operation", m.env.Operation)
	}
	for _, g := range p.gaps {
		c.m.gaps.WithLabelValues(ns).Inc()
		c.log.Error("buffer messages were removed by retention before they were applied; changes may be lost",
			"collection", ns, "first_missing_seq", g.From, "last_missing_seq", g.To, "stream_first_seq", g.StreamFirst,
			"recovery", "replicator resync --collection "+ns)
	}
}

// queueCheckpoint moves the checkpoint to the batch's last sequence, only
// from the position this applier holds (Invariant: checkpoint in the same
// transaction as the rows, see doc.go); otherwise the batch fails with
// errCheckpointMoved and nothing commits (checkpoints.QueueAdvance).
func (c *collection) queueCheckpoint(b *pgx.Batch, p *batchPlan) {
	checkpoints.QueueAdvance(b, c.unit, c.guard(), p.last, p.ct, p.wall)
}

// queueWrites queues the version-guarded merge of the plan's rows (see
// merge.go): children are deleted deepest first and inserted parents first,
// so foreign keys from child to parent hold after every statement. The
// deletes' statements go to b, the upserts' to ub, which runs after b (they
// may be the same batch). Deletes go first, as in the source: a plan holds
// each key once, but under a root keyed by the document's identity
// (versions: table) a key that a deleted document freed can be taken by
// another document in the same batch, whose upsert then finds it free.
func queueWrites(ub, b *pgx.Batch, ts *tableSet, rels *relations, src source, p *batchPlan) {
	root := ts.root
	if len(p.deletes) > 0 {
		del := rootRows(p.deletes, true)
		for i := len(ts.desc) - 1; i >= 0; i-- {
			from, args := src.from(rels.del, del, root.idIdx)
			b.Queue(deleteChildrenOfDeletes(ts, ts.desc[i], from), args...)
		}
		from, args := src.from(rels.del, del, root.idIdx)
		b.Queue(deleteRoots(ts, from), args...)
		if ts.external {
			b.Queue(deleteVersions(ts, from), args...)
		}
		b.Queue(upsertTombstones(root, from), args...)
	}
	if len(p.upserts) > 0 {
		b := ub
		up := rootRows(p.upserts, false)
		from, args := src.from(rels.up, up, rels.up.cols)
		for _, q := range append(movedRows(ts, from), movedRefs(ts, from)...) {
			b.Queue(q, args...)
		}
		b.Queue(upsertRoot(ts, from), args...)
		for i := len(ts.desc) - 1; i >= 0; i-- {
			b.Queue(deleteChildrenOfUpserts(ts, ts.desc[i]))
		}
		for i, d := range ts.desc {
			if len(p.children[i]) == 0 {
				continue
			}
			from, args := src.from(rels.child[i], p.children[i], rels.child[i].cols)
			b.Queue(insertChildren(ts, d, from), args...)
		}
	}
	clear := p.upserts
	if !ts.filtered {
		clear = insertWrites(p.upserts)
	}
	if len(clear) > 0 {
		// Older tombstones go only for the keys of insert events, passed
		// as arrays (a handful in an update-heavy batch): a tombstone is
		// left by a delete, and in MongoDB only an insert brings the
		// document back, but in a collection with a filter, where an
		// update moving a document back into the filter does too
		// (Collection.Filtered). A tombstone another write leaves behind
		// (its insert was dead-lettered or lost to retention) is older
		// than the row, so it refuses only writes the row refuses too,
		// and tombstone garbage collection removes it (tombstones.go).
		from, args := arraySource{}.from(rels.up, rootRows(clear, false), root.idIdx)
		b.Queue(clearTombstones(root, from), args...)
	}
}

// insertWrites are the writes of ws that come from an insert event
// (rootWrite.insert).
func insertWrites(ws []*rootWrite) []*rootWrite {
	var out []*rootWrite
	for _, w := range ws {
		if w.insert {
			out = append(out, w)
		}
	}
	return out
}

// execReplanned runs b's statements, none of which takes arguments, in
// one simple-protocol round trip, so that PostgreSQL parses and plans each
// when it runs instead of reusing a plan cached for another batch.
func execReplanned(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	sqls := make([]string, len(b.QueuedQueries))
	for i, q := range b.QueuedQueries {
		if len(q.Arguments) > 0 {
			return fmt.Errorf("sink: statement with arguments among those planned per batch: %s", q.SQL)
		}
		sqls[i] = q.SQL
	}
	_, err := tx.Exec(ctx, strings.Join(sqls, ";\n"), pgx.QueryExecModeSimpleProtocol)
	return err
}

const insertControl = `INSERT INTO replicator.control_events (collection, operation, token, raw_event, stream_seq, cluster_ts, cluster_inc)
VALUES ($1, $2, nullif($3, ''), $4::jsonb, $5, $6, $7)`

// queueRecords queues the batch's dead letters and control events.
func (c *collection) queueRecords(b *pgx.Batch, p *batchPlan) {
	ns := c.cfg.Namespace
	for _, d := range p.deadLetters {
		d.twin = false
		b.Queue(insertEventDeadLetter, d.args(ns, int64(d.seq))...).Exec(func(ct pgconn.CommandTag) error {
			d.twin = ct.RowsAffected() == 0
			return nil
		})
	}
	for _, m := range p.controls {
		if c.part.Index > 0 {
			break // capture puts a control event on every partition; the first records it
		}
		e := m.env
		b.Queue(insertControl, ns, clean(e.Operation), clean(e.Token), string(m.readable()), int64(m.seq),
			int64(e.ClusterTime.T), int64(e.ClusterTime.I))
	}
	for _, g := range p.gaps {
		b.Queue(insertControl, ns, "gap", "", g.json(), int64(g.From), 0, 0)
	}
}

// clean makes s storable in a text column: valid UTF-8 without NUL bytes.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", `\u0000`)
}
