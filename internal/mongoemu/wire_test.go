package mongoemu

import (
	"bufio"
	"encoding/binary"
	"hash/crc32"
	"net"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// rawMsg builds an OP_MSG with a body, optional document sequence and
// optional CRC-32C checksum.
func rawMsg(flags uint32, body []byte, seqID string, seq [][]byte) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[4:], 7)
	binary.LittleEndian.PutUint32(b[12:], opMsg)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = append(b, 0)
	b = append(b, body...)
	if seqID != "" {
		b = append(b, 1)
		start := len(b)
		b = append(b, 0, 0, 0, 0)
		b = append(b, seqID...)
		b = append(b, 0)
		for _, d := range seq {
			b = append(b, d...)
		}
		binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start))
	}
	size := len(b)
	if flags&flagChecksumPresent != 0 {
		size += 4
	}
	binary.LittleEndian.PutUint32(b, uint32(size))
	if flags&flagChecksumPresent != 0 {
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	}
	return b
}

func docBytes(elems ...[]byte) []byte { return bsoncore.BuildDocument(nil, elems...) }

func TestWireProtocol(t *testing.T) {
	s := New(Options{})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	roundTrip := func(t *testing.T, msg []byte) *Doc {
		t.Helper()
		if _, err := nc.Write(msg); err != nil {
			t.Fatal(err)
		}
		var hdr [16]byte
		if _, err := bufioReadFull(r, hdr[:]); err != nil {
			t.Fatal(err)
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		buf := make([]byte, n-16)
		if _, err := bufioReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		if op := binary.LittleEndian.Uint32(hdr[12:]); op != opMsg {
			t.Fatalf("opcode %d", op)
		}
		d, err := parseDoc(buf[5:])
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	insert := func(n int32) [][]byte {
		return [][]byte{docBytes(bsoncore.AppendInt32Element(nil, "_id", n))}
	}
	for _, tc := range []struct {
		name  string
		flags uint32
	}{{"plain", 0}, {"checksum", flagChecksumPresent}} {
		t.Run(tc.name, func(t *testing.T) {
			body := docBytes(bsoncore.AppendStringElement(nil, "insert", "c_"+tc.name), bsoncore.AppendStringElement(nil, "$db", "w"))
			reply := roundTrip(t, rawMsg(tc.flags, body, "documents", append(insert(1), insert(2)[0])))
			if n, _ := reply.Get("n").asInt64(); n != 2 || reply.Get("ok").truthy() != true {
				t.Fatalf("reply %s", shellString(vDoc(reply)))
			}
		})
	}
	t.Run("moreToCome gets no reply", func(t *testing.T) {
		body := docBytes(bsoncore.AppendStringElement(nil, "insert", "unack"), bsoncore.AppendStringElement(nil, "$db", "w"))
		if _, err := nc.Write(rawMsg(flagMoreToCome, body, "documents", insert(9))); err != nil {
			t.Fatal(err)
		}
		count := docBytes(bsoncore.AppendStringElement(nil, "count", "unack"), bsoncore.AppendStringElement(nil, "$db", "w"))
		reply := roundTrip(t, rawMsg(0, count, "", nil))
		if n, _ := reply.Get("n").asInt64(); n != 1 {
			t.Fatalf("reply %s", shellString(vDoc(reply)))
		}
	})
}

func bufioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
