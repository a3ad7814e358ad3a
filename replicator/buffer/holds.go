package buffer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/transform"
)

// Hold is one collection whose capture stopped: a drop or rename of it, or
// an event its mapping cannot transform under on_error: halt. While held,
// capture reads past the collection's events without publishing them (the
// other collections stream on) and publishes no heartbeat for it, so its
// apply lag grows. The recovery re-copies the collection (a resync) and
// releases the hold at a cluster time the resync starts from: capture
// skips the collection's events up to it and publishes every later one
// (ARCHITECTURE.md, guarantees 3 and 5).
//
// Holds live in the buffer's KV bucket beside the capture position they
// qualify, one key per source and collection.
type Hold struct {
	Collection string `json:"collection"`
	// Reason and Recovery are what the operator is told.
	Reason   string `json:"reason"`
	Recovery string `json:"recovery"`
	// ClusterTime is the source time of the event that held it.
	ClusterTime transform.ClusterTime `json:"cluster_time"`
	Since       time.Time             `json:"since"`
	// ReleaseRequested asks the running capture to release the hold (set
	// by a resync while capture holds its lease).
	ReleaseRequested bool `json:"release_requested,omitempty"`
	// ReleasedAt, once set, is the cluster time after which capture
	// publishes the collection's events again.
	ReleasedAt transform.ClusterTime `json:"released_at,omitzero"`
	// ReleaseTaken records that the resync read ReleasedAt; only then may
	// capture forget the hold.
	ReleaseTaken bool `json:"release_taken,omitempty"`
}

// Released reports whether the recovery released the hold.
func (h Hold) Released() bool { return !h.ReleasedAt.IsZero() }

// Skips reports whether capture skips the collection's event at ct: every
// event while held, and after the release those at or before ReleasedAt,
// which the resync's copy covers. Publishing an event too many is
// harmless (the version guard keeps the copy's newer rows); skipping one
// after the release would lose it, hence the bound is inclusive only of
// ReleasedAt itself.
func (h Hold) Skips(ct transform.ClusterTime) bool {
	return !h.Released() || !h.ReleasedAt.Before(ct)
}

// Holds stores the holds of one buffer.
type Holds struct{ kv jetstream.KeyValue }

// Holds returns the hold store (it needs Open, which binds the bucket).
func (b *Buffer) Holds() *Holds { return &Holds{kv: b.kv} }

const holdPrefix = "hold."

// holdKey names a hold: KV keys allow only [-/_=.a-zA-Z0-9], so the
// namespace is base64url-encoded.
func holdKey(source, ns string) string {
	return holdPrefix + source + "." + base64.RawURLEncoding.EncodeToString([]byte(ns))
}

// ErrNoHold: the collection is not held.
var ErrNoHold = errors.New("collection not held")

// Get returns the hold of ns, or ErrNoHold.
func (h *Holds) Get(ctx context.Context, source, ns string) (Hold, jetstream.KeyValueEntry, error) {
	e, err := h.kv.Get(ctx, holdKey(source, ns))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Hold{}, nil, ErrNoHold
	}
	if err != nil {
		return Hold{}, nil, fmt.Errorf("read hold of %s: %w", ns, err)
	}
	var hd Hold
	if err := json.Unmarshal(e.Value(), &hd); err != nil {
		return Hold{}, nil, fmt.Errorf("read hold of %s: %w", ns, err)
	}
	return hd, e, nil
}

// List returns every hold of source.
func (h *Holds) List(ctx context.Context, source string) ([]Hold, error) {
	lister, err := h.kv.ListKeysFiltered(ctx, holdPrefix+source+".*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	var out []Hold
	for key := range lister.Keys() {
		enc := strings.TrimPrefix(key, holdPrefix+source+".")
		ns, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		hd, _, err := h.Get(ctx, source, string(ns))
		if errors.Is(err, ErrNoHold) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, hd)
	}
	return out, nil
}

// Put stores hd.
func (h *Holds) Put(ctx context.Context, source string, hd Hold) error {
	b, err := json.Marshal(hd)
	if err != nil {
		return fmt.Errorf("save hold of %s: %w", hd.Collection, err)
	}
	if _, err := h.kv.Put(ctx, holdKey(source, hd.Collection), b); err != nil {
		return fmt.Errorf("save hold of %s: %w", hd.Collection, err)
	}
	return nil
}

// Delete removes the hold of ns; a missing one is not an error.
func (h *Holds) Delete(ctx context.Context, source, ns string) error {
	if err := h.kv.Delete(ctx, holdKey(source, ns)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete hold of %s: %w", ns, err)
	}
	return nil
}
