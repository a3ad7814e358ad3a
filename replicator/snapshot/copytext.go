package snapshot

import (
	"bytes"
	"strings"

	"github.com/mongopg/replicator/transform"
)

// copyText accumulates rows in COPY's text format. Values are already in
// PostgreSQL text input syntax (transform.Value), so the server parses them
// with each staged column's type, exactly as an INSERT of the literal would.
type copyText struct {
	buf  bytes.Buffer
	rows int
}

func (c *copyText) reset() { c.buf.Reset(); c.rows = 0 }

// field appends one value, tab-separated from the previous one.
func (c *copyText) field(first bool, v transform.Value) {
	if !first {
		c.buf.WriteByte('\t')
	}
	if !v.Valid {
		c.buf.WriteString(`\N`)
		return
	}
	escapeCopy(&c.buf, v.Text)
}

// keyArray appends the key values as a text[] literal, the form the
// tombstone table stores keys in.
func (c *copyText) keyArray(key []transform.Value) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range key {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, r := range k.Text {
			if r == '"' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	escapeCopy(&c.buf, b.String())
}

func (c *copyText) endRow() {
	c.buf.WriteByte('\n')
	c.rows++
}

// escapeCopy writes s with COPY text-format escapes.
func escapeCopy(b *bytes.Buffer, s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '\t':
			esc = `\t`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		default:
			continue
		}
		b.WriteString(s[start:i])
		b.WriteString(esc)
		start = i + 1
	}
	b.WriteString(s[start:])
}
