package buffer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// holders records which group applies each unit, and fails the test when
// two hold one unit at once.
type holders struct {
	t  *testing.T
	mu sync.Mutex
	by map[string]string
}

func (h *holders) count() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := map[string]int{}
	for _, g := range h.by {
		n[g]++
	}
	return n
}

// apply runs the units under g as sink.Applier does: claim, hold until
// the claim ends, release, claim again.
func (h *holders) apply(ctx context.Context, name string, g *ApplyGroup, units []string, wg *sync.WaitGroup) {
	for _, u := range units {
		wg.Go(func() {
			for {
				held, release, err := g.Claim(ctx, u)
				if err != nil {
					return
				}
				h.mu.Lock()
				if other, ok := h.by[u]; ok {
					h.t.Errorf("%s claimed %s while %s holds it", name, u, other)
				}
				h.by[u] = name
				h.mu.Unlock()
				<-held.Done()
				h.mu.Lock()
				delete(h.by, u)
				h.mu.Unlock()
				release()
			}
		})
	}
}

func (h *holders) waitFor(what string, ok func(map[string]int) bool, timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := h.count()
		if ok(c) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not within %s; units per group: %v", what, timeout, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestApplyGroupSharesAndTakesOver: one process claims every unit; a
// second one joins and the units even out; the second dies without
// releasing anything (its connection closes) and the first takes its units
// back once the claims expire; a unit is never held twice.
func TestApplyGroupSharesAndTakesOver(t *testing.T) {
	n := testenv.NATS(t)
	const ttl = 2 * time.Second
	units := envelope.Units("db.c", 6)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &holders{t: t, by: map[string]string{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	ba := open(t, Config{URL: n.URL})
	ga, err := ba.JoinApplyGroup(ctx, len(units), ttl)
	if err != nil {
		t.Fatal(err)
	}
	h.apply(ctx, "a", ga, units, &wg)
	h.waitFor("a alone holds every unit", func(c map[string]int) bool { return c["a"] == 6 }, 10*time.Second)

	bb, err := Open(ctx, Config{URL: n.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithCancel(ctx)
	defer bcancel()
	gb, err := bb.JoinApplyGroup(bctx, len(units), ttl)
	if err != nil {
		t.Fatal(err)
	}
	h.apply(bctx, "b", gb, units, &wg)
	h.waitFor("a and b hold three units each", func(c map[string]int) bool { return c["a"] == 3 && c["b"] == 3 }, 15*time.Second)

	// b dies: its connection is gone first, so nothing it releases is
	// deleted and its member key stays until it expires.
	bb.Close()
	bcancel()
	start := time.Now()
	h.waitFor("a takes b's units over", func(c map[string]int) bool { return c["a"] == 6 }, 30*time.Second)
	if took := time.Since(start); took < ttl/2 {
		t.Errorf("a took b's live-looking claims after %s, before they could expire (TTL %s)", took, ttl)
	} else {
		t.Logf("a took b's units over %s after b died (TTL %s)", took.Round(time.Millisecond), ttl)
	}
}

// TestApplyGroupLeavesOnStop: a process that stops releases its claims and
// deletes its member key before its connection closes (Left), so the other
// takes its units at once, long before the TTL.
func TestApplyGroupLeavesOnStop(t *testing.T) {
	n := testenv.NATS(t)
	const ttl = 60 * time.Second
	units := envelope.Units("db.c", 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &holders{t: t, by: map[string]string{}}
	var wg, wgB sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	ga, err := open(t, Config{URL: n.URL}).JoinApplyGroup(ctx, len(units), ttl)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := Open(ctx, Config{URL: n.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithCancel(ctx)
	gb, err := bb.JoinApplyGroup(bctx, len(units), ttl)
	if err != nil {
		t.Fatal(err)
	}
	h.apply(ctx, "a", ga, units, &wg)
	h.apply(bctx, "b", gb, units, &wgB)
	h.waitFor("a and b hold two units each", func(c map[string]int) bool { return c["a"] == 2 && c["b"] == 2 }, 15*time.Second)

	// b stops as a process does: its units end and release their claims,
	// then it leaves the group, then its connection closes.
	bcancel()
	wgB.Wait()
	<-gb.Left()
	bb.Close()
	start := time.Now()
	h.waitFor("a takes b's units", func(c map[string]int) bool { return c["a"] == 4 }, 10*time.Second)
	t.Logf("a took b's units %s after b stopped (TTL %s)", time.Since(start).Round(time.Millisecond), ttl)
}

// TestApplyGroupTakesOverDeadLocalProcess: claims and the member key of a
// process that died on this host are taken over at once, not after the
// TTL.
func TestApplyGroupTakesOverDeadLocalProcess(t *testing.T) {
	const ttl = 60 * time.Second
	units := []string{"db.c$p0of2", "db.c$p1of2"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, kv, host, pid := deadClaimFixture(ctx, t, ttl)
	val := func(unit string) []byte {
		data, _ := json.Marshal(claimValue{Holder: "dead", Host: host, PID: pid, PIDSpace: pidSpace(), Unit: unit})
		return data
	}
	if _, err := kv.Put(ctx, memberPrefix+"dead", val("")); err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		if _, err := kv.Create(ctx, claimKey(u), val(u)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	start := time.Now()
	h := joinAndApply(ctx, t, b, units, ttl, &wg)
	h.waitFor("the dead process's units are taken over", func(c map[string]int) bool { return c["a"] == 2 }, 10*time.Second)
	t.Logf("taken over after %s (TTL %s)", time.Since(start).Round(time.Millisecond), ttl)
}

// TestApplyGroupWaitsForDeadPIDOfAnotherNamespace: a claim naming this
// host and a PID that no process here has is taken over at once only when
// it was written in this PID namespace, on a host of this name. Written in
// another namespace (a container sharing the host's name, another machine
// of the same name), without one (an older version), or on a host of
// another name with this namespace's identity (a cloned machine), its PID
// says nothing here: the holder may live, and the claim waits for its TTL.
func TestApplyGroupWaitsForDeadPIDOfAnotherNamespace(t *testing.T) {
	if pidSpace() == "" {
		t.Fatal("no PID namespace identity on this Linux machine (/proc/sys/kernel/random/boot_id, /proc/self/ns/pid)")
	}
	const ttl = 60 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, kv, host, pid := deadClaimFixture(ctx, t, ttl)
	// Four units: one left by a dead process of this host and namespace
	// (the control, taken at once), one claimed from another namespace,
	// one without a namespace, one from another host of this namespace (a
	// cloned machine keeps its boot ID).
	units := envelope.Units("db.c", 4)
	left := []claimValue{
		{Host: host, PIDSpace: pidSpace()},
		{Host: host, PIDSpace: "another-boot/pid:[4026531836]"},
		{Host: host},
		{Host: "another-" + host, PIDSpace: pidSpace()},
	}
	for i, u := range units {
		v := left[i]
		v.Holder, v.PID, v.Unit = fmt.Sprintf("dead on %s in %q", v.Host, v.PIDSpace), pid, u
		data, _ := json.Marshal(v)
		if _, err := kv.Create(ctx, claimKey(u), data); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	h := joinAndApply(ctx, t, b, units, ttl, &wg)
	h.waitFor("the unit left in this namespace is taken over", func(c map[string]int) bool { return c["a"] >= 1 }, 10*time.Second)
	// Every unit was tried at once; give the others' first try time to
	// land too.
	time.Sleep(time.Second)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.by) != 1 || h.by[units[0]] != "a" {
		t.Fatalf("units held: %v, want only %s (the others' holders may live)", h.by, units[0])
	}
}

// joinAndApply joins b's apply group for units and applies them as "a"
// (holders.apply) until ctx ends; wg waits for its goroutines.
func joinAndApply(ctx context.Context, t *testing.T, b *Buffer, units []string, ttl time.Duration, wg *sync.WaitGroup) *holders {
	t.Helper()
	g, err := b.JoinApplyGroup(ctx, len(units), ttl)
	if err != nil {
		t.Fatal(err)
	}
	h := &holders{t: t, by: map[string]string{}}
	h.apply(ctx, "a", g, units, wg)
	return h
}

// deadClaimFixture opens a buffer on a NATS server of its own with the
// claim bucket of ttl, and returns this host's name and the PID of a
// process that ran here and is gone.
func deadClaimFixture(ctx context.Context, t *testing.T, ttl time.Duration) (*Buffer, jetstream.KeyValue, string, int) {
	t.Helper()
	b := open(t, Config{URL: testenv.NATS(t).URL})
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	kv, err := b.claimBucket(ctx, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return b, kv, host, dead.Process.Pid
}
