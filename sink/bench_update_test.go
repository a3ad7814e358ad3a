package sink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// The applier writes bench.items; the hand-written merge writes
// bench.merged, an identical table.
const updateBenchDDL = benchItemsDDL + `
CREATE TABLE bench.merged (LIKE bench.items INCLUDING ALL);`

// The update-heavy workload: updateKeys documents exist before the stream
// starts; of the events, 90% update or replace an existing document (one
// in three of those hits one of updateHotKeys documents, so a batch of
// 2000 holds about six writes of each hot key), 5% insert a new document
// and 5% delete one (never a hot one).
const (
	updateBatch   = 2000
	updateKeys    = 20_000
	updateHotKeys = 100
)

// Statements of the baseline: what an engineer writes by hand to apply a
// batch of change events with COPY, once the batch is reduced to the
// newest write of each key.
const (
	mergeStage = `CREATE TEMP TABLE IF NOT EXISTS merge_stage (
    id text, tenant uuid, n integer, created timestamptz, payload text,
    _cdc_ts bigint, _cdc_inc bigint, _cdc_seq bigint, deleted boolean NOT NULL) ON COMMIT DELETE ROWS`
	mergeUpsert = `INSERT INTO bench.merged (id, tenant, n, created, payload, _cdc_ts, _cdc_inc, _cdc_seq)
SELECT id, tenant, n, created, payload, _cdc_ts, _cdc_inc, _cdc_seq FROM merge_stage WHERE NOT deleted
ON CONFLICT (id) DO UPDATE SET tenant = EXCLUDED.tenant, n = EXCLUDED.n, created = EXCLUDED.created,
    payload = EXCLUDED.payload, _cdc_ts = EXCLUDED._cdc_ts, _cdc_inc = EXCLUDED._cdc_inc, _cdc_seq = EXCLUDED._cdc_seq`
	mergeDelete = `DELETE FROM bench.merged t USING merge_stage s WHERE s.deleted AND t.id = s.id`
)

var mergeColumns = []string{"id", "tenant", "n", "created", "payload", "_cdc_ts", "_cdc_inc", "_cdc_seq", "deleted"}

// updateEvent is one change event of the update-heavy workload.
type updateEvent struct {
	op  string // insert, update, replace or delete
	id  string
	n   int32
	ct  transform.ClusterTime
	seq uint64 // stream sequence, once published
}

// updateWorkload generates the events of the benchmark and tracks which
// documents exist.
type updateWorkload struct {
	r       *rand.Rand
	live    []string // the first updateHotKeys entries are the hot keys
	next    int      // number of the next new document
	t0      uint32   // cluster time seconds of the first event
	events  int
	tenant  uuid.UUID
	created time.Time
	payload string
}

func newUpdateWorkload() *updateWorkload {
	w := &updateWorkload{
		r:       rand.New(rand.NewPCG(7, 11)),
		t0:      uint32(time.Now().Add(-time.Hour).Unix()),
		tenant:  uuid.New(),
		created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		payload: strings.Repeat("x", 1024-110),
	}
	for ; w.next < updateKeys; w.next++ {
		w.live = append(w.live, docID(w.next))
	}
	return w
}

func docID(n int) string { return fmt.Sprintf("doc-%09d", n) }

// payloadOf is the payload an event writes: distinct per event, so the
// final tables show which event wrote each row.
func (w *updateWorkload) payloadOf(ct transform.ClusterTime) string {
	return fmt.Sprintf("%010d.%02d:", ct.T, ct.I) + w.payload
}

