package transform

import (
	"fmt"
	"math"
	"strconv"
	"strings"

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
	digits string
	exp    int
}

// toNumeric writes an exact plain decimal (never exponent notation), so
// PostgreSQL keeps the source's scale: Decimal128 1.50 stays 1.50.
// Doubles use the shortest decimal that reads back as the same double.
// NaN → 'NaN'; ±Infinity → 'Infinity'/'-Infinity' (PostgreSQL 14+, only
// in unconstrained numeric). Negative zero becomes 0: numeric has no sign
// on zero. For numeric(p,s) a value that would be rounded or overflow is an
// error, not a silent change.
func toNumeric(t colType, v rawValue) (string, error) {
	var d decimalNum
	switch v.typ {
	case bsonInt32:
		d = intNum(int64(v.int32()))
	case bsonInt64:
		d = intNum(v.int64())
	case bsonDouble:
		f := v.double()
		switch {
		case math.IsNaN(f):
			return "NaN", nil
		case math.IsInf(f, 0):
			return infinity(t, f < 0)
		}
		d = floatNum(f)
	case bsonDecimal:
		hi, lo := v.decimal()
		dec := bson.NewDecimal128(hi, lo)
		if dec.IsNaN() {
			return "NaN", nil
		}
		if inf := dec.IsInf(); inf != 0 {
			return infinity(t, inf < 0)
		}
		var ok bool
		if d, ok = decimal128Num(dec); !ok {
			return "", fmt.Errorf("decimal %s cannot be read", dec)
		}
	default:
		return "", errType{v.typ, t}
	}
	if err := d.fits(t); err != nil {
		return "", err
	}
	return d.String(), nil
}

func infinity(t colType, neg bool) (string, error) {
	if t.prec > 0 {
		return "", fmt.Errorf("infinity %w for %s", errOutOfRange, t)
	}
	if neg {
		return "-Infinity", nil
	}
	return "Infinity", nil
}

func intNum(n int64) decimalNum {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return decimalNum{neg: true, digits: s[1:]}
	}
	return decimalNum{digits: s}
}

// floatNum returns the shortest decimal that round-trips to f.
func floatNum(f float64) decimalNum {
	s := strconv.FormatFloat(f, 'e', -1, 64) // -d.dddde±xx
	d := decimalNum{}
	if s[0] == '-' {
		d.neg, s = true, s[1:]
	}
	e := strings.IndexByte(s, 'e')
	exp, _ := strconv.Atoi(s[e+1:])
	mant := s[:e]
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		exp -= len(mant) - i - 1
		mant = mant[:i] + mant[i+1:]
	}
	d.digits, d.exp = mant, exp
	if d.digits == "0" {
		d.exp = 0
	}
	return d
}

func decimal128Num(dec bson.Decimal128) (decimalNum, bool) {
	hi, lo := dec.GetBytes()
	if hi>>61&3 != 3 && hi&(1<<49-1) == 0 && hi>>58&0x1F < 0x1E {
		// Common case: the coefficient fits in 64 bits (always canonical).
		d := decimalNum{neg: hi>>63 == 1, digits: strconv.FormatUint(lo, 10), exp: int(hi>>49&(1<<14-1)) - 6176}
		return d, true
	}
	coef, exp, err := dec.BigInt()
	if err != nil {
		return decimalNum{}, false
	}
	d := decimalNum{exp: exp}
	if canonicalCoefficient(coef) == nil {
		d.digits = "0"
		return d, true
	}
	s := coef.String()
	if s[0] == '-' {
		d.neg, s = true, s[1:]
	}
	d.digits = s
	return d, true
}

func (d decimalNum) isZero() bool { return d.digits == "0" }

// fits checks PostgreSQL's numeric limits and a numeric(p,s) constraint.
func (d decimalNum) fits(t colType) error {
	sig := strings.TrimRight(d.digits, "0")
	sigExp := d.exp + len(d.digits) - len(sig)
	if sig == "" { // zero
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
	s := d.digits
	if len(s) > 20 {
		s = s[:20] + "…"
	}
	if d.neg {
		s = "-" + s
	}
	return s + "E" + strconv.Itoa(d.exp)
}

// String writes d as a plain decimal.
func (d decimalNum) String() string {
	var b strings.Builder
	if d.neg && !d.isZero() {
		b.WriteByte('-')
	}
	switch {
	case d.exp >= 0:
		b.WriteString(d.digits)
		if !d.isZero() {
			b.WriteString(strings.Repeat("0", d.exp))
		}
	case len(d.digits) > -d.exp:
		n := len(d.digits) + d.exp
		b.WriteString(d.digits[:n])
		b.WriteByte('.')
		b.WriteString(d.digits[n:])
	default:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -d.exp-len(d.digits)))
		b.WriteString(d.digits)
	}
	return b.String()
}
