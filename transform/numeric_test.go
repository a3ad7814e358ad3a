package transform

import (
	"math/big"
	"strconv"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestDecimalFastPath: the 64-bit coefficient shortcut agrees with the
// driver's big-integer decoding.
func TestDecimalFastPath(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "1", "-1", "1.50", "-0.000123", "18446744073709551615", "18446744073709551616",
		"-18446744073709551615E-20", "9.999999999999999999999999999999999E+6144", "1E-6176", "123456789012345678901234567890",
	} {
		t.Run(s, func(t *testing.T) {
			d, err := bson.ParseDecimal128(s)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := decimal128Num(nil, d)
			if !ok {
				t.Fatal("not decoded")
			}
			coef, exp, err := d.BigInt()
			if err != nil {
				t.Fatal(err)
			}
			neg := coef.Sign() < 0
			want := decimalNum{neg: neg, digits: []byte(new(big.Int).Abs(coef).String()), exp: exp}
			if string(got.digits) != string(want.digits) || got.exp != want.exp || (got.neg != want.neg && !got.isZero()) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestDecimalNumString(t *testing.T) {
	tests := []struct {
		d    decimalNum
		want string
	}{
		{decimalNum{digits: []byte("0")}, "0"},
		{decimalNum{digits: []byte("0"), exp: -2}, "0.00"},
		{decimalNum{neg: true, digits: []byte("0"), exp: -1}, "0.0"},
		{decimalNum{digits: []byte("0"), exp: 3}, "0"},
		{decimalNum{digits: []byte("15"), exp: 2}, "1500"},
		{decimalNum{neg: true, digits: []byte("15"), exp: -1}, "-1.5"},
		{decimalNum{digits: []byte("15"), exp: -4}, "0.0015"},
		{decimalNum{digits: []byte("15"), exp: -2}, "0.15"},
	}
	for i, tt := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			if got := tt.d.String(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
