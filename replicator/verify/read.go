package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"golang.org/x/time/rate"

	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/transform"
)

// reader reads documents with Config.Workers workers and stages their
// expected rows. The workers read and transform; one goroutine, the
// caller's, copies their batches on the staging connection and keeps the
// report, so at most 2·Workers+1 batches of Config.BatchSize documents
// are in memory (one being filled per worker, Workers queued, one being
// copied).
type reader struct {
	m       *transform.Mapping
	cfg     Config
	st      *stage
	dls     deadLetters
	rep     *Report
	client  *mongo.Client
	coll    *mongo.Collection
	limiter *rate.Limiter
}

func newReader(m *transform.Mapping, cfg Config, st *stage, dls deadLetters, rep *Report, client *mongo.Client) *reader {
	db, name, _ := strings.Cut(m.Namespace(), ".")
	r := &reader{m: m, cfg: cfg, st: st, dls: dls, rep: rep, client: client,
		coll: client.Database(db).Collection(name, options.Collection().SetReadConcern(readconcern.Majority()))}
	if cfg.Rate > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate)))
	}
	return r
}

// job is one read: an _id range of the first pass, or documents named by
// _id that are read again.
type job struct {
	chunk *snapshot.Chunk
	ids   []bson.RawValue
	// sample: the newest limit documents matching filter, for tenant
	// (nil: all of the collection, or the tenant NULL when tenant is
	// set apart from that).
	sample bool
	filter bson.D
	limit  int64
	tenant *string
}

func (j job) String() string {
	switch {
	case j.chunk != nil:
		return j.chunk.String()
	case j.sample && j.tenant != nil:
		return fmt.Sprintf("sample of tenant %s", *j.tenant)
	case j.sample:
		return "sample"
	}
	return fmt.Sprintf("%d documents read again", len(j.ids))
}

// readAll reads the whole collection, range by range, as a snapshot
// would.
func (r *reader) readAll(ctx context.Context) error {
	chunks, _, err := snapshot.Plan(ctx, r.coll, r.cfg.ChunkSize)
	if err != nil {
		return err
	}
	jobs := make([]job, len(chunks))
	for i := range chunks {
		jobs[i] = job{chunk: &chunks[i]}
	}
	if err := r.run(ctx, jobs, false); err != nil {
		return err
	}
	r.progress(true)
	return nil
}

// readAgain reads the documents named by docs ({_id: …} as canonical
// Extended JSON) again; a document that no longer exists stages nothing.
func (r *reader) readAgain(ctx context.Context, docs []string) error {
	batches, err := idBatches(docs)
	if err != nil {
		return err
	}
	jobs := make([]job, len(batches))
	for i, ids := range batches {
		jobs[i] = job{ids: ids}
	}
	return r.run(ctx, jobs, true)
}

// idBatches returns the _id of each document key ({_id: …} as canonical
// Extended JSON), at most 1000 per batch: one $in query each.
func idBatches(docs []string) ([][]bson.RawValue, error) {
	const perQuery = 1000
	var out [][]bson.RawValue
	for start := 0; start < len(docs); start += perQuery {
		ids := make([]bson.RawValue, 0, min(perQuery, len(docs)-start))
		for _, d := range docs[start:min(start+perQuery, len(docs))] {
			var doc bson.Raw
			if err := bson.UnmarshalExtJSON([]byte(d), true, &doc); err != nil {
				return nil, fmt.Errorf("document %s: %w", d, err)
			}
			id, err := doc.LookupErr("_id")
			if err != nil {
				return nil, fmt.Errorf("document %s: %w", d, err)
			}
			ids = append(ids, id)
		}
		out = append(out, ids)
	}
	return out, nil
}

// readAfter returns a context whose reads wait for ct (afterClusterTime
// in a causally consistent session): a secondary or another shard behind
// it cannot hide a write at or before it. end ends the session.
func readAfter(ctx context.Context, client *mongo.Client, ct transform.ClusterTime) (_ context.Context, end func(), _ error) {
	sess, err := client.StartSession(options.Session().SetCausalConsistency(true))
	if err != nil {
		return nil, nil, fmt.Errorf("session: %w", err)
	}
	end = func() { sess.EndSession(context.WithoutCancel(ctx)) }
	if err := sess.AdvanceOperationTime(&bson.Timestamp{T: ct.T, I: ct.I}); err != nil {
		end()
		return nil, nil, fmt.Errorf("session: %w", err)
	}
	return mongo.NewSessionContext(ctx, sess), end, nil
}

