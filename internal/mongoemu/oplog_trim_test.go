package mongoemu

import (
	"runtime"
	"testing"
	"weak"
)

// TestOplogTrimReleasesEntries appends far more than a byte-bounded oplog
// holds and checks its invariants after every append: the retained bytes
// stay within the bound, the backing array stays within a constant factor
// of the retained entries (the discarded prefix is dropped, not kept), and
// discarded entries are garbage: once collected they are gone.
func TestOplogTrimReleasesEntries(t *testing.T) {
	const maxBytes = 1 << 20
	o := newOplog(0, maxBytes)
	doc := make([]byte, 200)
	var early []weak.Pointer[entry]
	var newest *entry
	for i := range 50_000 {
		e := &entry{op: opInsert, db: "db", coll: "c", key: "k", doc: doc}
		if i < 100 {
			early = append(early, weak.Make(e))
		}
		o.append([]*entry{e}, false)
		newest = e
		live := len(o.entries) - o.head
		if o.bytes > maxBytes {
			t.Fatalf("append %d: %d bytes retained, over the bound of %d", i, o.bytes, maxBytes)
		}
		if c := cap(o.entries); c > 4*(live+compactMin) {
			t.Fatalf("append %d: array capacity %d for %d retained entries", i, c, live)
		}
		for _, p := range o.entries[:o.head] {
			if p != nil {
				t.Fatalf("append %d: a discarded slot still references an entry", i)
			}
		}
	}
	if o.discarded < 40_000 {
		t.Fatalf("%d entries discarded, want most of the 50,000", o.discarded)
	}
	runtime.GC()
	for i, p := range early {
		if p.Value() != nil {
			t.Fatalf("discarded entry %d is still reachable", i)
		}
	}
	if es, _, _, lost := o.read(newest.token(), 0); lost || len(es) != 0 {
		t.Fatalf("read after the newest entry: %d entries, lost %v", len(es), lost)
	}
}
