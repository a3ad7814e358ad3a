package envelope

import (
	"encoding/binary"
	"math"
	"strconv"
	"testing"
)

func TestPartitionUnitsAndSubjects(t *testing.T) {
	p := Partition{Index: 3, Count: 8}
	if got := p.Unit("vuln.advisories"); got != "vuln.advisories$p3of8" {
		t.Errorf("Unit = %q", got)
	}
	if got := PartitionSubject("replicator", "vuln.advisories", p); got != "replicator.vuln.advisories.~p3of8" {
		t.Errorf("PartitionSubject = %q", got)
	}
	one := Partition{Index: 0, Count: 1}
	if one.Unit("a.b") != "a.b" || PartitionSubject("r", "a.b", one) != Subject("r", "a.b") {
		t.Errorf("an unpartitioned collection must keep its namespace and subject")
	}
	for _, unit := range []string{"a.b", "a.b$p0of2", "a.b$p7of8", "a.b$p8of8", "a.b$pxof2", "a.b$p01of2", "a.b$p0of1", "$p0of2", "a$b.c$p1of3"} {
		ns, part := ParseUnit(unit)
		if back := part.Unit(ns); back != unit && part.Partitioned() {
			t.Errorf("ParseUnit(%q) = %q, %+v: Unit gives %q", unit, ns, part, back)
		}
		if !part.Partitioned() && ns != unit {
			t.Errorf("ParseUnit(%q) = %q: an invalid suffix must stay part of the name", unit, ns)
		}
	}
	if ns, part := ParseUnit("a$b.c$p1of3"); ns != "a$b.c" || part != (Partition{1, 3}) {
		t.Errorf("ParseUnit = %q %+v", ns, part)
	}
	if _, part := ParseUnit("a.b$p8of8"); part.Partitioned() {
		t.Errorf("index 8 of 8 must not parse")
	}
	// A partition's subject never equals a namespace's subject or another
	// partition's.
	seen := map[string]string{}
	for _, ns := range append(trickyNamespaces, "a.b.~p0of2", "a.b.p0of2", "a.b~p0of2") {
		for _, n := range []int{1, 2, 3} {
			for _, part := range Partitions(n) {
				s := PartitionSubject("r", ns, part)
				key := part.Unit(ns)
				if prev, ok := seen[s]; ok && prev != key {
					t.Errorf("subject %q of %q equals that of %q", s, key, prev)
				}
				seen[s] = key
			}
		}
	}
}

func TestPartitionOf(t *testing.T) {
	le32 := func(v int32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, uint32(v)); return b }
	le64 := func(v int64) []byte { b := make([]byte, 8); binary.LittleEndian.PutUint64(b, uint64(v)); return b }
	f64 := func(v float64) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, math.Float64bits(v))
		return b
	}
	for _, v := range []int64{0, 1, -1, 42, 1 << 40} {
		i64 := PartitionOf(bsonInt64, le64(v), 16)
		if d := PartitionOf(bsonDouble, f64(float64(v)), 16); d != i64 {
			t.Errorf("double %d in partition %d, int64 in %d", v, d, i64)
		}
		if v == int64(int32(v)) {
			if i := PartitionOf(bsonInt32, le32(int32(v)), 16); i != i64 {
				t.Errorf("int32 %d in partition %d, int64 in %d", v, i, i64)
			}
		}
	}
	// The hash is part of the wire contract: these values must not change
	// between versions (a changed hash moves documents between partitions
	// with messages still buffered).
	str := func(s string) []byte { b := le32(int32(len(s) + 1)); return append(append(b, s...), 0) }
	want := map[string]int{"a": -1, "b": -1, "advisory-1": -1, "advisory-2": -1}
	for s := range want {
		want[s] = PartitionOf(0x02, str(s), 1000)
	}
	golden := map[string]int{"a": 254, "b": 909, "advisory-1": 189, "advisory-2": 534} // FNV-1a 64 of type byte + BSON string, mod 1000
	for s, w := range golden {
		if want[s] != w {
			t.Errorf("PartitionOf(string %q, 1000) = %d, want %d", s, want[s], w)
		}
	}
	// Spread: 100,000 keys over 8 partitions, each within 5% of the mean.
	counts := make([]int, 8)
	for i := range 100000 {
		counts[PartitionOf(0x02, str("doc-"+strconv.Itoa(i)), 8)]++
	}
	for p, n := range counts {
		if n < 11875 || n > 13125 {
			t.Errorf("partition %d holds %d of 100,000 keys: %v", p, n, counts)
		}
	}
	if PartitionOf(0x02, str("x"), 1) != 0 || PartitionOf(0x02, str("x"), 0) != 0 {
		t.Errorf("one partition must be partition 0")
	}
}
