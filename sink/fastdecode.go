package sink

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// decodeEnvelope decodes a buffer message. Binary envelopes (the format
// capture writes) are decoded in place: their strings share the message's
// bytes, which are never written after they were received and outlive
// the batch that uses them.
//
// JSON envelopes (version 1, written by older builds and possibly still
// in the buffer after an upgrade) take a small hand-written parser for the
// common shape of change and heartbeat envelopes: decoding JSON with
// reflection was the applier's largest CPU cost. Anything it does not
// recognise exactly (another field, a null, an escape it leaves to
// encoding/json, a dead-letter envelope, a syntax error) falls back to
// envelope.Decode, so the result is always what envelope.Decode returns
// (FuzzDecodeEnvelope checks it).
func decodeEnvelope(b []byte) (*envelope.Envelope, error) {
	if envelope.IsBinary(b) {
		return envelope.DecodeShared(b)
	}
	p := parser{b: b}
	if e, ok := p.envelope(); ok {
		return e, nil
	}
	return envelope.Decode(b)
}

type parser struct {
	b       []byte
	i       int
	scratch []transform.Value
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c.
func (p *parser) consume(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) peek(c byte) bool {
	p.ws()
	return p.i < len(p.b) && p.b[p.i] == c
}

// str reads a JSON string into a string of its own.
func (p *parser) str() (string, bool) {
	s, ok := p.strAlias()
	if !ok {
		return "", false
	}
	return strings.Clone(s), true
}

// strAlias reads a JSON string. A string without escapes shares the
// message's bytes (decoded values are the bulk of a batch, and a copy of
// each was the decoder's largest cost); the message data is never written
// after it was received, and the values live no longer than its batch.
// Strings with escapes are unescaped exactly as encoding/json does, and
// invalid UTF-8 makes the fast parser give up.
func (p *parser) strAlias() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	start := p.i
	end := bytes.IndexByte(p.b[start:], '"')
	if end < 0 {
		return "", false
	}
	raw := p.b[start : start+end]
	if bytes.IndexByte(raw, '\\') < 0 {
		for _, c := range raw {
			if c < 0x20 {
				return "", false
			}
		}
		p.i = start + end + 1
		if !utf8.Valid(raw) {
			return "", false
		}
		if len(raw) == 0 {
			return "", true
		}
		return unsafe.String(&raw[0], len(raw)), true
	}
	// Find the closing quote past escapes, then unescape.
	for j := start; j < len(p.b); j++ {
		switch p.b[j] {
		case '\\':
			j++
		case '"':
			raw := p.b[start:j]
			if !utf8.Valid(raw) {
				return "", false
			}
			s, ok := unescape(raw)
			if ok {
				p.i = j + 1
			}
			return s, ok
		}
	}
	return "", false
}

// unescape decodes JSON string escapes exactly as encoding/json does
// (a lone surrogate becomes U+FFFD); it reports false for invalid input.
func unescape(raw []byte) (string, bool) {
	var sb strings.Builder
	sb.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c < 0x20 {
			return "", false
		}
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' && raw[j] >= 0x20 {
				j++
			}
			sb.Write(raw[i:j])
			i = j
			continue
		}
		if i+1 >= len(raw) {
			return "", false
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			sb.WriteByte(e)
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r := hex4(raw[i+2:])
			if r < 0 {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2 := hex4u(raw[i:]); r2 >= 0 {
					if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
						sb.WriteRune(d)
						i += 6
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			sb.WriteRune(r)
			continue
		default:
			return "", false
		}
		i += 2
	}
	return sb.String(), true
}

// hex4u reads "\\uXXXX", -1 if absent.
func hex4u(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	return hex4(b[2:])
}

// hex4 reads four hex digits, -1 if invalid.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// uint reads a non-negative integer of at most bits bits.
func (p *parser) uint(bits int) (uint64, bool) {
	p.ws()
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i == start || (p.b[start] == '0' && p.i-start > 1) {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(p.b[start:p.i]), 10, bits)
	return n, err == nil
}

func (p *parser) boolean() (bool, bool) {
	p.ws()
	switch {
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		p.i += 4
		return true, true
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		p.i += 5
		return false, true
	}
	return false, false
}

// object calls field for each key of an object.
func (p *parser) object(field func(key string) bool) bool {
	if !p.consume('{') {
		return false
	}
	if p.consume('}') {
		return true
	}
	for {
		k, ok := p.strAlias() // only compared, never kept
		if !ok || !p.consume(':') || !field(k) {
			return false
		}
		if p.consume('}') {
			return true
		}
		if !p.consume(',') {
			return false
		}
	}
}

// null consumes a JSON null.
func (p *parser) null() bool {
	p.ws()
	if bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += 4
		return true
	}
	return false
}

// array calls elem for each element of an array.
func (p *parser) array(elem func() bool) bool {
	if !p.consume('[') {
		return false
	}
	if p.consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.consume(']') {
			return true
		}
		if !p.consume(',') {
			return false
		}
	}
}

