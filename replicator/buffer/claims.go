package buffer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ApplyGroup shares apply units (collections, or partitions of them) among
// the apply processes of one buffer: each unit is applied by the process
// holding its claim, a key in a KV bucket whose entries expire after the
// TTL unless renewed (ARCHITECTURE.md, Scale-out). Every process keeps a
// member key alive too; with M members and U units a process claims at
// most ⌈U/M⌉ units and hands the rest back, so the units even out when a
// process joins, and a dead process's units are free once its keys expire
// (at once when it died on this host). It implements sink.Claimer.
//
// Expiry is the server's (the bucket's max age), so clocks of different
// machines never decide who holds a claim.
type ApplyGroup struct {
	kv    jetstream.KeyValue
	ttl   time.Duration
	units int
	me    claimValue
	log   *slog.Logger

	mu      sync.Mutex
	members int
	held    map[string]bool // units this process holds
	differ  string          // a member sharing another number of units, last seen

	left chan struct{} // closed once the member key is deleted (Left)
}

// claimValue is a claim's or a member's stored value.
type claimValue struct {
	Holder string `json:"holder"`
	Host   string `json:"host"`
	PID    int    `json:"pid"`
	// PIDSpace is as in leaseValue.
	PIDSpace string `json:"pid_space,omitempty"`
	Unit     string `json:"unit,omitempty"`
	// Units is how many units a member shares (member keys only).
	Units int `json:"units,omitempty"`
}

// DefaultClaimTTL is how long an apply claim outlives a process that stopped
// renewing it.
const DefaultClaimTTL = 15 * time.Second

// claimBucket is the KV bucket of apply claims and members.
func (c Config) claimBucket() string { return c.Stream + "_apply" }

const memberPrefix = "member."

// claimKey is the key of unit's claim: a hash, since a unit name may hold
// any byte of a namespace and KV keys may not.
func claimKey(unit string) string {
	sum := sha256.Sum256([]byte(unit))
	return "unit." + hex.EncodeToString(sum[:10])
}

// JoinApplyGroup creates the claim bucket if needed and keeps this
// process's member key alive until ctx ends (then removes it). units is how
// many units the processes share (sink.Applier.Units); every process of
// the group must be configured with the same collections.
func (b *Buffer) JoinApplyGroup(ctx context.Context, units int, ttl time.Duration) (*ApplyGroup, error) {
	if ttl <= 0 {
		ttl = DefaultClaimTTL
	}
	kv, err := b.claimBucket(ctx, ttl)
	if err != nil {
		return nil, fmt.Errorf("buffer: apply claim bucket: %w", err)
	}
	warnNoPIDSpace(b.log, "claim")
	host, _ := os.Hostname()
	g := &ApplyGroup{kv: kv, ttl: ttl, units: units, log: b.log, members: 1, held: map[string]bool{}, left: make(chan struct{}),
		me: claimValue{Host: host, PID: os.Getpid(), PIDSpace: pidSpace(), Holder: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano()), Units: units}}
	// The process claims at once, counting the members it sees now: one
	// started alone (or restarted) applies without delay. Of processes
	// started together, the first may claim more than its share; its next
	// beat counts the others, and it hands the excess back (renew), so
	// the claims even out within a few renewal intervals. A failed join
	// leaves no member behind.
	if err := g.beat(ctx); err != nil {
		g.leave(ctx)
		return nil, fmt.Errorf("buffer: apply group: %w", err)
	}
	go func() {
		defer close(g.left)
		g.keepMember(ctx)
	}()
	return g, nil
}

// Left is closed once ctx (JoinApplyGroup's) has ended and this process's
// member key is deleted, or the delete gave up after 2 s. Wait for it
// before closing the buffer's connection: the others then count this
// process out at their next renewal instead of after the TTL, and take
// its units at once.
func (g *ApplyGroup) Left() <-chan struct{} { return g.left }

