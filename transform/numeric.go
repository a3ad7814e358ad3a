package transform

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// PostgreSQL numeric limits: digits before and after the decimal point.
const (
	numericMaxInt   = 131072
	numericMaxScale = 16383
)

// decimalNum is digits × 10^exp, digits without leading zeros ("0" for zero).
type decimalNum struct {
	neg    bool
	digits []byte
	exp    int
}

// appendNumeric writes an exact plain decimal (never exponent notation), so
// PostgreSQL keeps the source's scale: Decimal128 1.50 stays 1.50.
// Doubles use the shortest decimal that reads back as the same double.
// NaN → 'NaN'; ±Infinity → 'Infinity'/'-Infinity' (PostgreSQL 14+, only
// in unconstrained numeric). Negative zero becomes 0: numeric has no sign
// on zero. For numeric(p,s) a value that would be rounded or overflow is an
// error, not a silent change.
func appendNumeric(b []byte, t colType, v rawValue) ([]byte, error) {
	// digits holds the digits of every value but a wide Decimal128.
	var digits [40]byte
	var d decimalNum
	switch v.typ {
	case bsonInt32:
		d = intNum(digits[:0], int64(v.int32()))
	case bsonInt64:
		d = intNum(digits[:0], v.int64())
	case bsonDouble:
		f := v.double()
		switch {
		case math.IsNaN(f):
			return append(b, "NaN"...), nil
		case math.IsInf(f, 0):
			return appendInfinity(b, t, f < 0)
		}
		d = floatNum(digits[:0], f)
	case bsonDecimal:
		hi, lo := v.decimal()
		dec := bson.NewDecimal128(hi, lo)
		if dec.IsNaN() {
			return append(b, "NaN"...), nil
		}
		if inf := dec.IsInf(); inf != 0 {
			return appendInfinity(b, t, inf < 0)
		}
		var ok bool
		if d, ok = decimal128Num(digits[:0], dec); !ok {
			return nil, fmt.Errorf("decimal %s cannot be read", dec)
		}
	default:
		return nil, errType{v.typ, t}
	}
	if err := d.fits(t); err != nil {
		return nil, err
	}
	return d.appendTo(b), nil
}

func appendInfinity(b []byte, t colType, neg bool) ([]byte, error) {
	if t.prec > 0 {
		return nil, fmt.Errorf("infinity %w for %s", errOutOfRange, t)
	}
	if neg {
		return append(b, "-Infinity"...), nil
	}
	return append(b, "Infinity"...), nil
}

// intNum returns n with its digits appended to dst.
func intNum(dst []byte, n int64) decimalNum {
	s := strconv.AppendInt(dst, n, 10)
	if n < 0 {
		return decimalNum{neg: true, digits: s[1:]}
	}
	return decimalNum{digits: s}
}

// floatNum returns the shortest decimal that round-trips to f, its digits
// appended to dst.
func floatNum(dst []byte, f float64) decimalNum {
	s := strconv.AppendFloat(dst, f, 'e', -1, 64) // -d.dddde±dd
	d := decimalNum{}
	if s[0] == '-' {
		d.neg, s = true, s[1:]
	}
	e := bytes.IndexByte(s, 'e')
	exp := 0
	for _, c := range s[e+2:] {
		exp = exp*10 + int(c-'0')
	}
	if s[e+1] == '-' {
		exp = -exp
	}
	mant := s[:e]
	if i := bytes.IndexByte(mant, '.'); i >= 0 {
		exp -= len(mant) - i - 1
		mant = append(mant[:i], mant[i+1:]...)
	}
	d.digits, d.exp = mant, exp
	if d.isZero() {
		d.exp = 0
	}
	return d
}

// decimal128Num returns dec with its digits appended to dst.
func decimal128Num(dst []byte, dec bson.Decimal128) (decimalNum, bool) {
	hi, lo := dec.GetBytes()
	if hi>>61&3 != 3 && hi&(1<<49-1) == 0 && hi>>58&0x1F < 0x1E {
		// Common case: the coefficient fits in 64 bits (always canonical).
		d := decimalNum{neg: hi>>63 == 1, digits: strconv.AppendUint(dst, lo, 10), exp: int(hi>>49&(1<<14-1)) - 6176}
		return d, true
	}
	coef, exp, err := dec.BigInt()
	if err != nil {
		return decimalNum{}, false
	}
	d := decimalNum{exp: exp}
	if canonicalCoefficient(coef) == nil {
		d.digits = append(dst, '0')
		return d, true
	}
	s := coef.Append(dst, 10)
	if s[0] == '-' {
		d.neg, s = true, s[1:]
	}
	d.digits = s
	return d, true
}

func (d decimalNum) isZero() bool { return string(d.digits) == "0" }

// fits checks PostgreSQL's numeric limits and a numeric(p,s) constraint.
func (d decimalNum) fits(t colType) error {
	sig := bytes.TrimRight(d.digits, "0")
	sigExp := d.exp + len(d.digits) - len(sig)
	if len(sig) == 0 { // zero
		return nil
	}
	intDigits := len(sig) + sigExp
	frac := 0
	if sigExp < 0 {
		frac = -sigExp
	}
	if intDigits > numericMaxInt || (d.exp < 0 && -d.exp > numericMaxScale) {
		return fmt.Errorf("%s %w for numeric", d.short(), errOutOfRange)
	}
	if t.prec == 0 {
		return nil
	}
	if frac > t.scale {
		return fmt.Errorf("%s has %d decimal places; %s would round it", d.short(), frac, t)
	}
	if intDigits > t.prec-t.scale {
		return fmt.Errorf("%s %w for %s", d.short(), errOutOfRange, t)
	}
	return nil
}

// short is d for error messages, in exponent notation.
func (d decimalNum) short() string {
	s := string(d.digits)
	if len(s) > 20 {
		s = s[:20] + "…"
	}
	if d.neg {
		s = "-" + s
	}
	return s + "E" + strconv.Itoa(d.exp)
}

// appendTo appends d as a plain decimal.
func (d decimalNum) appendTo(b []byte) []byte {
	if d.neg && !d.isZero() {
		b = append(b, '-')
	}
	switch {
	case d.exp >= 0:
		b = append(b, d.digits...)
		if !d.isZero() {
			b = appendZeros(b, d.exp)
		}
	case len(d.digits) > -d.exp:
		n := len(d.digits) + d.exp
		b = append(b, d.digits[:n]...)
		b = append(b, '.')
		b = append(b, d.digits[n:]...)
	default:
		b = append(b, "0."...)
		b = appendZeros(b, -d.exp-len(d.digits))
		b = append(b, d.digits...)
	}
	return b
}

// String writes d as a plain decimal.
func (d decimalNum) String() string { return string(d.appendTo(nil)) }

func appendZeros(b []byte, n int) []byte {
	for ; n > 0; n-- {
		b = append(b, '0')
	}
	return b
}
