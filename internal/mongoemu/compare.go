package mongoemu

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// typeRank returns MongoDB's canonical sort rank of a BSON type:
// MinKey < null/undefined < numbers < string/symbol < object < array <
// binData < ObjectId < bool < date < timestamp < regex < DBPointer <
// JavaScript < JavaScript with scope < MaxKey. Missing ranks as null.
func typeRank(v Val) int {
	switch v.T {
	case tMinKey:
		return 1
	case 0, tNull, tUndef:
		return 2
	case tInt32, tInt64, tDouble, tDecimal:
		return 3
	case tString, tSymbol:
		return 4
	case tDoc:
		return 5
	case tArray:
		return 6
	case tBinary:
		return 7
	case tOID:
		return 8
	case tBool:
		return 9
	case tDate:
		return 10
	case tTS:
		return 11
	case tRegex:
		return 12
	case tDBPtr:
		return 13
	case tJS:
		return 14
	case tJSScope:
		return 15
	case tMaxKey:
		return 16
	}
	return 0
}

// compareVals orders two values as MongoDB does.
func compareVals(a, b Val) int {
	ra, rb := typeRank(a), typeRank(b)
	if ra != rb {
		return cmpInt(ra, rb)
	}
	switch ra {
	case 2, 1, 16:
		return 0
	case 3:
		return compareNumbers(a, b)
	case 4:
		return cmpBytesStr(a, b)
	case 5:
		return compareDocs(a.doc(), b.doc())
	case 6:
		ea, eb := a.elems(), b.elems()
		for i := 0; i < len(ea) && i < len(eb); i++ {
			if c := compareVals(ea[i], eb[i]); c != 0 {
				return c
			}
		}
		return cmpInt(len(ea), len(eb))
	case 7:
		sa, da := a.core().Binary()
		sb, db := b.core().Binary()
		if len(da) != len(db) {
			return cmpInt(len(da), len(db))
		}
		if sa != sb {
			return cmpInt(int(sa), int(sb))
		}
		return bytes.Compare(da, db)
	case 9:
		return cmpInt(b2i(a.boolean()), b2i(b.boolean()))
	case 10:
		return cmpInt64(a.dateMS(), b.dateMS())
	case 11:
		ta, ia := a.timestamp()
		tb, ib := b.timestamp()
		if ta != tb {
			return cmpInt64(int64(ta), int64(tb))
		}
		return cmpInt64(int64(ia), int64(ib))
	case 12:
		pa, oa := a.core().Regex()
		pb, ob := b.core().Regex()
		if pa != pb {
			return cmpStr(pa, pb)
		}
		return cmpStr(oa, ob)
	}
	return bytes.Compare(a.raw(), b.raw())
}

func compareDocs(a, b *Doc) int {
	var ea, eb []Elem
	if a != nil {
		ea = a.E
	}
	if b != nil {
		eb = b.E
	}
	for i := 0; i < len(ea) && i < len(eb); i++ {
		if c := cmpInt(typeRank(ea[i].V), typeRank(eb[i].V)); c != 0 {
			return c
		}
		if c := cmpStr(ea[i].K, eb[i].K); c != 0 {
			return c
		}
		if c := compareVals(ea[i].V, eb[i].V); c != 0 {
			return c
		}
	}
	return cmpInt(len(ea), len(eb))
}

func valsEqual(a, b Val) bool { return typeRank(a) == typeRank(b) && compareVals(a, b) == 0 }

