package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A batch message (format version 3, schemas/envelope.md) carries several
// consecutive change envelopes of one subject, each in its version 2 wire
// form, so that a backlog costs the buffer one message per batch instead of
// one per event:
//
//	format   1 byte 0x03
//	count    integer, at least 1
//	frames   count times: length (integer), then a version 2 change
//	         envelope of that length
//
// Nothing follows the last frame. A message is either a version 2 envelope
// or a batch; Frames reads both.

// BatchVersion is the format version of a batch message.
const BatchVersion = 3

const batchFormat = 0x03

// IsBatch reports whether b is a batch message.
func IsBatch(b []byte) bool { return len(b) > 0 && b[0] == batchFormat }

// AppendBatch appends the batch message holding frames, each the wire form
// of one change envelope (AppendEncode), in order, and returns the
// extended slice.
func AppendBatch(dst []byte, frames [][]byte) []byte {
	dst = append(dst, batchFormat)
	dst = binary.AppendUvarint(dst, uint64(len(frames)))
	for _, f := range frames {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// Frames returns the envelopes a message carries, sharing b's memory: a
// batch's frames in order, or b itself when b is not a batch (a version 2
// envelope, or anything else, which DecodeShared then refuses). A batch
// that is empty, cut short, has bytes after its last frame, or holds a
// frame that is not a version 2 change envelope is an error: its frames
// cannot be told apart, so the message as a whole does not decode.
func Frames(b []byte) ([][]byte, error) {
	if !IsBatch(b) {
		return [][]byte{b}, nil
	}
	d := decoder{b: b, i: 1}
	n, err := d.count(2) // a frame takes at least its length and one byte
	if err != nil {
		return nil, fmt.Errorf("decode batch: count: %w", err)
	}
	if n == 0 {
		return nil, errors.New("decode batch: no envelope in it")
	}
	frames := make([][]byte, 0, min(n, 256))
	for k := range n {
		l, err := d.uvarint()
		if err != nil {
			return nil, fmt.Errorf("decode batch: frame %d of %d: %w (at byte %d of %d)", k+1, n, err, d.i, len(b))
		}
		if l > uint64(len(b)-d.i) {
			return nil, fmt.Errorf("decode batch: frame %d of %d: %w (%d bytes at byte %d of %d)", k+1, n, errShort, l, d.i, len(b))
		}
		f := b[d.i : d.i+int(l) : d.i+int(l)]
		if len(f) < 2 || f[0] != binaryFormat || f[1] != kindCodes[KindChange] {
			return nil, fmt.Errorf("decode batch: frame %d of %d is not a version %d change envelope", k+1, n, Version)
		}
		frames = append(frames, f)
		d.i += int(l)
	}
	if d.i != len(b) {
		return nil, fmt.Errorf("decode batch: %d bytes after the last frame", len(b)-d.i)
	}
	return frames, nil
}

// DecodeAll decodes every envelope a message carries (Frames), copying:
// the result shares no memory with b. The first envelope that does not
// decode fails the whole call; the applier decodes frame by frame instead,
// so that one bad frame is one dead letter.
func DecodeAll(b []byte) ([]*Envelope, error) {
	b = append([]byte(nil), b...)
	frames, err := Frames(b)
	if err != nil {
		return nil, err
	}
	out := make([]*Envelope, len(frames))
	for k, f := range frames {
		e, err := DecodeShared(f)
		if err != nil {
			if len(frames) > 1 {
				return nil, fmt.Errorf("frame %d of %d: %w", k+1, len(frames), err)
			}
			return nil, err
		}
		out[k] = e
	}
	return out, nil
}
