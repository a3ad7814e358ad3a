package transform

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// The hot loops over BSON keys and strings test eight bytes at a time
// (SWAR: SIMD within a register). lessThan sets the top bit of every byte
// of w below n: exactly for the first such byte; a later byte may be
// marked spuriously (a borrow runs up from a byte below n), so callers
// only ever take the lowest mark.
const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// lessThan marks the bytes of w below n (n ≤ 0x80); see above.
func lessThan(w uint64, n byte) uint64 { return (w - lowBits*uint64(n)) &^ w & highBits }

// firstMarked is the index of the lowest byte m marks.
func firstMarked(m uint64) int { return bits.TrailingZeros64(m) / 8 }

// indexNUL returns the index of the first NUL byte of b, or -1.
func indexNUL(b []byte) int {
	i := 0
	for ; len(b)-i >= 8; i += 8 {
		if m := lessThan(binary.LittleEndian.Uint64(b[i:i+8]), 1); m != 0 {
			return i + firstMarked(m)
		}
	}
	for ; i < len(b); i++ {
		if b[i] == 0 {
			return i
		}
	}
	return -1
}

// textPlain returns the length of b's longest prefix of ASCII without NUL.
func textPlain(b []byte) int {
	i := 0
	for ; len(b)-i >= 8; i += 8 {
		w := binary.LittleEndian.Uint64(b[i : i+8])
		if m := (lessThan(w, 1) | w) & highBits; m != 0 {
			return i + firstMarked(m)
		}
	}
	for ; i < len(b) && b[i] != 0 && b[i] < utf8.RuneSelf; i++ {
	}
	return i
}

// jsonPlain returns the length of s's longest prefix that a JSON string
// holds as is: ASCII without control characters, '"' and '\\'.
func jsonPlain(s []byte) int {
	i := 0
	for ; len(s)-i >= 8; i += 8 {
		w := binary.LittleEndian.Uint64(s[i : i+8])
		m := lessThan(w, 0x20) | lessThan(w^(lowBits*'"'), 1) | lessThan(w^(lowBits*'\\'), 1) | w&highBits
		if m != 0 {
			return i + firstMarked(m)
		}
	}
	for i < len(s) && jsonSafe[s[i]] {
		i++
	}
	return i
}

// jsonSafe[c] reports whether a JSON string holds byte c as is.
var jsonSafe = func() (safe [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		safe[c] = c != '"' && c != '\\'
	}
	return safe
}()
