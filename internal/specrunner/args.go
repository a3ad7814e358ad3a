package specrunner

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// args is an operation's arguments with the keys it has used, so that an
// unknown argument can be refused.
type args struct {
	doc bson.Raw
}

func (a args) check(op string, allowed ...string) error {
	if len(a.doc) == 0 {
		return nil
	}
	return checkKeys(a.doc, op+" argument", allowed)
}

func (a args) has(key string) bool {
	_, err := a.doc.LookupErr(key)
	return len(a.doc) > 0 && err == nil
}

func (a args) value(key string) bson.RawValue {
	if len(a.doc) == 0 {
		return bson.RawValue{}
	}
	return a.doc.Lookup(key)
}

func (a args) str(key string) (string, error) {
	s, ok := a.value(key).StringValueOK()
	if !ok {
		return "", fmt.Errorf("argument %q must be a string", key)
	}
	return s, nil
}

func (a args) document(key string) (bson.Raw, error) {
	d, ok := a.value(key).DocumentOK()
	if !ok {
		return nil, fmt.Errorf("argument %q must be a document", key)
	}
	return d, nil
}

// pipeline returns the argument as a slice of stages, keeping their order.
func (a args) pipeline(key string) ([]bson.Raw, error) {
	arr, ok := a.value(key).ArrayOK()
	if !ok {
		return nil, fmt.Errorf("argument %q must be an array", key)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, err
	}
	stages := make([]bson.Raw, 0, len(vals))
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("argument %q: stage is not a document", key)
		}
		stages = append(stages, d)
	}
	return stages, nil
}

// withSession resolves the session argument, if any, into the context.
func (a args) withSession(ctx context.Context, e *entities) (context.Context, error) {
	if !a.has("session") {
		return ctx, nil
	}
	id, err := a.str("session")
	if err != nil {
		return nil, err
	}
	s, err := e.session(id)
	if err != nil {
		return nil, err
	}
	return mongo.NewSessionContext(ctx, s), nil
}