// batch generates the next updateBatch events, with ascending cluster
// times (eight events share each second).
func (w *updateWorkload) batch() []updateEvent {
	out := make([]updateEvent, updateBatch)
	for i := range out {
		e := updateEvent{n: int32(w.r.IntN(1_000_000)),
			ct: transform.ClusterTime{T: w.t0 + uint32(w.events/8), I: uint32(w.events%8) + 1}}
		w.events++
		switch k := w.r.IntN(100); {
		case k < 5:
			e.op, e.id = "insert", docID(w.next)
			w.next++
			w.live = append(w.live, e.id)
		case k < 10:
			j := updateHotKeys + w.r.IntN(len(w.live)-updateHotKeys)
			e.op, e.id = "delete", w.live[j]
			w.live[j] = w.live[len(w.live)-1]
			w.live = w.live[:len(w.live)-1]
		default:
			e.op = "update"
			if w.r.IntN(3) == 0 {
				e.op = "replace"
			}
			if w.r.IntN(3) == 0 {
				e.id = w.live[w.r.IntN(updateHotKeys)]
			} else {
				e.id = w.live[w.r.IntN(len(w.live))]
			}
		}
		out[i] = e
	}
	return out
}

// envelope is the buffer message of e, as capture publishes it.
// updateOrdinal is every event's ordinal: each has a cluster time of its
// own, so it is the first of its cluster time, and the version the applier
// writes is (T, I, 1).
const updateOrdinal = 1

func (w *updateWorkload) envelope(e *updateEvent) ([]byte, error) {
	key := []transform.Value{transform.Text(e.id)}
	m := transform.Mutation{Table: "bench.items", Op: transform.OpDelete, Key: key}
	if e.op != "delete" {
		m.Op = transform.OpUpsert
		m.Values = []transform.Value{transform.Text(e.id), transform.Text(w.tenant.String()),
			transform.Text(strconv.Itoa(int(e.n))), transform.Text(w.created.Format(time.RFC3339Nano)),
			transform.Text(w.payloadOf(e.ct))}
	}
	return envelope.Encode(&envelope.Envelope{Kind: envelope.KindChange, Collection: testNS, ClusterTime: e.ct, Ordinal: updateOrdinal,
		WallTime: time.Unix(int64(e.ct.T), 0), Token: fmt.Sprintf("%08x%08x", e.ct.T, e.ct.I), Operation: e.op,
		DocumentKey: fmt.Sprintf(`{"_id":%q}`, e.id), Mutations: []transform.Mutation{m}})
}

// mergeRows reduces a batch to the newest write of each key, in the order
// keys first appear (as the applier's plan does), as rows of merge_stage.
func (w *updateWorkload) mergeRows(events []updateEvent) [][]any {
	newest := map[string]int{}
	var order []string
	for i, e := range events {
		if _, seen := newest[e.id]; !seen {
			order = append(order, e.id)
		}
		newest[e.id] = i
	}
	rows := make([][]any, 0, len(order))
	for _, id := range order {
		e := &events[newest[id]]
		ver := []any{int64(e.ct.T), int64(e.ct.I), int64(updateOrdinal)}
		if e.op == "delete" {
			rows = append(rows, append([]any{id, nil, nil, nil, nil}, append(ver, true)...))
			continue
		}
		rows = append(rows, append([]any{id, w.tenant, e.n, w.created, w.payloadOf(e.ct)}, append(ver, false)...))
	}
	return rows
}

