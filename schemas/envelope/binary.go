package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/mongopg/replicator/transform"
)

// The binary form (format version 2, schemas/envelope.md). Every integer
// is an unsigned LEB128 varint unless said otherwise; a string is its
// length and then its bytes. After the format byte:
//
//	kind         1 byte (kindCodes)
//	collection   string
//	cluster_time t, i
//	ord          integer (0: none)
//	wall_time    1 byte 0 (none) or 1, then seconds since 1970 (zigzag
//	             varint) and nanoseconds
//	token, op, document_key   strings
//	mutations    count, then each: table (string), op, key (values),
//	             values (values), children count, then each child: table
//	             (string) and rows (count+1, 0 for none), each row values
//	dead_letter  1 byte 0 (none) or 1, then error, path, raw_event strings
//
// A list of values is its count+1 (0: none), then per value its length+1
// (0: SQL NULL) and the text. Nothing follows the last field.

// binaryFormat is the first byte of a version 2 envelope (Version). The
// JSON envelopes of builds before the first release started with '{'.
const binaryFormat = 0x02

var kindCodes = map[Kind]byte{KindChange: 1, KindHeartbeat: 2, KindDeadLetter: 3, KindControl: 4}

var codeKinds = [...]Kind{1: KindChange, 2: KindHeartbeat, 3: KindDeadLetter, 4: KindControl}

// IsBinary reports whether b starts as an envelope of this format version
// (binary, version 2) does; anything else does not decode.
func IsBinary(b []byte) bool { return len(b) > 0 && b[0] == binaryFormat }

// AppendEncode appends the wire form of e (binary, format Version) to dst
// and returns the extended slice, stamping e.V.
func AppendEncode(dst []byte, e *Envelope) ([]byte, error) {
	code, ok := kindCodes[e.Kind]
	if !ok {
		return dst, fmt.Errorf("encode envelope: unknown kind %q", e.Kind)
	}
	e.V = Version
	dst = append(dst, binaryFormat, code)
	dst = appendStr(dst, e.Collection)
	dst = binary.AppendUvarint(dst, uint64(e.ClusterTime.T))
	dst = binary.AppendUvarint(dst, uint64(e.ClusterTime.I))
	dst = binary.AppendUvarint(dst, uint64(e.Ordinal))
	if e.WallTime.IsZero() {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = binary.AppendVarint(dst, e.WallTime.Unix())
		dst = binary.AppendUvarint(dst, uint64(e.WallTime.Nanosecond()))
	}
	dst = appendStr(dst, e.Token)
	dst = appendStr(dst, e.Operation)
	dst = appendStr(dst, e.DocumentKey)
	dst = binary.AppendUvarint(dst, uint64(len(e.Mutations)))
	for i := range e.Mutations {
		m := &e.Mutations[i]
		dst = appendStr(dst, m.Table)
		op := uint64(m.Op)
		if m.Identity != "" {
			op |= opIdentity
		}
		dst = binary.AppendUvarint(dst, op)
		dst = appendValueList(dst, m.Key)
		dst = appendValueList(dst, m.Values)
		if m.Identity != "" {
			dst = appendStr(dst, m.Identity)
		}
		dst = binary.AppendUvarint(dst, uint64(len(m.Children)))
		for j := range m.Children {
			ch := &m.Children[j]
			dst = appendStr(dst, ch.Table)
			if ch.Rows == nil {
				dst = append(dst, 0)
				continue
			}
			dst = binary.AppendUvarint(dst, uint64(len(ch.Rows))+1)
			for _, row := range ch.Rows {
				dst = appendValueList(dst, row)
			}
		}
	}
	if e.DeadLetter == nil {
		return append(dst, 0), nil
	}
	dst = append(dst, 1)
	dst = appendStr(dst, e.DeadLetter.Error)
	dst = appendStr(dst, e.DeadLetter.Path)
	dst = binary.AppendUvarint(dst, uint64(len(e.DeadLetter.RawEvent)))
	return append(dst, e.DeadLetter.RawEvent...), nil
}

