package mongoemu

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Wire protocol opcodes.
const (
	opReply      = 1
	opQuery      = 2004
	opCompressed = 2012
	opMsg        = 2013
)

// OP_MSG flag bits.
const (
	flagChecksumPresent = 1 << 0
	flagMoreToCome      = 1 << 1
	flagExhaustAllowed  = 1 << 16
)

const maxMessageSize = 48_000_000

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// message is one decoded client request.
type message struct {
	requestID int32
	opCode    int32
	flags     uint32
	// body is the command document. For OP_MSG, kind-1 document sequences
	// are folded into it as arrays, so command handlers see one document.
	body *Doc
	// legacy is true for OP_QUERY requests (answered with OP_REPLY).
	legacy bool
}

func readMessage(r *bufio.Reader) (*message, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	length := int32(binary.LittleEndian.Uint32(hdr[0:]))
	if length < 16 || length > maxMessageSize {
		return nil, fmt.Errorf("invalid message length %d", length)
	}
	buf := make([]byte, length-16)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	m := &message{
		requestID: int32(binary.LittleEndian.Uint32(hdr[4:])),
		opCode:    int32(binary.LittleEndian.Uint32(hdr[12:])),
	}
	switch m.opCode {
	case opMsg:
		return m, m.parseMsg(hdr[:], buf)
	case opQuery:
		return m, m.parseQuery(buf)
	}
	return nil, fmt.Errorf("unsupported opcode %d", m.opCode)
}

func (m *message) parseMsg(hdr, buf []byte) error {
	if len(buf) < 4 {
		return fmt.Errorf("short OP_MSG")
	}
	m.flags = binary.LittleEndian.Uint32(buf)
	if m.flags&flagChecksumPresent != 0 {
		if len(buf) < 8 {
			return fmt.Errorf("short OP_MSG checksum")
		}
		want := binary.LittleEndian.Uint32(buf[len(buf)-4:])
		h := crc32.New(crcTable)
		h.Write(hdr)
		h.Write(buf[:len(buf)-4])
		if h.Sum32() != want {
			return fmt.Errorf("OP_MSG checksum mismatch")
		}
		buf = buf[:len(buf)-4]
	}
	rem := buf[4:]
	type seq struct {
		id   string
		docs []Val
	}
	var seqs []seq
	for len(rem) > 0 {
		kind := rem[0]
		rem = rem[1:]
		switch kind {
		case 0:
			doc, r2, ok := bsoncore.ReadDocument(rem)
			if !ok {
				return fmt.Errorf("invalid OP_MSG body")
			}
			d, err := parseDoc(doc)
			if err != nil {
				return err
			}
			m.body = d
			rem = r2
		case 1:
			if len(rem) < 4 {
				return fmt.Errorf("invalid OP_MSG sequence")
			}
			size := int(binary.LittleEndian.Uint32(rem))
			if size > len(rem) || size < 5 {
				return fmt.Errorf("invalid OP_MSG sequence size")
			}
			sec := rem[4:size]
			rem = rem[size:]
			i := 0
			for i < len(sec) && sec[i] != 0 {
				i++
			}
			if i >= len(sec) {
				return fmt.Errorf("invalid OP_MSG sequence identifier")
			}
			s := seq{id: string(sec[:i])}
			sec = sec[i+1:]
			for len(sec) > 0 {
				doc, r2, ok := bsoncore.ReadDocument(sec)
				if !ok {
					return fmt.Errorf("invalid document in OP_MSG sequence")
				}
				s.docs = append(s.docs, vRawDoc(doc))
				sec = r2
			}
			seqs = append(seqs, s)
		default:
			return fmt.Errorf("unknown OP_MSG section kind %d", kind)
		}
	}
	if m.body == nil {
		return fmt.Errorf("OP_MSG without body")
	}
	for _, s := range seqs {
		m.body.Set(s.id, vArr(s.docs))
	}
	return nil
}

func (m *message) parseQuery(buf []byte) error {
	m.legacy = true
	if len(buf) < 4 {
		return fmt.Errorf("short OP_QUERY")
	}
	rem := buf[4:]
	i := 0
	for i < len(rem) && rem[i] != 0 {
		i++
	}
	if i >= len(rem) {
		return fmt.Errorf("invalid OP_QUERY collection name")
	}
	rem = rem[i+1:]
	if len(rem) < 8 {
		return fmt.Errorf("short OP_QUERY")
	}
	rem = rem[8:]
	doc, _, ok := bsoncore.ReadDocument(rem)
	if !ok {
		return fmt.Errorf("invalid OP_QUERY document")
	}
	d, err := parseDoc(doc)
	if err != nil {
		return err
	}
	// Legacy wrapping: {$query: {...}, $readPreference: ...}.
	if q := d.Get("$query"); q.T == tDoc {
		d = q.doc()
	}
	m.body = d
	return nil
}

// appendReply encodes a reply to m holding body.
func appendReply(dst []byte, m *message, requestID int32, body *Doc) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, 16)...)
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(requestID))
	binary.LittleEndian.PutUint32(dst[start+8:], uint32(m.requestID))
	if m.legacy {
		binary.LittleEndian.PutUint32(dst[start+12:], opReply)
		dst = binary.LittleEndian.AppendUint32(dst, 8) // AwaitCapable
		dst = binary.LittleEndian.AppendUint64(dst, 0)
		dst = binary.LittleEndian.AppendUint32(dst, 0)
		dst = binary.LittleEndian.AppendUint32(dst, 1)
	} else {
		binary.LittleEndian.PutUint32(dst[start+12:], opMsg)
		dst = binary.LittleEndian.AppendUint32(dst, 0)
		dst = append(dst, 0)
	}
	dst = body.AppendTo(dst)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}
