package transform

import (
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Error is a document that cannot be transformed. The pipeline turns it
// into a dead letter (raw event, error, field path) and carries on, or
// halts if the collection says so; it is never dropped silently.
type Error struct {
	// Collection is the source namespace, "db.coll".
	Collection string
	// DocumentKey is the documentKey as canonical Extended JSON ("" if
	// unknown).
	DocumentKey string
	// Path is the dotted document field path at fault ("" if not one field).
	Path string
	Err  error
}

func (e *Error) Error() string {
	s := "transform " + e.Collection
	if e.DocumentKey != "" {
		s += " document " + e.DocumentKey
	}
	if e.Path != "" {
		s += " field " + e.Path
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Sentinel errors, matched with errors.Is through *Error.
var (
	// ErrUnknownNamespace: no transformer is registered for the event's
	// namespace.
	ErrUnknownNamespace = errors.New("no mapping for namespace")
	// ErrUnsupportedOperation: an operation type transform does not know
	// (for example an expanded DDL event).
	ErrUnsupportedOperation = errors.New("unsupported operation type")
	// ErrMissingKey: a key column's value is missing or null.
	ErrMissingKey = errors.New("key value is missing or null")
	// ErrRequired: a required column's value is missing or null.
	ErrRequired = errors.New("required value is missing or null")
	// ErrSkipped is returned by SnapshotRow for a document the collection's
	// filter skips.
	ErrSkipped = errors.New("document matches the collection filter")
	// ErrMalformed: the BSON bytes are not valid BSON.
	ErrMalformed = errMalformed
)

// fieldError is an error at a document field path, turned into *Error at
// the package boundary. segs holds the path innermost first, so callers add
// their segment while the error unwinds and no path is built on success.
type fieldError struct {
	segs []string
	err  error
}

func (e *fieldError) Error() string { return e.Path() + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// Path returns the dotted field path.
func (e *fieldError) Path() string {
	var b []byte
	for i := len(e.segs) - 1; i >= 0; i-- {
		if e.segs[i] == "" || e.segs[i] == "." {
			continue
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, e.segs[i]...)
	}
	return string(b)
}

// under adds the segment seg (a key, an index or a dotted prefix) in front
// of err's field path.
func under(seg string, err error) error {
	if fe, ok := err.(*fieldError); ok {
		fe.segs = append(fe.segs, seg)
		return fe
	}
	return &fieldError{segs: []string{seg}, err: err}
}

// newError builds an *Error for the document with key docKey, taking the
// field path from a fieldError if err has one, prefixed with base.
func (m *Mapping) newError(docKey []byte, base string, err error) *Error {
	e := &Error{Collection: m.ns, Err: err}
	var fe *fieldError
	if errors.As(err, &fe) {
		e.Err = fe.err
		e.Path = fe.Path()
		if base != "" && base != "." {
			if e.Path != "" {
				e.Path = base + "." + e.Path
			} else {
				e.Path = base
			}
		}
	} else if base != "." {
		e.Path = base
	}
	if docKey != nil {
		e.DocumentKey = canonicalJSON(docKey)
	}
	return e
}

// canonicalJSON renders a document as canonical Extended JSON, or a
// placeholder when the bytes are not a valid document.
func canonicalJSON(doc []byte) (s string) {
	if err := bson.Raw(doc).Validate(); err != nil {
		return fmt.Sprintf("(unreadable document: %v)", err)
	}
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprintf("(unreadable document: %v)", r)
		}
	}()
	b, err := bson.MarshalExtJSON(bson.Raw(doc), true, false)
	if err != nil {
		return fmt.Sprintf("(unreadable document: %v)", err)
	}
	return string(b)
}
