package buffer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Layouts records, per source and collection, how many partitions capture
// publishes the collection's changes on. Capture compares it with the
// configuration at start: a collection whose partitions changed while
// messages of the old layout were still unapplied must not start (capture,
// layout.go), because a document's old and new changes would sit on two
// subjects applied independently.
type Layouts struct{ kv jetstream.KeyValue }

// Layouts returns the layout store (it needs Open, which binds the bucket).
func (b *Buffer) Layouts() *Layouts { return &Layouts{kv: b.kv} }

func layoutKey(source, ns string) string {
	return "partitions." + source + "." + base64.RawURLEncoding.EncodeToString([]byte(ns))
}

// Get returns the recorded partitions of ns: 1 when none was recorded
// (every collection had one subject before partitions existed).
func (l *Layouts) Get(ctx context.Context, source, ns string) (int, error) {
	e, err := l.kv.Get(ctx, layoutKey(source, ns))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read partitions of %s: %w", ns, err)
	}
	var v struct {
		Partitions int `json:"partitions"`
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil || v.Partitions < 1 {
		return 0, fmt.Errorf("read partitions of %s: bad value %q", ns, e.Value())
	}
	return v.Partitions, nil
}

// Save records the partitions of ns.
func (l *Layouts) Save(ctx context.Context, source, ns string, n int) error {
	data := []byte(`{"collection":` + strconv.Quote(ns) + `,"partitions":` + strconv.Itoa(max(n, 1)) + `}`)
	if _, err := l.kv.Put(ctx, layoutKey(source, ns), data); err != nil {
		return fmt.Errorf("save partitions of %s: %w", ns, err)
	}
	return nil
}
