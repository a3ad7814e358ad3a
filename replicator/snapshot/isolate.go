package snapshot

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// leafDocs is the most documents a failing piece may hold to be loaded one
// document at a time instead of being split further.
const leafDocs = 4

// isolation writes a chunk whose rows PostgreSQL refused (a CHECK, UNIQUE
// or foreign-key violation, a value out of range: sink.EventError, the
// classes the streaming apply isolates too) in one transaction, tx, that
// the caller ends by marking the chunk done (copyIsolating): so the rows,
// the dead letters and the done mark commit together, and a retried or
// resumed chunk writes each dead letter once.
//
// The refused piece, first the whole chunk, is split in two at the median
// _id of its documents, read again from MongoDB (split), and each half is
// loaded under a savepoint: a half that loads stays, a refused half is
// rolled back to its savepoint and split again, down to pieces of at most
// leafDocs documents, loaded one document at a time; the document refused
// on its own is the one at fault. It becomes a dead letter (stage apply,
// reason snapshot, with its SQLSTATE; sink.WriteSnapshotApplyDeadLetter),
// or, under on_error: halt, a *HaltError. Of two documents that conflict
// with each other (a UNIQUE value), the one written first stays: within a
// chunk the smaller _id, across chunks the one whose chunk commits first.
//
// Memory stays as on the normal path: pieces are read again, each through
// the same load (BatchSize documents at a time, then COPY text up to
// spillBytes), and the split holds one _id per level. The root table's
// lock, taken by the first piece that loads, is held until the chunk
// commits, so streaming writes of this collection wait for the isolation
// (they wait for a chunk's merge anyway, see guardMerge).
type isolation struct {
	s     *Snapshot
	j     *job
	tx    pgx.Tx
	final bool      // foreign-key violations are dead-lettered, not deferred
	fl    *inflight // the chunk's documents in flight
	n     counts    // documents of the pieces kept
}

