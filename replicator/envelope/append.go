package envelope

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mongopg/replicator/transform"
)

// AppendEncode appends the wire form of e to dst and returns the extended
// slice, stamping the current format version like Encode. The bytes are
// exactly those Encode (encoding/json) writes for the same envelope; it
// writes the hot fields by hand and falls back to encoding/json for the
// rare parts (dead letters, wall times outside years 0–9999).
func AppendEncode(dst []byte, e *Envelope) ([]byte, error) {
	e.V = Version
	if e.DeadLetter != nil || !plainTime(e.WallTime) {
		b, err := json.Marshal(e)
		if err != nil {
			return dst, fmt.Errorf("encode envelope: %w", err)
		}
		return append(dst, b...), nil
	}
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(e.V), 10)
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, string(e.Kind))
	dst = append(dst, `,"collection":`...)
	dst = appendString(dst, e.Collection)
	dst = append(dst, `,"cluster_time":{"t":`...)
	dst = strconv.AppendUint(dst, uint64(e.ClusterTime.T), 10)
	dst = append(dst, `,"i":`...)
	dst = strconv.AppendUint(dst, uint64(e.ClusterTime.I), 10)
	dst = append(dst, '}')
	if e.Ordinal != 0 {
		dst = append(dst, `,"ord":`...)
		dst = strconv.AppendUint(dst, uint64(e.Ordinal), 10)
	}
	if !e.WallTime.IsZero() {
		// time.Time.MarshalJSON: RFC 3339 with nanoseconds, no escaping needed.
		dst = append(dst, `,"wall_time":"`...)
		dst = e.WallTime.AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	if e.Token != "" {
		dst = append(dst, `,"token":`...)
		dst = appendString(dst, e.Token)
	}
	if e.Operation != "" {
		dst = append(dst, `,"op":`...)
		dst = appendString(dst, e.Operation)
	}
	if e.DocumentKey != "" {
		dst = append(dst, `,"document_key":`...)
		dst = appendString(dst, e.DocumentKey)
	}
	if len(e.Mutations) > 0 {
		dst = append(dst, `,"mutations":[`...)
		for i := range e.Mutations {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendMutation(dst, &e.Mutations[i])
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

// plainTime reports whether t is zero or formats as strict RFC 3339
// (time.Time.MarshalJSON refuses the others).
func plainTime(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	_, off := t.Zone()
	return t.Year() >= 0 && t.Year() <= 9999 && off%60 == 0 && off > -24*3600 && off < 24*3600
}

func appendMutation(dst []byte, m *transform.Mutation) []byte {
	dst = append(dst, `{"table":`...)
	dst = appendString(dst, m.Table)
	dst = append(dst, `,"op":`...)
	dst = strconv.AppendUint(dst, uint64(m.Op), 10)
	dst = append(dst, `,"key":`...)
	dst = appendValues(dst, m.Key)
	if len(m.Values) > 0 {
		dst = append(dst, `,"values":`...)
		dst = appendValues(dst, m.Values)
	}
	if len(m.Children) > 0 {
		dst = append(dst, `,"children":[`...)
		for i := range m.Children {
			ch := &m.Children[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"table":`...)
			dst = appendString(dst, ch.Table)
			dst = append(dst, `,"rows":`...)
			if ch.Rows == nil {
				dst = append(dst, "null"...)
			} else {
				dst = append(dst, '[')
				for j, row := range ch.Rows {
					if j > 0 {
						dst = append(dst, ',')
					}
					dst = appendValues(dst, row)
				}
				dst = append(dst, ']')
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendValues writes a []transform.Value as encoding/json does: null for
// nil, each value {"t":...,"v":true} with both fields omitempty.
func appendValues(dst []byte, vs []transform.Value) []byte {
	if vs == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		v := &vs[i]
		switch {
		case v.Text != "" && v.Valid:
			dst = append(dst, `{"t":`...)
			dst = appendString(dst, v.Text)
			dst = append(dst, `,"v":true}`...)
		case v.Text != "":
			dst = append(dst, `{"t":`...)
			dst = appendString(dst, v.Text)
			dst = append(dst, '}')
		case v.Valid:
			dst = append(dst, `{"v":true}`...)
		default:
			dst = append(dst, "{}"...)
		}
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string exactly as encoding/json does.
func appendString(dst []byte, s string) []byte { return AppendJSONString(dst, s, true) }

// AppendJSONString writes s as a JSON string: control characters escaped,
// invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped. With escapeHTML, <, >
// and & are escaped too, as encoding/json does; without, the output is what
// the MongoDB driver's Extended JSON writer produces.
func AppendJSONString(dst []byte, s string, escapeHTML bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && (!escapeHTML || (b != '<' && b != '>' && b != '&')) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