// BenchmarkApplyUpdates (c) drains b.N batches of 2000 update-heavy events
// (see updateWorkload) from the real buffer into a table of 20,000 1 KB
// rows, and in the same run applies the same events, in batches of the same
// size, to an identical table by COPY into a staging table plus INSERT ...
// ON CONFLICT DO UPDATE and DELETE, with each batch already reduced to the
// newest write of each key. It reports both rates in events per second and
// their ratio, and fails unless both tables end up identical.
//
// The applier's time covers fetching from JetStream, decoding, planning,
// the version-guarded merge, tombstones, the checkpoint and the acks; the
// baseline's covers its transactions only, with its rows built beforehand.
func BenchmarkApplyUpdates(b *testing.B) {
	ctx := context.Background()
	pool := testenv.Postgres(b)
	if err := schemas.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, updateBenchDDL); err != nil {
		b.Fatal(err)
	}
	buf, err := buffer.Open(ctx, buffer.Config{URL: testenv.NATS(b).URL}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(buf.Close)
	bcfg := buf.Config()
	tables := benchTables()
	a, err := New(pool, []Collection{{Namespace: testNS, Tables: tables}},
		Config{Stream: bcfg.Stream, SubjectPrefix: bcfg.SubjectPrefix, CopyThreshold: benchThreshold()}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}

	w := newUpdateWorkload()
	preloadUpdateBench(b, pool, w)
	batches := make([][]updateEvent, b.N)
	for i := range batches {
		batches[i] = w.batch()
	}
	subject := buf.Subject(testNS)
	publish := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			publishUpdateBatch(b, buf.JetStream(), subject, w, batches[i])
		}
	}
	merged := 0
	merge := func(lo, hi int) time.Duration {
		rows := make([][][]any, 0, hi-lo)
		for i := lo; i < hi; i++ {
			rows = append(rows, w.mergeRows(batches[i]))
			merged += len(rows[len(rows)-1])
		}
		start := time.Now()
		for _, r := range rows {
			mergeUpdateBatch(b, pool, r)
		}
		return time.Since(start)
	}
	drain := func(lo, hi int) time.Duration {
		if lo == hi {
			return 0
		}
		return drainUpdateBench(b, pool, buf.JetStream(), a, batches[hi-1][updateBatch-1].seq)
	}

	// A-B-B-A order cancels a load that drifts during the run; the second
	// half is published only once the first is applied, so the applier's
	// time never includes publishing.
	b.ResetTimer()
	mid := b.N / 2
	b.StopTimer()
	publish(0, mid)
	b.StartTimer()
	mergeTime := merge(0, mid)
	applyTime := drain(0, mid)
	b.StopTimer()
	publish(mid, b.N)
	b.StartTimer()
	applyTime += drain(mid, b.N)
	mergeTime += merge(mid, b.N)
	b.StopTimer()

	checkUpdateBench(b, pool, len(w.live))
	events := float64(b.N * updateBatch)
	applyRate, mergeRate := events/applyTime.Seconds(), events/mergeTime.Seconds()
	b.ReportMetric(applyRate, "apply_events/s")
	b.ReportMetric(mergeRate, "merge_events/s")
	b.ReportMetric(applyRate/mergeRate, "apply/merge")
	b.Logf("(c) %d update-heavy events (%d keys preloaded, %d rows after keeping the newest write per key and batch): applier %.0f events/s from the buffer, COPY into a staging table plus merge %.0f events/s: ratio %.2f",
		b.N*updateBatch, updateKeys, merged, applyRate, mergeRate, applyRate/mergeRate)
}

// preloadUpdateBench COPYs the workload's initial documents into both
// tables, older than every event.
func preloadUpdateBench(b *testing.B, pool *pgxpool.Pool, w *updateWorkload) {
	b.Helper()
	ctx := context.Background()
	ct := transform.ClusterTime{T: w.t0 - 1, I: 1}
	rows := make([][]any, len(w.live))
	for i, id := range w.live {
		rows[i] = []any{id, w.tenant, int32(i), w.created, w.payloadOf(ct), int64(ct.T), int64(ct.I), int64(0)}
	}
	for _, tbl := range []string{"items", "merged"} {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"bench", tbl}, mergeColumns[:8], pgx.CopyFromRows(rows)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, "ANALYZE bench.items; ANALYZE bench.merged"); err != nil {
		b.Fatal(err)
	}
}

