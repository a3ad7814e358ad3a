package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"

	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/transform"
)

// Collection verifies the collection of m: it reads every document,
// stages the rows the mapping would write in temporary tables of one
// target connection, and compares them with every table of the mapping.
// An error means the comparison could not be made (a server failed);
// differences are in the Report.
func Collection(ctx context.Context, deps Deps, m *transform.Mapping, cfg Config) (Report, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	ns := m.Namespace()
	rep := Report{Collection: ns, TransformErrors: DocumentList{Documents: []DocumentReport{}},
		DeadLettered: DocumentList{Documents: []DocumentReport{}}}
	conn, err := deps.Target.Acquire(ctx)
	if err != nil {
		return rep, fmt.Errorf("verify %s: target: %w", ns, err)
	}
	defer conn.Release()
	dls, err := openDeadLetters(ctx, conn, ns)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", ns, err)
	}
	st, err := newStage(ctx, conn, m.Tables())
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", ns, err)
	}
	defer st.drop(context.WithoutCancel(ctx))

	r := &reader{m: m, cfg: cfg, st: st, dls: dls, rep: &rep}
	if err := r.read(ctx, deps.Source); err != nil {
		return rep, fmt.Errorf("verify %s: %w", ns, err)
	}
	equal := rep.TransformErrors.Count == 0 && rep.DeadLettered.Count == 0
	for i, def := range m.Tables() {
		tr, err := compareTable(ctx, conn, st, i, def, cfg.MaxDifferences)
		if err != nil {
			return rep, fmt.Errorf("verify %s: %w", ns, err)
		}
		equal = equal && tr.equal()
		rep.Tables = append(rep.Tables, tr)
	}
	rep.Equal = equal
	return rep, nil
}

// reader reads one collection and stages its expected rows.
type reader struct {
	m   *transform.Mapping
	cfg Config
	st  *stage
	dls deadLetters
	rep *Report
	// pending is the number of documents staged in memory, not copied yet.
	pending int
}

// read reads the collection range by range, as a snapshot would.
func (r *reader) read(ctx context.Context, client *mongo.Client) error {
	db, name, _ := strings.Cut(r.m.Namespace(), ".")
	coll := client.Database(db).Collection(name, options.Collection().SetReadConcern(readconcern.Majority()))
	chunks, _, err := snapshot.Plan(ctx, coll, r.cfg.ChunkSize)
	if err != nil {
		return err
	}
	for _, c := range chunks {
		if err := r.readChunk(ctx, coll, c); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
	}
	if err := r.flush(ctx); err != nil {
		return err
	}
	r.progress(true)
	return nil
}

func (r *reader) readChunk(ctx context.Context, coll *mongo.Collection, c snapshot.Chunk) error {
	filter, err := c.Filter()
	if err != nil {
		return err
	}
	cur, err := coll.Find(ctx, filter, options.Find().SetBatchSize(int32(min(r.cfg.BatchSize, 10000))))
	if err != nil {
		return fmt.Errorf("find: %w", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	for cur.Next(ctx) {
		if err := r.document(cur.Current); err != nil {
			return err
		}
		if r.pending >= r.cfg.BatchSize {
			if err := r.flush(ctx); err != nil {
				return err
			}
			r.progress(false)
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}

// document stages what one document should give: its rows, or, for a
// document that fails to transform or has an unresolved dead letter, its
// key among the keys left out of the comparison.
func (r *reader) document(doc bson.Raw) error {
	r.rep.Documents++
	r.pending++
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
		r.rep.Skipped++
		return nil
	}
	var te *transform.Error
	if terr != nil && !errors.As(terr, &te) {
		return terr
	}
	ids := r.dls.ids(keyJSON)
	switch {
	case len(ids) > 0:
		r.rep.DeadLettered.add(r.cfg.MaxDifferences, DocumentReport{DocumentKey: keyJSON, Error: errText(terr), DeadLetters: ids})
	case terr != nil:
		r.rep.TransformErrors.add(r.cfg.MaxDifferences, DocumentReport{DocumentKey: keyJSON, Error: errText(terr)})
	default:
		r.st.rows(&mut)
		return nil
	}
	// Left out: its rows on the PostgreSQL side are explained.
	key := mut.Key
	if terr != nil {
		key = r.deleteKey(keyDoc)
	}
	if key != nil {
		r.st.excluded(key)
	}
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

func (r *reader) flush(ctx context.Context) error {
	r.pending = 0
	return r.st.flush(ctx)
}

func (r *reader) progress(done bool) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(r.m.Namespace(), r.rep.Documents, done)
	}
}

func (l *DocumentList) add(limit int, d DocumentReport) {
	l.Count++
	if len(l.Documents) < limit {
		l.Documents = append(l.Documents, d)
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