// run reads jobs with the workers and copies their batches. again: the
// documents were counted by an earlier read.
func (r *reader) run(ctx context.Context, jobs []job, again bool) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	todo := make(chan job)
	out := make(chan *batch, r.cfg.Workers)
	var wg sync.WaitGroup
	for range min(r.cfg.Workers, max(len(jobs), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range todo {
				if err := r.readJob(ctx, j, again, out); err != nil {
					cancel(fmt.Errorf("%s: %w", j, err))
					return
				}
			}
		}()
	}
	go func() {
		defer close(out)
		defer wg.Wait()
		defer close(todo)
		for _, j := range jobs {
			select {
			case todo <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	var copyErr error
	for b := range out {
		if copyErr != nil || ctx.Err() != nil {
			continue // drain, so the workers can stop
		}
		if err := r.st.copyBatch(ctx, b); err != nil {
			copyErr = err
			cancel(err)
			continue
		}
		r.account(b)
		r.progress(false)
	}
	// The first failure is the cause: a worker's read error, or the
	// copy's (a copy cut short by a worker's cancel is not).
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return copyErr
}

// readJob reads one job's documents and sends their rows in batches.
func (r *reader) readJob(ctx context.Context, j job, again bool, out chan<- *batch) error {
	// Every write at or before read is majority-committed, so the
	// majority reads that follow see it (capture.ClusterTime).
	read, err := capture.ClusterTime(ctx, r.client)
	if err != nil {
		return err
	}
	var filter any
	opts := options.Find().SetBatchSize(int32(min(r.cfg.BatchSize, 10000)))
	switch {
	case j.chunk != nil:
		if filter, err = j.chunk.Filter(); err != nil {
			return err
		}
	case j.sample:
		filter = j.filter
		opts.SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(j.limit)
	default:
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: j.ids}}}}
	}
	sctx, end, err := readAfter(ctx, r.client, read)
	if err != nil {
		return err
	}
	defer end()
	cur, err := r.coll.Find(sctx, filter, opts)
	if err != nil {
		return fmt.Errorf("find: %w", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	b := newBatch(len(r.st.tables))
	send := func() error {
		select {
		case out <- b:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		b = newBatch(len(r.st.tables))
		return nil
	}
	n, read1 := 0, 0
	for cur.Next(ctx) {
		read1++
		if r.limiter != nil {
			if err := r.limiter.Wait(ctx); err != nil {
				return err
			}
		}
		if err := r.document(b, cur.Current, read, again); err != nil {
			return err
		}
		if n++; n == r.cfg.BatchSize {
			if err := send(); err != nil {
				return err
			}
			n = 0
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if j.sample && j.tenant != nil && read1 == 0 {
		b.unmatched = append(b.unmatched, *j.tenant)
	}
	if b.empty() {
		return nil
	}
	return send()
}

// document stages what one document should give: its rows, or, for a
// document that fails to transform or has an unresolved dead letter, its
// key among the keys left out of the comparison.
func (r *reader) document(b *batch, doc bson.Raw, read transform.ClusterTime, again bool) error {
	if !again {
		b.docs++
	}
	id, err := doc.LookupErr("_id")
	if err != nil {
		return fmt.Errorf("document without _id: %w", err)
	}
	keyDoc, keyJSON, err := documentKey(id)
	if err != nil {
		return err
	}
	mut, terr := r.m.SnapshotRow(doc, transform.ClusterTime{})
	if errors.Is(terr, transform.ErrSkipped) {
		if !again {
			b.skipped++
		}
		return nil
	}
	var te *transform.Error
	if terr != nil && !errors.As(terr, &te) {
		return terr
	}
	ids := r.dls.ids(keyJSON)
	reason := reasonDeadLetter
	switch {
	case len(ids) > 0:
		b.deadLetteredN++
		if len(b.deadLettered) < r.cfg.MaxDifferences {
			b.deadLettered = append(b.deadLettered, DocumentReport{DocumentKey: keyJSON, Error: errText(terr), DeadLetters: ids})
		}
	case terr != nil:
		reason = reasonTransform
		b.transformErrorsN++
		if len(b.transformErrors) < r.cfg.MaxDifferences {
			b.transformErrors = append(b.transformErrors, DocumentReport{DocumentKey: keyJSON, Error: errText(terr)})
		}
	default:
		r.st.rows(b, &mut, keyJSON, read)
		return nil
	}
	// Left out: its rows on the PostgreSQL side are explained.
	key := mut.Key
	if terr != nil {
		key = r.deleteKey(keyDoc)
	}
	r.st.excluded(b, key, keyJSON, reason)
	return nil
}

// deleteKey is the root key a delete event of the document would carry,
// nil when the mapping cannot tell it from the _id alone.
func (r *reader) deleteKey(keyDoc bson.Raw) []transform.Value {
	db, coll, _ := strings.Cut(r.m.Namespace(), ".")
	res, err := r.m.Transform(&transform.Event{OperationType: transform.OpDeleteEvent, DB: db, Coll: coll, DocumentKey: keyDoc})
	if err != nil || len(res.Mutations) != 1 {
		return nil
	}
	return res.Mutations[0].Key
}

// account adds a copied batch to the report.
func (r *reader) account(b *batch) {
	r.rep.Documents += b.docs
	r.rep.Skipped += b.skipped
	r.rep.TransformErrors.merge(r.cfg.MaxDifferences, b.transformErrorsN, b.transformErrors)
	r.rep.DeadLettered.merge(r.cfg.MaxDifferences, b.deadLetteredN, b.deadLettered)
	if r.rep.Sample != nil {
		r.rep.Sample.Unmatched = append(r.rep.Sample.Unmatched, b.unmatched...)
	}
}

func (r *reader) progress(done bool) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(r.m.Namespace(), r.rep.Documents, done)
	}
}

func (l *DocumentList) merge(limit int, n int64, ds []DocumentReport) {
	l.Count += n
	for _, d := range ds {
		if len(l.Documents) < limit {
			l.Documents = append(l.Documents, d)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// documentKey returns the documentKey {_id: id} of an unsharded
// collection's document, as BSON and as canonical Extended JSON (the form
// dead letters name documents by).
func documentKey(id bson.RawValue) (bson.Raw, string, error) {
	b, err := bson.Marshal(bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return nil, "", fmt.Errorf("document key: %w", err)
	}
	js, err := bson.MarshalExtJSON(bson.Raw(b), true, false)
	if err != nil {
		return nil, "", fmt.Errorf("document key: %w", err)
	}
	return b, string(js), nil
}