func cmpBytesStr(a, b Val) int {
	sa, sb := a.B, b.B
	if len(sa) >= 5 {
		sa = sa[4 : len(sa)-1]
	}
	if len(sb) >= 5 {
		sb = sb[4 : len(sb)-1]
	}
	return bytes.Compare(sa, sb)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compareNumbers compares numbers of any BSON numeric type by value. NaN sorts
// below every other number and equals itself, as in MongoDB.
func compareNumbers(a, b Val) int {
	if a.T == tDecimal || b.T == tDecimal {
		return compareRat(a, b)
	}
	if a.T != tDouble && b.T != tDouble {
		ia, _ := a.asInt64()
		ib, _ := b.asInt64()
		return cmpInt64(ia, ib)
	}
	if a.T == tDouble && b.T == tDouble {
		fa, _ := a.asFloat()
		fb, _ := b.asFloat()
		return cmpFloat(fa, fb)
	}
	if a.T == tDouble {
		fa, _ := a.asFloat()
		ib, _ := b.asInt64()
		return -cmpIntFloat(ib, fa)
	}
	ia, _ := a.asInt64()
	fb, _ := b.asFloat()
	return cmpIntFloat(ia, fb)
}

func cmpFloat(a, b float64) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return -1
	case bn:
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpIntFloat compares an int64 with a float64 exactly.
func cmpIntFloat(i int64, f float64) int {
	if math.IsNaN(f) {
		return 1
	}
	if f >= 9.223372036854775807e18 {
		return -1
	}
	if f < -9.223372036854775808e18 {
		return 1
	}
	t := math.Trunc(f)
	if c := cmpInt64(i, int64(t)); c != 0 {
		return c
	}
	frac := f - t
	switch {
	case frac > 0:
		return -1
	case frac < 0:
		return 1
	}
	return 0
}

func decOf(v Val) bson.Decimal128 {
	h, l := v.core().Decimal128()
	return bson.NewDecimal128(h, l)
}

func decToFloat(v Val) (float64, bool) {
	d := decOf(v)
	if d.IsNaN() {
		return math.NaN(), true
	}
	if s := d.IsInf(); s != 0 {
		return math.Inf(s), true
	}
	r, ok := numRat(v)
	if !ok {
		return 0, false
	}
	f, _ := r.Float64()
	return f, true
}

// numRat converts a finite number to an exact rational.
func numRat(v Val) (*big.Rat, bool) {
	switch v.T {
	case tInt32, tInt64:
		i, _ := v.asInt64()
		return new(big.Rat).SetInt64(i), true
	case tDouble:
		f, _ := v.asFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(f), true
	case tDecimal:
		d := decOf(v)
		if d.IsNaN() || d.IsInf() != 0 {
			return nil, false
		}
		bi, exp, err := d.BigInt()
		if err != nil {
			return nil, false
		}
		r := new(big.Rat).SetInt(bi)
		if exp != 0 {
			p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil)
			if exp > 0 {
				r.Mul(r, new(big.Rat).SetInt(p))
			} else {
				r.Quo(r, new(big.Rat).SetInt(p))
			}
		}
		return r, true
	}
	return nil, false
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// special returns -2 for NaN, -1/+1 for infinities, 0 for finite numbers.
func special(v Val) int {
	switch v.T {
	case tDouble:
		f, _ := v.asFloat()
		switch {
		case math.IsNaN(f):
			return -2
		case math.IsInf(f, 1):
			return 1
		case math.IsInf(f, -1):
			return -1
		}
	case tDecimal:
		d := decOf(v)
		if d.IsNaN() {
			return -2
		}
		return d.IsInf()
	}
	return 0
}

func compareRat(a, b Val) int {
	sa, sb := special(a), special(b)
	if sa != 0 || sb != 0 {
		order := func(s int) int { // NaN < -Inf < finite < +Inf
			switch s {
			case -2:
				return 0
			case -1:
				return 1
			case 1:
				return 3
			}
			return 2
		}
		if c := cmpInt(order(sa), order(sb)); c != 0 || sa != 0 {
			return c
		}
	}
	ra, _ := numRat(a)
	rb, _ := numRat(b)
	return ra.Cmp(rb)
}

func numIsZero(v Val) bool {
	switch v.T {
	case tInt32, tInt64:
		i, _ := v.asInt64()
		return i == 0
	case tDouble:
		f, _ := v.asFloat()
		return f == 0
	case tDecimal:
		return decOf(v).IsZero()
	}
	return false
}

// keyBytes appends a canonical encoding of v such that two values are equal
// under MongoDB's comparison exactly when their encodings are equal. It is
// used as the map key of the _id index and of unique indexes.
func keyBytes(dst []byte, v Val) []byte {
	dst = append(dst, byte(typeRank(v)))
	switch typeRank(v) {
	case 1, 2, 16:
		return dst
	case 3:
		if v.T == tDouble || v.T == tDecimal {
			if f, ok := v.asFloat(); ok && !math.IsNaN(f) && f == math.Trunc(f) && math.Abs(f) < 9e18 {
				if v.T == tDouble || compareNumbers(v, vInt64(int64(f))) == 0 {
					return binary.BigEndian.AppendUint64(append(dst, 'i'), uint64(int64(f)))
				}
			}
			if v.T == tDecimal {
				return append(append(dst, 'd'), decOf(v).String()...)
			}
			f, _ := v.asFloat()
			if math.IsNaN(f) {
				return append(dst, 'n')
			}
			return binary.BigEndian.AppendUint64(append(dst, 'f'), math.Float64bits(f))
		}
		i, _ := v.asInt64()
		return binary.BigEndian.AppendUint64(append(dst, 'i'), uint64(i))
	case 4:
		s := v.B
		if len(s) >= 5 {
			s = s[4 : len(s)-1]
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
		return append(dst, s...)
	case 5:
		d := v.doc()
		for _, e := range d.E {
			dst = append(dst, e.K...)
			dst = append(dst, 0)
			dst = keyBytes(dst, e.V)
		}
		return append(dst, 0xff)
	case 6:
		for _, e := range v.elems() {
			dst = keyBytes(dst, e)
		}
		return append(dst, 0xff)
	}
	b := v.raw()
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}