// failed isolates the documents at fault in piece p, whose load failed
// with cause and was rolled back.
func (iso *isolation) failed(ctx context.Context, p Chunk, cause error) error {
	if foreignKey(cause) && !iso.final {
		return errDeferred
	}
	parts, err := iso.split(ctx, p)
	if err != nil {
		return err
	}
	if parts == nil {
		return iso.oneByOne(ctx, p)
	}
	for _, q := range parts {
		if err := iso.try(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// try loads piece p under a savepoint and keeps it, or rolls it back and
// isolates within it.
func (iso *isolation) try(ctx context.Context, p Chunk) error {
	filter, err := p.Filter()
	if err != nil {
		return err
	}
	refused, err := iso.attempt(ctx, func(fl *inflight) (counts, error) {
		return iso.s.loadRange(ctx, iso.tx, iso.j, filter, fl)
	})
	if err != nil || refused == nil {
		return err
	}
	return iso.failed(ctx, p, refused)
}

// attempt runs load under the piece savepoint. Loaded, the piece is kept
// (its counts and in-flight documents join the chunk's). Refused for an
// event-class reason (sink.EventError), it is rolled back and the refusal
// returned for the caller to isolate; any other failure is err.
func (iso *isolation) attempt(ctx context.Context, load func(fl *inflight) (counts, error)) (refused, err error) {
	if err := iso.savepoint(ctx); err != nil {
		return nil, err
	}
	fl := &inflight{t: iso.j.track}
	n, err := load(fl)
	if err == nil {
		iso.fl.adopt(fl)
		iso.n.add(n)
		return nil, iso.release(ctx)
	}
	fl.release()
	if !sink.EventError(err) {
		return nil, err
	}
	if err := iso.rollback(ctx); err != nil {
		return nil, err
	}
	return err, nil
}

// split returns two or more pieces that together select exactly p's
// documents, or nil when p is a leaf: a piece of a bracket range operators
// cannot split (minKey, null, bool, regex, other: a few documents at most
// in practice), of at most leafDocs documents, or one whose median cannot
// be found. A chunk of the whole collection splits into its type brackets;
// a range splits at the _id in the middle of its documents, in the
// server's _id order, which range operators follow within a bracket
// (chunk.go). The first half keeps p's lower bound, so NaN stays in it
// (Chunk.Filter).
func (iso *isolation) split(ctx context.Context, p Chunk) ([]Chunk, error) {
	if p.Bracket == bracketAll {
		parts := make([]Chunk, len(brackets))
		for i, b := range brackets {
			parts[i] = Chunk{ID: p.ID, Bracket: b.name}
		}
		return parts, nil
	}
	b, ok := findBracket(p.Bracket)
	if !ok {
		return nil, fmt.Errorf("chunk %d: unknown type bracket %q", p.ID, p.Bracket)
	}
	if !b.splittable {
		return nil, nil
	}
	filter, err := p.Filter()
	if err != nil {
		return nil, err
	}
	n, err := iso.j.coll.CountDocuments(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("isolate: count: %w", err)
	}
	if n <= leafDocs {
		return nil, nil
	}
	raw, err := iso.j.coll.FindOne(ctx, filter, options.FindOne().SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetSkip(n/2).SetProjection(bson.D{{Key: "_id", Value: 1}})).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil // deleted meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("isolate: median _id: %w", err)
	}
	v, err := raw.LookupErr("_id")
	if err != nil {
		return nil, fmt.Errorf("isolate: median _id: %w", err)
	}
	mid := bson.RawValue{Type: v.Type, Value: append([]byte(nil), v.Value...)}
	if isNaN(mid) || mid.Equal(p.Lower) {
		return nil, nil
	}
	return []Chunk{
		{ID: p.ID, Bracket: p.Bracket, Lower: p.Lower, Upper: mid},
		{ID: p.ID, Bracket: p.Bracket, Lower: mid, Upper: p.Upper},
	}, nil
}

// oneByOne loads p's documents one at a time in _id order, each under its
// own savepoint.
func (iso *isolation) oneByOne(ctx context.Context, p Chunk) error {
	filter, err := p.Filter()
	if err != nil {
		return err
	}
	cur, err := iso.j.coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return fmt.Errorf("find: %w", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	for cur.Next(ctx) {
		if err := iso.one(ctx, cur.Current); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}

// one loads a single document under a savepoint; refused on its own, it
// is the document at fault: a dead letter, or a *HaltError.
func (iso *isolation) one(ctx context.Context, doc bson.Raw) error {
	refused, err := iso.attempt(ctx, func(fl *inflight) (counts, error) {
		sent := false
		return iso.s.load(ctx, iso.tx, iso.j, func() (bson.Raw, error) {
			if sent {
				return nil, nil
			}
			sent = true
			return doc, nil
		}, 1, fl)
	})
	if err != nil || refused == nil {
		return err
	}
	err = refused
	if foreignKey(err) && !iso.final {
		return errDeferred
	}
	ns, key := iso.j.m.Namespace(), documentKey(doc)
	if iso.j.m.Config().OnError == transform.OnErrorHalt {
		return &HaltError{Collection: ns, Kind: iso.j.run.Kind, DocumentKey: key, Err: err}
	}
	rawEvent, rawBytes := rawDocument(doc)
	if err := sink.WriteSnapshotApplyDeadLetter(ctx, iso.tx, ns, key, err, rawEvent, rawBytes, iso.j.run.T0); err != nil {
		return err
	}
	iso.n.add(counts{docs: 1, skipped: 1})
	iso.s.deps.Logger.Warn("snapshot document dead-lettered", "collection", ns, "kind", iso.j.run.Kind,
		"document", key, "sqlstate", sqlstate(err), "err", err, "detail", pgDetail(err))
	return nil
}

// The savepoint of the piece being loaded: one at a time, released or
// rolled back (and released) before the next, so subtransactions never
// nest.
const (
	savepoint         = "SAVEPOINT snapshot_piece"
	releaseSavepoint  = "RELEASE SAVEPOINT snapshot_piece"
	rollbackSavepoint = "ROLLBACK TO SAVEPOINT snapshot_piece"
)

func (iso *isolation) savepoint(ctx context.Context) error {
	if _, err := iso.tx.Exec(ctx, savepoint); err != nil {
		return fmt.Errorf("isolate: %w", err)
	}
	return nil
}

func (iso *isolation) release(ctx context.Context) error {
	if _, err := iso.tx.Exec(ctx, releaseSavepoint); err != nil {
		return fmt.Errorf("isolate: %w", err)
	}
	return nil
}

func (iso *isolation) rollback(ctx context.Context) error {
	if _, err := iso.tx.Exec(ctx, rollbackSavepoint); err != nil {
		return fmt.Errorf("isolate: %w", err)
	}
	return iso.release(ctx)
}

// documentKey is a document's key as dead letters and transform errors
// write it: {_id: …} as canonical extended JSON.
func documentKey(doc bson.Raw) string {
	id, err := doc.LookupErr("_id")
	if err != nil {
		return ""
	}
	js, err := bson.MarshalExtJSON(bson.D{{Key: "_id", Value: id}}, true, false)
	if err != nil {
		return ""
	}
	return string(js)
}
