package envelope

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Partition is one of the subjects a collection's envelopes are split
// across: Index in [0, Count). A Count of 0 or 1 is the unpartitioned
// collection, whose one subject is Subject(prefix, namespace) as before
// partitions existed. Capture puts every change of one document on the
// partition of its _id (PartitionOf), so one subject, one consumer and one
// apply checkpoint keep each document's order (schemas/envelope.md,
// Partitions).
type Partition struct {
	Index, Count int
}

// Partitioned reports whether the collection has more than one partition.
func (p Partition) Partitioned() bool { return p.Count > 1 }

// Token is the subject token that follows the namespace's tokens: "~p" and
// the index, "of" and the count, as in "~p3of8". The namespace encoding
// never writes "~p" (after "~" it writes two upper-case hexadecimal
// digits), so a partition's subject never equals another namespace's or
// partition's. Empty when unpartitioned.
func (p Partition) Token() string {
	if !p.Partitioned() {
		return ""
	}
	return "~p" + strconv.Itoa(p.Index) + "of" + strconv.Itoa(p.Count)
}

// Unit names what one apply consumer applies: the namespace when
// unpartitioned, otherwise the namespace, "$" and the token's text without
// its "~" ("vuln.advisories$p3of8"). MongoDB forbids "$" in collection
// names, so a unit never equals a namespace. It keys the apply checkpoint
// (replicator.apply_checkpoints.collection), the durable consumer name and
// the apply metrics' collection label.
func (p Partition) Unit(namespace string) string {
	if !p.Partitioned() {
		return namespace
	}
	return namespace + "$" + p.Token()[1:]
}

// PartitionSubject is the subject of one partition of a namespace.
func PartitionSubject(prefix, namespace string, p Partition) string {
	if !p.Partitioned() {
		return Subject(prefix, namespace)
	}
	return Subject(prefix, namespace) + "." + p.Token()
}

// Partitions lists the n partitions of a collection ({0,1} alone for n ≤ 1).
func Partitions(n int) []Partition {
	if n <= 1 {
		return []Partition{{Index: 0, Count: 1}}
	}
	out := make([]Partition, n)
	for i := range out {
		out[i] = Partition{Index: i, Count: n}
	}
	return out
}

// ParseUnit splits a unit name into its namespace and partition; a name
// without a valid "$p<i>of<n>" suffix is an unpartitioned namespace.
func ParseUnit(unit string) (string, Partition) {
	if i := strings.LastIndexByte(unit, '$'); i >= 0 {
		if p, ok := ParseToken("~" + unit[i+1:]); ok {
			return unit[:i], p
		}
	}
	return unit, Partition{Index: 0, Count: 1}
}

// ParseToken reads a partition's subject token ("~p3of8", Token); ok is
// false for any other text, the unpartitioned collection's included.
func ParseToken(tok string) (p Partition, ok bool) {
	var idx, n int
	if _, err := fmt.Sscanf(tok, "~p%dof%d", &idx, &n); err != nil || n <= 1 || idx < 0 || idx >= n {
		return Partition{}, false
	}
	p = Partition{Index: idx, Count: n}
	return p, p.Token() == tok
}

// Units lists the apply units of a namespace with n partitions: the
// namespace alone for n ≤ 1, else each partition's Unit.
func Units(namespace string, n int) []string {
	ps := Partitions(n)
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Unit(namespace)
	}
	return out
}

// UnitSubject is the subject of a unit (ParseUnit, PartitionSubject).
func UnitSubject(prefix, unit string) string {
	ns, p := ParseUnit(unit)
	return PartitionSubject(prefix, ns, p)
}

// BSON type bytes PartitionOf reads numbers of.
const (
	bsonDouble = 0x01
	bsonInt32  = 0x10
	bsonInt64  = 0x12
)

// PartitionOf returns the partition, among n, of the document whose _id is
// the BSON value of type typ with the bytes value (as in the change event's
// documentKey). It is FNV-1a (64 bits) over the type byte and the value
// bytes, modulo n: stable across versions, processes and machines, since
// it is part of the wire contract. Numbers MongoDB holds equal as _id
// (int32 1, int64 1, double 1.0) hash alike, as int64; any other type
// hashes its bytes as stored, which is the same for every event of one
// document (_id never changes). Should two different _id values map to
// one row (a delete and re-insert under another type), the row versions
// order their writes across partitions.
func PartitionOf(typ byte, value []byte, n int) int {
	if n <= 1 {
		return 0
	}
	var buf [8]byte
	switch {
	case typ == bsonInt32 && len(value) == 4:
		binary.LittleEndian.PutUint64(buf[:], uint64(int64(int32(binary.LittleEndian.Uint32(value)))))
		typ, value = bsonInt64, buf[:]
	case typ == bsonDouble && len(value) == 8:
		f := math.Float64frombits(binary.LittleEndian.Uint64(value))
		if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
			binary.LittleEndian.PutUint64(buf[:], uint64(int64(f)))
			typ, value = bsonInt64, buf[:]
		}
	}
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	h = (h ^ uint64(typ)) * prime
	for _, c := range value {
		h = (h ^ uint64(c)) * prime
	}
	return int(h % uint64(n))
}