// leave deletes this process's member key.
func (g *ApplyGroup) leave(ctx context.Context) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = g.kv.Delete(dctx, g.memberKey())
}

// claimBucket binds the claim bucket, creating it when missing and
// setting its TTL when another process created it with a different one.
// It binds first: apply processes starting together on a JetStream
// cluster would otherwise all ask to create or update the replicated
// bucket at once, and all but one such request can hang until its
// timeout.
func (b *Buffer) claimBucket(ctx context.Context, ttl time.Duration) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      b.cfg.claimBucket(),
		Description: "replicator apply claims and members",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
	}
	kv, err := b.js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = b.js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = b.js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.TTL() != ttl {
		return b.js.UpdateKeyValue(ctx, cfg)
	}
	return kv, nil
}

// Holder names this process in claims ("host/pid/start").
func (g *ApplyGroup) Holder() string { return g.me.Holder }

// interval is how often claims and the member key are renewed, and free
// claims looked for.
func (g *ApplyGroup) interval() time.Duration { return min(g.ttl/3, time.Second) }

func (g *ApplyGroup) memberKey() string {
	return memberPrefix + hex.EncodeToString([]byte(g.me.Holder))
}

// beat renews the member key and counts the live members: a member key
// whose process died on this host does not count, so that its units are
// this host's survivors' share at once, as its claims are (take).
func (g *ApplyGroup) beat(ctx context.Context) error {
	data, _ := json.Marshal(g.me)
	if _, err := g.kv.Put(ctx, g.memberKey(), data); err != nil {
		return err
	}
	lister, err := g.kv.ListKeysFiltered(ctx, memberPrefix+">")
	if err != nil {
		return err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	n, differ := 0, ""
	for _, k := range keys {
		var v claimValue
		if e, err := g.kv.Get(ctx, k); err == nil && json.Unmarshal(e.Value(), &v) == nil {
			if deadOnThisHost(leaseValue{Host: v.Host, PID: v.PID, PIDSpace: v.PIDSpace}) {
				continue
			}
			if v.Units != 0 && v.Units != g.units {
				differ = fmt.Sprintf("%s shares %d", v.Holder, v.Units)
			}
		}
		n++
	}
	if differ != "" && differ != g.differ {
		// Shares computed from different unit counts need not cover every
		// unit: some may be applied by nobody.
		g.log.Warn("apply group: processes configured with different collections or partitions; give every apply process the same file",
			"units_here", g.units, "other", differ)
	}
	g.differ = differ
	g.mu.Lock()
	g.members = max(n, 1)
	g.mu.Unlock()
	return nil
}

func (g *ApplyGroup) keepMember(ctx context.Context) {
	t := time.NewTicker(g.interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			g.leave(ctx)
			return
		case <-t.C:
		}
		if err := g.beat(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("apply group: cannot renew membership", "err", err)
		}
	}
}

// share is how many units this process should hold: ⌈units/members⌉.
func (g *ApplyGroup) share() int {
	return (g.units + g.members - 1) / g.members
}

// Claim blocks until this process holds unit's claim (sink.Claimer).
func (g *ApplyGroup) Claim(ctx context.Context, unit string) (context.Context, func(), error) {
	key := claimKey(unit)
	val := g.me
	val.Unit = unit
	data, _ := json.Marshal(val)
	waiting := false
	for {
		rev, ok, holder, err := g.take(ctx, unit, key, data)
		if err != nil && ctx.Err() == nil {
			g.log.Debug("apply group: cannot claim", "collection", unit, "err", err)
		}
		if ok {
			held, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			var last uint64 // the claim's revision while still ours, else 0
			go func() {
				defer close(done)
				last = g.renew(held, cancel, unit, key, data, rev)
			}()
			var once sync.Once
			release := func() {
				once.Do(func() {
					cancel()
					<-done
					// Only now, with the unit no longer applied here, may
					// another process take it.
					if last != 0 {
						dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
						_ = g.kv.Delete(dctx, key, jetstream.LastRevision(last))
						dcancel()
					}
					g.mu.Lock()
					delete(g.held, unit)
					g.mu.Unlock()
				})
			}
			return held, release, nil
		}
		if !waiting && holder != "" {
			g.log.Debug("apply group: another process applies it", "collection", unit, "holder", holder)
			waiting = true
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(g.interval()):
		}
	}
}

