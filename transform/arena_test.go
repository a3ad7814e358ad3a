package transform

import (
	"strings"
	"testing"
)

// TestArenaKeepsText: a string the arena returned never changes, whatever
// is converted after it: appends in place, appends that move the arena to
// a new array, NULLs and failed conversions.
func TestArenaKeepsText(t *testing.T) {
	a := newArena(8)
	text := colType{kind: kText}
	// Both fail after writing text past the arena's length.
	short, err := parseType("varchar(3)")
	if err != nil {
		t.Fatal(err)
	}
	texts, err := parseType("text[]")
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for i := 0; i < 50; i++ {
		s := strings.Repeat(string(rune('a'+i%26)), i%7)
		v, err := a.convert(text, rawOf(t, s), uuidStandard)
		if err != nil || !v.Valid {
			t.Fatalf("convert %q: %v, %v", s, v, err)
		}
		got, want = append(got, v.Text), append(want, s)
		if v, err := a.convert(text, rawOf(t, nil), uuidStandard); err != nil || v.Valid {
			t.Fatalf("null: %v, %v", v, err)
		}
		if _, err := a.convert(short, rawOf(t, "too long"), uuidStandard); err == nil {
			t.Fatal("varchar(3) took 8 characters")
		}
		if _, err := a.convert(texts, rawOf(t, []any{"x", []any{"nested"}}), uuidStandard); err == nil {
			t.Fatal("nested array accepted")
		}
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("value %d changed: %q, want %q", i, got[i], want[i])
		}
	}
}
