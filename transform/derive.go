package transform

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// DefaultUUID5Namespace is the namespace of derived (uuid5) columns when
// neither the column nor the collection names one: the UUID version 5 of
// the URL https://github.com/mongopg/replicator/uuid5 in the RFC's URL
// namespace.
const DefaultUUID5Namespace = "b7dde4df-99ae-50ef-bc47-aa7de49c9e5b"

// Special parts of UUID5Config.From.
const (
	partParent  = "$parent"
	partOrdinal = "$ordinal"
)

// deriveMap is a compiled UUID5Config.
type deriveMap struct {
	ns    [16]byte
	scope string
	parts []derivePart
}

type derivePart struct {
	// path is a document or element path; parent and ordinal mark the
	// special parts.
	path    fieldPath
	parent  bool
	ordinal bool
}

// compileDerive checks a uuid5 column. table is the column's table, the
// default scope; inChild admits $parent and $ordinal.
func compileDerive(p *problems, field string, c *UUID5Config, typ colType, table, collNS string, inChild bool) *deriveMap {
	d := &deriveMap{scope: c.Scope}
	if d.scope == "" {
		d.scope = table
	}
	if typ.kind != kUUID || typ.array {
		p.add(field, "a uuid5 column must have type uuid, not %s", typ)
	}
	ns := c.Namespace
	if ns == "" {
		ns = collNS
	}
	u, ok := parseUUID([]byte(ns))
	if !ok {
		p.add(field+".namespace", "namespace %q is not a UUID", ns)
	}
	d.ns = u
	if err := validText([]byte(d.scope)); err != nil {
		p.addErr(field+".scope", err)
	}
	if len(c.From) == 0 {
		p.add(field+".from", "from needs at least one part")
	}
	for i, s := range c.From {
		f := field + ".from[" + strconv.Itoa(i) + "]"
		switch s {
		case partParent, partOrdinal:
			if !inChild {
				p.add(f, "%s only applies in a child table", s)
			}
			d.parts = append(d.parts, derivePart{parent: s == partParent, ordinal: s == partOrdinal})
			continue
		}
		fp, err := parsePath(s, inChild)
		if err != nil {
			p.addErr(f, err)
		}
		d.parts = append(d.parts, derivePart{path: fp})
	}
	return d
}

// uuid5Inputs supplies a derived column's parts.
type uuid5Inputs struct {
	// value resolves a path part.
	value func(p *fieldPath) (rawValue, error)
	// parent holds the parent_key values of a child row.
	parent  []Value
	ordinal int
}

// derive computes a uuid5 column into a. A missing or null path part
// gives SQL NULL (ErrRequired when required); the error of a path part
// names its path.
func (a *arena) derive(d *deriveMap, in uuid5Inputs, order uuidOrder, required bool) (Value, error) {
	start := len(a.buf)
	b := append(a.buf, '[')
	b = appendJSONBString(b, d.scope)
	for _, part := range d.parts {
		switch {
		case part.parent:
			for _, v := range in.parent {
				if !v.Valid {
					return a.derivedNull(required, "$parent")
				}
				b = appendJSONBString(append(b, ", "...), v.Text)
			}
		case part.ordinal:
			b = append(b, ", "...)
			b = appendJSONBString(b, strconv.Itoa(in.ordinal))
		default:
			v, err := in.value(&part.path)
			if err != nil {
				return Null, &partError{path: part.path.text, err: err}
			}
			if v.isNullish() {
				return a.derivedNull(required, part.path.text)
			}
			k := len(b)
			if b, err = appendIDText(b, v, order); err != nil {
				return Null, &partError{path: part.path.text, err: err}
			}
			// The key text is the string part: quote it in place.
			text := string(b[k:])
			b = appendJSONBString(append(b[:k], ", "...), text)
		}
	}
	b = append(b, ']')
	u := uuid5(d.ns, b[start:])
	return Text(a.keep(appendUUIDText(b[:start], u))), nil
}

func (a *arena) derivedNull(required bool, part string) (Value, error) {
	if required {
		return Null, &partError{path: part, err: fmt.Errorf("uuid5 part: %w", ErrRequired)}
	}
	return Null, nil
}

// partError is a derived column's failure at one of its parts: path is the
// part's path (or $parent), relative to the document or element.
type partError struct {
	path string
	err  error
}

func (e *partError) Error() string { return e.path + ": " + e.err.Error() }
func (e *partError) Unwrap() error { return e.err }

// splitPart returns the part path of a derive error ("" if none) and the
// error to report at it.
func splitPart(err error) (string, error) {
	var pe *partError
	if errors.As(err, &pe) {
		return pe.path, pe.err
	}
	return "", err
}

// uuid5 is the name-based UUID version 5 of name in namespace ns.
func uuid5(ns [16]byte, name []byte) [16]byte {
	h := sha1.New()
	h.Write(ns[:])
	h.Write(name)
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

// appendJSONBString appends s as a JSON string the way PostgreSQL prints
// jsonb text: ", \ and the control characters escaped (\b \f \n \r \t,
// others \u00xx), everything else as is. s is valid UTF-8.
func appendJSONBString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// UUID5Name returns the name a uuid5 column hashes for scope and the part
// texts, and the UUID it gives in namespace ns: for tools and tests that
// compute the same ids outside the replicator.
func UUID5Name(ns string, scope string, parts ...string) (name, id string, err error) {
	u, ok := parseUUID([]byte(ns))
	if !ok {
		return "", "", fmt.Errorf("namespace %q is not a UUID", ns)
	}
	b := appendJSONBString([]byte{'['}, scope)
	for _, p := range parts {
		if !utf8.ValidString(p) {
			return "", "", fmt.Errorf("part %q is not valid UTF-8", p)
		}
		b = appendJSONBString(append(b, ", "...), p)
	}
	b = append(b, ']')
	return string(b), string(appendUUIDText(nil, uuid5(u, b))), nil
}