// opIdentity marks, in a mutation's op, that its identity
// (transform.Mutation.Identity) follows its values.
const opIdentity = 0x80

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendValueList writes nil as 0, else count+1 and each value: 0 for
// NULL, else length+1 and the text. A NULL carries no text.
func appendValueList(dst []byte, vs []transform.Value) []byte {
	if vs == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(vs))+1)
	for i := range vs {
		if !vs[i].Valid {
			dst = append(dst, 0)
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(len(vs[i].Text))+1)
		dst = append(dst, vs[i].Text...)
	}
	return dst
}

// DecodeShared decodes a binary envelope and checks it (check). Its
// strings share b's memory, so b must not change while the result is in
// use (Decode copies instead). Anything else fails: another format
// version, the JSON form of builds before the first release, a message
// cut short or with bytes after it, an invalid envelope.
func DecodeShared(b []byte) (*Envelope, error) {
	if !IsBinary(b) {
		if len(b) == 0 {
			return nil, errors.New("decode envelope: empty message")
		}
		return nil, fmt.Errorf("decode envelope: unsupported format (first byte %#02x; this build reads version %d only)", b[0], Version)
	}
	d := decoder{b: b, i: 1}
	e, err := d.envelope()
	if err != nil {
		return nil, fmt.Errorf("decode envelope: %w (at byte %d of %d)", err, d.i, len(b))
	}
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	return e, nil
}

var (
	errShort    = errors.New("truncated")
	errOverflow = errors.New("integer out of range")
)

type decoder struct {
	b     []byte
	i     int
	arena []transform.Value // values of the whole envelope, handed out in runs
	// counting makes a pass only walk the mutations and add the number of
	// their values to counted, which then sizes arena for the real pass.
	counting bool
	counted  int
}

func (d *decoder) envelope() (*Envelope, error) {
	code, err := d.byte()
	if err != nil {
		return nil, err
	}
	if int(code) >= len(codeKinds) || codeKinds[code] == "" {
		return nil, fmt.Errorf("unknown kind code %d", code)
	}
	e := &Envelope{V: Version, Kind: codeKinds[code]}
	if e.Collection, err = d.str(); err != nil {
		return nil, err
	}
	if e.ClusterTime.T, err = d.u32(); err != nil {
		return nil, err
	}
	if e.ClusterTime.I, err = d.u32(); err != nil {
		return nil, err
	}
	if e.Ordinal, err = d.u32(); err != nil {
		return nil, err
	}
	if e.WallTime, err = d.wallTime(); err != nil {
		return nil, err
	}
	if e.Token, err = d.str(); err != nil {
		return nil, err
	}
	if e.Operation, err = d.str(); err != nil {
		return nil, err
	}
	if e.DocumentKey, err = d.str(); err != nil {
		return nil, err
	}
	n, err := d.count(1)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		// One array holds every value of the envelope: a first pass over
		// the mutations counts them.
		start := d.i
		d.counting = true
		var scratch transform.Mutation
		for range n {
			if err := d.mutation(&scratch); err != nil {
				return nil, err
			}
		}
		d.counting, d.i = false, start
		d.arena = make([]transform.Value, 0, d.counted)
		e.Mutations = make([]transform.Mutation, n)
		for k := range e.Mutations {
			if err := d.mutation(&e.Mutations[k]); err != nil {
				return nil, err
			}
		}
	}
	has, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch has {
	case 0:
	case 1:
		dl := &DeadLetter{}
		if dl.Error, err = d.str(); err != nil {
			return nil, err
		}
		if dl.Path, err = d.str(); err != nil {
			return nil, err
		}
		raw, err := d.str()
		if err != nil {
			return nil, err
		}
		if raw != "" {
			dl.RawEvent = unsafe.Slice(unsafe.StringData(raw), len(raw))
		}
		e.DeadLetter = dl
	default:
		return nil, fmt.Errorf("dead-letter flag %d", has)
	}
	if d.i != len(d.b) {
		return nil, fmt.Errorf("%d bytes after the envelope", len(d.b)-d.i)
	}
	return e, nil
}

