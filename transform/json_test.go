package transform

import (
	"testing"
	"time"
)

// TestAppendJSONDate: the hand-written layout agrees with the time
// package's for the years JSON dates are written as text.
func TestAppendJSONDate(t *testing.T) {
	first := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	last := time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()
	ms := []int64{first, first + 1, first + 10, first + 100, first + 120, last, last - 9, last - 99}
	for i, step := int64(0), (last-first)/5000; i < 5000; i++ {
		ms = append(ms, first+i*step+i%1000)
	}
	for _, m := range ms {
		tm := time.UnixMilli(m).UTC()
		want := tm.Format("2006-01-02T15:04:05.999Z07:00")
		if got := string(appendJSONDate(nil, tm)); got != want {
			t.Fatalf("%d ms: got %s, want %s", m, got, want)
		}
	}
}
