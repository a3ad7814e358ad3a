package transform

import (
	"fmt"
	"strconv"
	"time"
)

// PostgreSQL's timestamp range in Unix milliseconds: 4714-11-24 00:00:00
// BC (inclusive) to 294277-01-01 00:00:00 (exclusive); MIN_TIMESTAMP and
// END_TIMESTAMP of timestamp.h moved from the 2000 to the 1970 epoch. The
// date type reaches further, but BSON dates mapped to date use this range
// too.
const (
	minTimestampMs = -210866803200000
	endTimestampMs = 9224318016000000
)

// appendTime writes dates as ISO 8601 with exactly three fractional digits;
// a year before 1 is written with PostgreSQL's BC suffix (year 0 is 1 BC).
func appendTime(b []byte, t colType, v rawValue) ([]byte, error) {
	var ms int64
	switch v.typ {
	case bsonDateTime:
		ms = v.int64()
	case bsonTimestamp:
		if t.kind == kDate {
			return nil, errType{v.typ, t}
		}
		sec, _ := v.timestamp()
		ms = int64(sec) * 1000
	default:
		return nil, errType{v.typ, t}
	}
	if ms < minTimestampMs || ms >= endTimestampMs {
		return nil, fmt.Errorf("date %d ms since 1970 %w for %s", ms, errOutOfRange, t)
	}
	tm := time.UnixMilli(ms).UTC()
	year, month, day := tm.Date()
	bc := false
	if year < 1 {
		year, bc = 1-year, true
	}
	b = appendYMD(b, year, month, day)
	if t.kind == kDate {
		if ms%86400000 != 0 {
			return nil, fmt.Errorf("date %s has a time of day; a date column would drop it", tm.Format("15:04:05.000"))
		}
	} else {
		msec := int(ms % 1000)
		if msec < 0 {
			msec += 1000
		}
		b = append(b, 'T')
		b = appendHMS(b, tm)
		b = append(b, '.', byte('0'+msec/100), byte('0'+msec/10%10), byte('0'+msec%10))
		if t.kind == kTimestamptz {
			b = append(b, 'Z')
		}
	}
	if bc {
		b = append(b, " BC"...)
	}
	return b, nil
}

// appendYMD appends year-month-day, the year (not negative) with at least
// four digits.
func appendYMD(b []byte, year int, month time.Month, day int) []byte {
	if year < 1000 {
		b = append(b, '0', byte('0'+year/100), byte('0'+year/10%10), byte('0'+year%10))
	} else {
		b = strconv.AppendInt(b, int64(year), 10)
	}
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	return append2(b, day)
}

// appendHMS appends t's hour:minute:second.
func appendHMS(b []byte, t time.Time) []byte {
	h, mi, sec := t.Clock()
	b = append2(b, h)
	b = append(b, ':')
	b = append2(b, mi)
	b = append(b, ':')
	return append2(b, sec)
}

// append2 appends n (0–99) as two digits.
func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}
