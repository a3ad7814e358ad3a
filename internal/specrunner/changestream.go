package specrunner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

type watchFunc func(context.Context, any, *options.ChangeStreamOptionsBuilder) (*mongo.ChangeStream, error)

// createChangeStream opens a change stream; the driver runs the aggregate
// before Watch returns, as the format requires.
func createChangeStream(ctx context.Context, e *entities, a args, watch watchFunc) (opResult, error) {
	if err := a.check("createChangeStream", "pipeline", "fullDocument", "fullDocumentBeforeChange",
		"resumeAfter", "startAfter", "startAtOperationTime", "batchSize", "showExpandedEvents",
		"maxAwaitTimeMS", "comment", "collation", "session"); err != nil {
		return opResult{}, err
	}
	stages, err := a.pipeline("pipeline")
	if err != nil {
		return opResult{}, err
	}
	o := options.ChangeStream()
	if a.has("fullDocument") {
		s, err := a.str("fullDocument")
		if err != nil {
			return opResult{}, err
		}
		o.SetFullDocument(options.FullDocument(s))
	}
	if a.has("fullDocumentBeforeChange") {
		s, err := a.str("fullDocumentBeforeChange")
		if err != nil {
			return opResult{}, err
		}
		o.SetFullDocumentBeforeChange(options.FullDocument(s))
	}
	if a.has("resumeAfter") {
		d, err := a.document("resumeAfter")
		if err != nil {
			return opResult{}, err
		}
		o.SetResumeAfter(d)
	}
	if a.has("startAfter") {
		d, err := a.document("startAfter")
		if err != nil {
			return opResult{}, err
		}
		o.SetStartAfter(d)
	}
	if a.has("startAtOperationTime") {
		v := a.value("startAtOperationTime")
		if v.Type != bson.TypeTimestamp {
			return opResult{}, fmt.Errorf("argument startAtOperationTime must be a timestamp")
		}
		t, i := v.Timestamp()
		o.SetStartAtOperationTime(&bson.Timestamp{T: t, I: i})
	}
	if a.has("batchSize") {
		o.SetBatchSize(int32(a.value("batchSize").AsInt64()))
	}
	if a.has("showExpandedEvents") {
		b, ok := a.value("showExpandedEvents").BooleanOK()
		if !ok {
			return opResult{}, fmt.Errorf("argument showExpandedEvents must be a boolean")
		}
		o.SetShowExpandedEvents(b)
	}
	if a.has("maxAwaitTimeMS") {
		o.SetMaxAwaitTime(time.Duration(a.value("maxAwaitTimeMS").AsInt64()) * time.Millisecond)
	}
	if a.has("comment") {
		o.SetComment(a.value("comment"))
	}
	if a.has("collation") {
		return opResult{}, fmt.Errorf("argument collation is not supported by this runner")
	}
	if ctx, err = a.withSession(ctx, e); err != nil {
		return opResult{}, err
	}
	cs, err := watch(ctx, stages, o)
	if err != nil {
		return opResult{err: err}, nil
	}
	return opResult{entity: cs}, nil
}

// errNoDocument marks iterations that ended without a document or error.
var errNoDocument = errors.New("no document")

func (r *Runner) changeStreamOperation(ctx context.Context, cs *mongo.ChangeStream, name string, a args) (opResult, error) {
	switch name {
	case "iterateUntilDocumentOrError":
		if err := a.check(name); err != nil {
			return opResult{}, err
		}
		ictx, cancel := cancelAfter(ctx, r.cfg.IterateTimeout)
		defer cancel()
		if cs.Next(ictx) {
			return opResult{value: docValue(cloneRaw(cs.Current))}, nil
		}
		err := cs.Err()
		switch {
		case ictx.Err() != nil:
			return opResult{}, fmt.Errorf("%w: change stream returned no document or error within %s (last error: %v)",
				errNoDocument, r.cfg.IterateTimeout, err)
		case err == nil:
			return opResult{}, fmt.Errorf("%w: change stream was closed (cursor id 0) without a document or error", errNoDocument)
		}
		return opResult{err: err}, nil
	case "iterateOnce":
		if err := a.check(name); err != nil {
			return opResult{}, err
		}
		ictx, cancel := cancelAfter(ctx, r.cfg.IterateTimeout)
		defer cancel()
		if cs.TryNext(ictx) {
			return opResult{value: docValue(cloneRaw(cs.Current))}, nil
		}
		return opResult{err: cs.Err()}, nil
	case "close":
		if err := a.check(name); err != nil {
			return opResult{}, err
		}
		_ = cs.Close(ctx)
		return opResult{}, nil
	}
	return opResult{}, unsupported("change stream", name)
}