func (p *parser) envelope() (*envelope.Envelope, bool) {
	e := &envelope.Envelope{}
	ok := p.object(func(k string) bool {
		var ok bool
		switch k {
		case "v":
			var n uint64
			n, ok = p.uint(31)
			e.V = int(n)
		case "kind":
			var s string
			s, ok = p.str()
			e.Kind = envelope.Kind(s)
		case "collection":
			e.Collection, ok = p.str()
		case "cluster_time":
			ok = p.clusterTime(&e.ClusterTime)
		case "ord":
			var n uint64
			n, ok = p.uint(32)
			e.Ordinal = uint32(n)
		case "wall_time":
			start := p.i
			if _, ok = p.str(); ok {
				ok = e.WallTime.UnmarshalJSON(bytes.TrimSpace(p.b[start:p.i])) == nil
			}
		case "token":
			e.Token, ok = p.str()
		case "op":
			e.Operation, ok = p.str()
		case "document_key":
			e.DocumentKey, ok = p.str()
		case "mutations":
			if p.null() {
				e.Mutations, ok = nil, true
				break
			}
			e.Mutations = []transform.Mutation{}
			ok = p.array(func() bool {
				var m transform.Mutation
				if !p.mutation(&m) {
					return false
				}
				e.Mutations = append(e.Mutations, m)
				return true
			})
		}
		return ok
	})
	p.ws()
	if !ok || p.i != len(p.b) || e.V != envelope.JSONVersion {
		return nil, false
	}
	return e, true
}

func (p *parser) clusterTime(ct *transform.ClusterTime) bool {
	return p.object(func(k string) bool {
		n, ok := p.uint(32)
		switch k {
		case "t":
			ct.T = uint32(n)
		case "i":
			ct.I = uint32(n)
		default:
			return false
		}
		return ok
	})
}

func (p *parser) mutation(m *transform.Mutation) bool {
	return p.object(func(k string) bool {
		var ok bool
		switch k {
		case "table":
			m.Table, ok = p.str()
		case "op":
			var n uint64
			n, ok = p.uint(8)
			m.Op = transform.Op(n)
		case "key":
			m.Key, ok = p.values()
		case "values":
			m.Values, ok = p.values()
		case "children":
			if p.null() {
				m.Children, ok = nil, true
				break
			}
			m.Children = []transform.ChildRows{}
			ok = p.array(func() bool {
				var cr transform.ChildRows
				ok := p.object(func(k string) bool {
					switch k {
					case "table":
						var ok bool
						cr.Table, ok = p.str()
						return ok
					case "rows":
						if p.null() {
							cr.Rows = nil
							return true
						}
						cr.Rows = [][]transform.Value{}
						return p.array(func() bool {
							r, ok := p.values()
							cr.Rows = append(cr.Rows, r)
							return ok
						})
					}
					return false
				})
				m.Children = append(m.Children, cr)
				return ok
			})
		}
		return ok
	})
}

// values reads an array of values into a slice of exactly its length
// (gathered in the parser's scratch slice first).
func (p *parser) values() ([]transform.Value, bool) {
	if p.null() {
		return nil, true
	}
	if !p.consume('[') {
		return nil, false
	}
	p.scratch = p.scratch[:0]
	if !p.consume(']') {
		for {
			var v transform.Value
			if !p.value(&v) {
				return nil, false
			}
			p.scratch = append(p.scratch, v)
			if p.consume(']') {
				break
			}
			if !p.consume(',') {
				return nil, false
			}
		}
	}
	return append(make([]transform.Value, 0, len(p.scratch)), p.scratch...), true
}

// value reads one value. The encoder's four shapes ({"t":...,"v":true},
// {"t":...}, {"v":true}, {}) are matched literally; anything else (other
// spacing or field order, a false or repeated field) goes through the
// general object reader.
func (p *parser) value(v *transform.Value) bool {
	p.ws()
	rest := p.b[p.i:]
	switch {
	case bytes.HasPrefix(rest, valueText):
		save := p.i
		p.i += len(valueText)
		s, ok := p.strAlias()
		if ok {
			rest = p.b[p.i:]
			switch {
			case bytes.HasPrefix(rest, valueValidEnd):
				p.i += len(valueValidEnd)
				*v = transform.Value{Text: s, Valid: true}
				return true
			case bytes.HasPrefix(rest, valueEnd):
				p.i += len(valueEnd)
				*v = transform.Value{Text: s}
				return true
			}
		}
		p.i = save
	case bytes.HasPrefix(rest, valueValid):
		p.i += len(valueValid)
		*v = transform.Value{Valid: true}
		return true
	case bytes.HasPrefix(rest, valueEmpty):
		p.i += len(valueEmpty)
		*v = transform.Value{}
		return true
	}
	*v = transform.Value{}
	return p.object(func(k string) bool {
		var ok bool
		switch k {
		case "t":
			v.Text, ok = p.strAlias()
		case "v":
			v.Valid, ok = p.boolean()
		}
		return ok
	})
}

var (
	valueText     = []byte(`{"t":`)
	valueValidEnd = []byte(`,"v":true}`)
	valueEnd      = []byte(`}`)
	valueValid    = []byte(`{"v":true}`)
	valueEmpty    = []byte(`{}`)
)
