package transform

import "unsafe"

// arena holds the text of many values in one byte slice, so that a row
// costs one allocation for all its texts instead of one per value. Each
// call that builds rows makes its own arena; an arena is never shared.
//
// Safety rule: the strings an arena returns alias its bytes, so a byte
// below len(buf) is never written again. All work happens past len(buf),
// on a slice that extends buf: appending to it, cutting it back or
// dropping it (a failed or NULL conversion) is free, since no string
// references those bytes; keep then makes the new bytes a string and moves
// len(buf) past them. An append that moves to a new array leaves the old
// one, and the strings over it, unchanged. Nor is an arena ever reset or
// pooled: its strings end up in mutations that outlive the call (they are
// encoded and published later), and a reset would rewrite them.
type arena struct {
	buf []byte
}

func newArena(size int) *arena { return &arena{buf: make([]byte, 0, size)} }

// keep makes the bytes b holds past len(a.buf) a string and takes b as the
// arena's bytes. b must be a.buf with text appended (by append, or by an
// append-style function given a.buf).
func (a *arena) keep(b []byte) string {
	start := len(a.buf)
	if cap(b) == cap(a.buf) {
		// The same array (an append that moves text always grows the
		// capacity): only the length changes, a store the garbage
		// collector's write barrier need not see.
		a.buf = a.buf[:len(b)]
	} else {
		a.buf = b
	}
	if len(b) == start {
		return ""
	}
	return unsafe.String(&b[start], len(b)-start)
}

// text copies s into the arena.
func (a *arena) text(s []byte) string { return a.keep(append(a.buf, s...)) }

// convert returns the column value of v for a column of type t, its text
// in the arena.
func (a *arena) convert(t colType, v rawValue, order uuidOrder) (Value, error) {
	b, null, err := appendConvert(a.buf, t, v, order)
	if err != nil || null {
		return Null, err
	}
	return Text(a.keep(b)), nil
}

// arenaSize is the arena capacity for the rows of a document of n bytes.
// A value's text is about as long as its BSON: the columns and a rest
// document column (the fields the columns left) together take about n,
// the whole document as JSONB takes n beside the columns (most often a
// small part of it), and columns alone take a part. An estimate only: the
// arena grows past it when needed.
func (m *Mapping) arenaSize(n int) int {
	switch {
	case m.doc == nil:
		return n / 2
	case m.doc.rest:
		return n
	}
	return n + n/2
}