// publishUpdateBatch publishes events as capture publishes a backlog
// (replicator/capture, group.go): in batch messages of at most 128 events
// and 128 KiB, asynchronously, and records each event's stream sequence
// (its message's).
func publishUpdateBatch(b *testing.B, js jetstream.JetStream, subject string, w *updateWorkload, events []updateEvent) {
	b.Helper()
	const maxEvents, maxBytes = 128, 128 << 10
	type message struct {
		lo, hi int
		data   []byte
	}
	var msgs []message
	var frames [][]byte
	lo, size := 0, 0
	cut := func(hi int) {
		if len(frames) > 0 {
			msgs = append(msgs, message{lo: lo, hi: hi, data: envelope.AppendBatch(nil, frames)})
		}
		frames, lo, size = nil, hi, 0
	}
	for i := range events {
		data, err := w.envelope(&events[i])
		if err != nil {
			b.Fatal(err)
		}
		if len(frames) == maxEvents || size+len(data)+5 > maxBytes {
			cut(i)
		}
		frames = append(frames, data)
		size += len(data) + 5
	}
	cut(len(events))
	futs := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		id := fmt.Sprintf("%d.%d-%d.%d", events[m.lo].ct.T, events[m.lo].ct.I, events[m.hi-1].ct.T, events[m.hi-1].ct.I)
		var err error
		if futs[i], err = js.PublishAsync(subject, m.data, jetstream.WithMsgID(id)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged within a minute")
	}
	for i, f := range futs {
		select {
		case ack := <-f.Ok():
			for j := msgs[i].lo; j < msgs[i].hi; j++ {
				events[j].seq = ack.Sequence
			}
		case err := <-f.Err():
			b.Fatal(err)
		}
	}
}

// mergeUpdateBatch is the baseline's transaction for one batch.
func mergeUpdateBatch(b *testing.B, pool *pgxpool.Pool, rows [][]any) {
	b.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, mergeStage); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"merge_stage"}, mergeColumns, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	batch := &pgx.Batch{}
	// Statistics for the staging table, so that the DELETE probes the
	// key index: without them the planner takes the few pages of deletes
	// for about a thousand rows and hash-joins the whole table.
	batch.Queue("ANALYZE merge_stage")
	batch.Queue(mergeUpsert)
	batch.Queue(mergeDelete)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
}

// drainUpdateBench runs the applier until its checkpoint reaches last and
// returns how long that took.
func drainUpdateBench(b *testing.B, pool *pgxpool.Pool, js jetstream.JetStream, a *Applier, last uint64) time.Duration {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- a.Run(ctx, js) }()
	took, err := waitCheckpoint(ctx, pool, last, start, done)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return took
}

// waitCheckpoint polls the checkpoint until it reaches last, the applier
// stops (done) or ten minutes pass.
func waitCheckpoint(ctx context.Context, pool *pgxpool.Pool, last uint64, start time.Time, done <-chan error) (time.Duration, error) {
	deadline := start.Add(10 * time.Minute)
	for {
		var seq int64
		err := pool.QueryRow(ctx, `SELECT stream_seq FROM replicator.apply_checkpoints WHERE collection = $1`, testNS).Scan(&seq)
		switch {
		case err == nil && uint64(seq) >= last:
			return time.Since(start), nil
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return 0, err
		}
		select {
		case err := <-done:
			return 0, fmt.Errorf("applier stopped at sequence %d of %d: %v", seq, last, err)
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("applier at sequence %d of %d after %s", seq, last, time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkUpdateBench fails unless the applier's table and the baseline's hold
// the same rows, versions included, and as many as the workload expects.
func checkUpdateBench(b *testing.B, pool *pgxpool.Pool, want int) {
	b.Helper()
	var (
		counts  [2]int
		digests [2]string
	)
	for i, tbl := range []string{"bench.items", "bench.merged"} {
		err := pool.QueryRow(context.Background(), fmt.Sprintf(
			`SELECT count(*), md5(coalesce(string_agg(t::text, E'\n' ORDER BY t.id), '')) FROM %s t`, tbl)).Scan(&counts[i], &digests[i])
		if err != nil {
			b.Fatal(err)
		}
	}
	if counts[0] != want || counts[1] != want || digests[0] != digests[1] {
		b.Fatalf("final states differ: applier %d rows (md5 %s), merge %d rows (md5 %s), want %d rows",
			counts[0], digests[0], counts[1], digests[1], want)
	}
}