func (d *decoder) mutation(m *transform.Mutation) error {
	var err error
	if m.Table, err = d.str(); err != nil {
		return err
	}
	op, err := d.uvarint()
	if err != nil {
		return err
	}
	if op > math.MaxUint8 {
		return errOverflow
	}
	m.Op = transform.Op(op &^ opIdentity)
	if m.Key, err = d.values(); err != nil {
		return err
	}
	if m.Values, err = d.values(); err != nil {
		return err
	}
	if op&opIdentity != 0 {
		if m.Identity, err = d.str(); err != nil {
			return err
		}
	}
	n, err := d.count(2)
	if err != nil || n == 0 {
		return err
	}
	var scratch transform.ChildRows // the counting pass keeps nothing
	if !d.counting {
		m.Children = make([]transform.ChildRows, n)
	}
	for k := range n {
		ch := &scratch
		if !d.counting {
			ch = &m.Children[k]
		}
		if ch.Table, err = d.str(); err != nil {
			return err
		}
		rows, err := d.count(1)
		if err != nil {
			return err
		}
		if rows == 0 {
			continue
		}
		if !d.counting {
			ch.Rows = make([][]transform.Value, rows-1)
		}
		for r := range rows - 1 {
			vs, err := d.values()
			if err != nil {
				return err
			}
			if !d.counting {
				ch.Rows[r] = vs
			}
		}
	}
	return nil
}

// values reads a list of values (nil for 0).
func (d *decoder) values() ([]transform.Value, error) {
	n, err := d.count(1)
	if err != nil || n == 0 {
		return nil, err
	}
	n--
	if d.counting {
		d.counted += n
		for range n {
			if l, err := d.uvarint(); err != nil {
				return nil, err
			} else if l > 0 {
				if _, err := d.bytes(l - 1); err != nil {
					return nil, err
				}
			}
		}
		return nil, nil
	}
	if cap(d.arena)-len(d.arena) < n {
		d.arena = make([]transform.Value, 0, max(n, 2*cap(d.arena)))
	}
	vs := d.arena[len(d.arena) : len(d.arena)+n : len(d.arena)+n]
	d.arena = d.arena[:len(d.arena)+n]
	for k := range vs {
		l, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		if l == 0 {
			continue // NULL
		}
		s, err := d.bytes(l - 1)
		if err != nil {
			return nil, err
		}
		vs[k] = transform.Value{Text: s, Valid: true}
	}
	return vs, nil
}

func (d *decoder) wallTime() (time.Time, error) {
	has, err := d.byte()
	if err != nil || has == 0 {
		return time.Time{}, err
	}
	if has != 1 {
		return time.Time{}, fmt.Errorf("wall-time flag %d", has)
	}
	sec, n := binary.Varint(d.b[d.i:])
	if n <= 0 {
		return time.Time{}, errShort
	}
	d.i += n
	nsec, err := d.uvarint()
	if err != nil {
		return time.Time{}, err
	}
	if nsec >= 1e9 {
		return time.Time{}, errOverflow
	}
	return time.Unix(sec, int64(nsec)).UTC(), nil
}

func (d *decoder) byte() (byte, error) {
	if d.i >= len(d.b) {
		return 0, errShort
	}
	d.i++
	return d.b[d.i-1], nil
}

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		if n < 0 {
			return 0, errOverflow
		}
		return 0, errShort
	}
	d.i += n
	return v, nil
}

func (d *decoder) u32() (uint32, error) {
	v, err := d.uvarint()
	if err == nil && v > math.MaxUint32 {
		err = errOverflow
	}
	return uint32(v), err
}

// count reads a count of elements that each take at least size bytes, so
// a corrupt count cannot make the decoder allocate more than the message
// could hold.
func (d *decoder) count(size int) (int, error) {
	v, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if v > uint64(len(d.b)-d.i)/uint64(size)+1 {
		return 0, errShort
	}
	return int(v), nil
}

func (d *decoder) str() (string, error) {
	l, err := d.uvarint()
	if err != nil {
		return "", err
	}
	return d.bytes(l)
}

// bytes returns the next l bytes as a string sharing the message's memory.
func (d *decoder) bytes(l uint64) (string, error) {
	if l > uint64(len(d.b)-d.i) {
		return "", errShort
	}
	if l == 0 {
		return "", nil
	}
	s := unsafe.String(&d.b[d.i], int(l))
	d.i += int(l)
	return s, nil
}
