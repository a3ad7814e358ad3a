package buffer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/transform"
)

// Position is a point in the source's change stream.
type Position struct {
	// Token is the resume token's _data: capture resumes after it.
	Token string `json:"token"`
	// ClusterTime is the source cluster time at Token.
	ClusterTime transform.ClusterTime `json:"cluster_time"`
	// Ordinal is the ordinal of the event at Token among the consecutive
	// events of ClusterTime (envelope.Envelope.Ordinal): capture resumes
	// numbering after it, so events read again after a restart inside a
	// transaction get the ordinals they had. 0 for a start time, and for a
	// postBatchResumeToken past the last event's cluster time.
	Ordinal uint32 `json:"ordinal,omitempty"`
	// StreamSeq is the buffer sequence of the last message published at or
	// before Token (0 if unknown).
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	// SavedAt is the wall time of the save.
	SavedAt time.Time `json:"saved_at,omitzero"`
}

// IsZero reports whether p is no position at all. A position with a
// cluster time but no token is a start time (the first start's T0).
func (p Position) IsZero() bool { return p.Token == "" && p.ClusterTime.IsZero() }

// ClusterTimeOfToken decodes the cluster time at the head of a resume
// token's _data ("82" then the 8-byte timestamp in hex, the layout MongoDB
// uses). ok is false for a token of another layout.
func ClusterTimeOfToken(data string) (ct transform.ClusterTime, ok bool) {
	if len(data) < 18 || data[:2] != "82" {
		return ct, false
	}
	v, err := strconv.ParseUint(data[2:18], 16, 64)
	if err != nil {
		return ct, false
	}
	return transform.ClusterTime{T: uint32(v >> 32), I: uint32(v)}, true
}

// ErrNoPosition: no position is saved for the source.
var ErrNoPosition = errors.New("no capture position saved")

// Positions stores capture positions in the buffer's KV bucket, one key per
// source. They live beside the stream they describe (ARCHITECTURE.md, guarantee 4).
type Positions struct{ kv jetstream.KeyValue }

// Positions returns the position store.
func (b *Buffer) Positions() *Positions { return &Positions{kv: b.kv} }

func positionKey(source string) string { return "position." + source }

// Load returns the saved position of source, or ErrNoPosition.
func (p *Positions) Load(ctx context.Context, source string) (Position, error) {
	e, err := p.kv.Get(ctx, positionKey(source))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Position{}, ErrNoPosition
	}
	if err != nil {
		return Position{}, fmt.Errorf("load capture position %s: %w", source, err)
	}
	var pos Position
	if err := json.Unmarshal(e.Value(), &pos); err != nil {
		return Position{}, fmt.Errorf("load capture position %s: %w", source, err)
	}
	return pos, nil
}

// Save stores pos as the position of source.
func (p *Positions) Save(ctx context.Context, source string, pos Position) error {
	if pos.SavedAt.IsZero() {
		pos.SavedAt = time.Now().UTC()
	}
	b, err := json.Marshal(pos)
	if err != nil {
		return fmt.Errorf("save capture position %s: %w", source, err)
	}
	if _, err := p.kv.Put(ctx, positionKey(source), b); err != nil {
		return fmt.Errorf("save capture position %s: %w", source, err)
	}
	return nil
}

// Delete forgets the position of source (the next capture starts afresh).
func (p *Positions) Delete(ctx context.Context, source string) error {
	if err := p.kv.Delete(ctx, positionKey(source)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete capture position %s: %w", source, err)
	}
	return nil
}
