package snapshot

import (
	"bytes"

	"github.com/mongopg/replicator/sink"
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
	sink.WriteCopyText(&c.buf, v)
}

func (c *copyText) endRow() {
	c.buf.WriteByte('\n')
	c.rows++
}