// take claims unit when this process is below its share and the claim is
// free, expired or left by a dead process on this host.
func (g *ApplyGroup) take(ctx context.Context, unit, key string, data []byte) (uint64, bool, string, error) {
	g.mu.Lock()
	defer g.mu.Unlock() // one take at a time: the share is not overrun
	if len(g.held) >= g.share() {
		return 0, false, "", nil
	}
	rev, err := g.kv.Create(ctx, key, data)
	if err == nil {
		g.held[unit] = true
		return rev, true, "", nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, false, "", err
	}
	e, err := g.kv.Get(ctx, key)
	if err != nil {
		return 0, false, "", err
	}
	var cur claimValue
	if json.Unmarshal(e.Value(), &cur) != nil || !deadOnThisHost(leaseValue{Host: cur.Host, PID: cur.PID, PIDSpace: cur.PIDSpace}) {
		return 0, false, cur.Holder, nil
	}
	rev, err = g.kv.Update(ctx, key, data, e.Revision())
	if err != nil {
		return 0, false, cur.Holder, nil // another process took it first
	}
	g.log.Info("apply group: took over from a process that died on this host", "collection", unit, "holder", cur.Holder)
	g.held[unit] = true
	return rev, true, "", nil
}

// renew keeps unit's claim until held ends, the claim is lost (another
// process holds the key, or it could not be renewed for a TTL), or this
// process holds more than its share and unit is among the ones it hands
// back; then it cancels held. It returns the claim's revision while the
// claim is still this process's (release deletes it), else 0.
func (g *ApplyGroup) renew(held context.Context, cancel context.CancelFunc, unit, key string, data []byte, rev uint64) uint64 {
	defer cancel()
	t := time.NewTicker(g.interval())
	defer t.Stop()
	// lastOK is when the last successful renewal was sent: the server
	// expires the claim a TTL after it stored it, so this process gives
	// the claim up one interval before that could have happened.
	lastOK := time.Now()
	for {
		select {
		case <-held.Done():
			return rev
		case <-t.C:
		}
		if g.excess(unit) {
			g.log.Info("apply group: handing a unit to another process", "collection", unit)
			return rev
		}
		sent := time.Now()
		uctx, cancel := context.WithDeadline(held, lastOK.Add(g.ttl-g.interval()))
		r, err := g.kv.Update(uctx, key, data, rev)
		cancel()
		if err == nil {
			rev, lastOK = r, sent
			continue
		}
		if held.Err() != nil {
			return rev
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			// A renewal whose reply was lost moved the revision on: the
			// claim is still this process's if the key says so.
			if e, gerr := g.kv.Get(held, key); gerr == nil && bytes.Equal(e.Value(), data) {
				rev = e.Revision()
				continue
			}
			g.log.Warn("apply group: claim lost to another process", "collection", unit)
			return 0
		}
		if time.Since(lastOK) >= g.ttl-g.interval() {
			g.log.Warn("apply group: claim not renewed in time; giving it up before it expires", "collection", unit, "err", err)
			return 0
		}
	}
}

// excess reports whether unit is among the units this process holds
// beyond its share: the last ones by name, so that every process hands
// back a predictable set.
func (g *ApplyGroup) excess(unit string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	share := g.share()
	if len(g.held) <= share {
		return false
	}
	names := make([]string, 0, len(g.held))
	for u := range g.held {
		names = append(names, u)
	}
	slices.Sort(names)
	return slices.Index(names, unit) >= share
}
