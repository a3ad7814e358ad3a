package transform

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// TestScans checks the eight-bytes-at-a-time scanners against byte loops,
// for every byte value at every position of a word and its neighbour (a
// special byte can make the word test mark the byte above it too).
func TestScans(t *testing.T) {
	naiveText := func(b []byte) int {
		for i, c := range b {
			if c == 0 || c >= utf8.RuneSelf {
				return i
			}
		}
		return len(b)
	}
	naiveJSON := func(b []byte) int {
		for i, c := range b {
			if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
				return i
			}
		}
		return len(b)
	}
	check := func(b []byte) {
		t.Helper()
		if got, want := indexNUL(b), bytes.IndexByte(b, 0); got != want {
			t.Fatalf("indexNUL(%q) = %d, want %d", b, got, want)
		}
		if got, want := textPlain(b), naiveText(b); got != want {
			t.Fatalf("textPlain(%q) = %d, want %d", b, got, want)
		}
		if got, want := jsonPlain(b), naiveJSON(b); got != want {
			t.Fatalf("jsonPlain(%q) = %d, want %d", b, got, want)
		}
	}
	for n := 0; n <= 20; n++ {
		for p := 0; p < n; p++ {
			for c := 0; c < 256; c++ {
				b := bytes.Repeat([]byte("a"), n)
				b[p] = byte(c)
				check(b)
			}
		}
	}
	b := bytes.Repeat([]byte("a"), 17)
	for p := 0; p < 16; p++ {
		for c := 0; c < 256; c++ {
			for d := 0; d < 256; d++ {
				b[p], b[p+1] = byte(c), byte(d)
				check(b)
			}
		}
		b[p], b[p+1] = 'a', 'a'
	}
}

// TestValidTextNULAfterNonASCII: a NUL byte is refused wherever it sits in
// a text value, also after a non-ASCII character (PostgreSQL cannot store
// it, invariant 7); the scan for plain ASCII stops at the first non-ASCII
// byte, so the rest needs its own look.
func TestValidTextNULAfterNonASCII(t *testing.T) {
	for _, s := range []string{"a\x00b", "é\x00x", "ascii then é then \x00", "\x00", "日本\x00"} {
		if err := validText([]byte(s)); err != errNUL {
			t.Errorf("validText(%q) = %v, want %v", s, err, errNUL)
		}
		if _, _, err := convert(colType{kind: kText}, rawOf(t, s), uuidStandard); err == nil {
			t.Errorf("text column accepts %q", s)
		}
	}
	for _, s := range []string{"", "plain", "é", "日本語 and ascii"} {
		if err := validText([]byte(s)); err != nil {
			t.Errorf("validText(%q) = %v, want nil", s, err)
		}
	}
}
