package envelope

import "errors"

// errNoOrdinal: a change envelope without an ordinal. Every capture of a
// release numbers its change events from 1, so such an envelope was
// written by no release; applying it would need a tie-breaker that does
// not follow source order (ARCHITECTURE.md, guarantee 2).
var errNoOrdinal = errors.New("change envelope without an ordinal")

// check enforces what the wire layout alone does not: a change envelope
// carries its ordinal. It is the single place these rules live;
// DecodeShared applies it to every envelope it returns, so an invalid
// envelope is a decode error (in the applier a decode dead letter) and
// never reaches apply.
func (e *Envelope) check() error {
	if e.Kind == KindChange && e.Ordinal == 0 {
		return errNoOrdinal
	}
	return nil
}
