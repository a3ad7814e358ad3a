package transform

import (
	"fmt"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// filterMap is one compiled FilterCondition.
type filterMap struct {
	path   fieldPath
	values []any // equals / in: string, bool, int64, float64
	exists *bool
	null   bool
}

func (m *Mapping) compileFilter(p *problems) {
	for i, fc := range m.cfg.Filter {
		field := fmt.Sprintf("filter[%d]", i)
		path, err := parsePath(fc.Path, false)
		if err != nil {
			p.addErr(field+".path", err)
		}
		f := filterMap{path: path, exists: fc.Exists, null: fc.IsNull}
		n := 0
		if fc.Equals != nil {
			n++
			f.values = append(f.values, fc.Equals)
		}
		if fc.In != nil {
			n++
			f.values = append(f.values, fc.In...)
		}
		if fc.Exists != nil {
			n++
		}
		if fc.IsNull {
			n++
		}
		if n != 1 {
			p.add(field, "a filter condition needs exactly one of equals, in, exists or is_null")
		}
		for j, v := range f.values {
			nv, ok := normalizeScalar(v)
			if !ok {
				p.add(field, "filter value %v must be a string, number or boolean", v)
			}
			f.values[j] = nv
		}
		m.filter = append(m.filter, f)
	}
}

// normalizeScalar turns YAML scalars into string, bool, int64 or float64.
func normalizeScalar(v any) (any, bool) {
	switch x := v.(type) {
	case string, bool, int64, float64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return float64(x), true
		}
		return int64(x), true
	case float32:
		return float64(x), true
	}
	return nil, false
}

// skip reports whether doc matches any filter condition.
func (m *Mapping) skip(doc rawValue) (bool, error) {
	for i := range m.filter {
		f := &m.filter[i]
		v, err := f.path.resolve(doc)
		if err != nil {
			return false, under(f.path.text, err)
		}
		switch {
		case f.exists != nil:
			if !v.missing() == *f.exists {
				return true, nil
			}
		case f.null:
			if v.isNullish() {
				return true, nil
			}
		default:
			for _, want := range f.values {
				if scalarEqual(v, want) {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// scalarEqual compares a BSON value with a YAML scalar: strings with
// strings, booleans with booleans, numbers by exact numeric value.
func scalarEqual(v rawValue, want any) bool {
	switch w := want.(type) {
	case string:
		return (v.typ == bsonString || v.typ == bsonSymbol) && string(v.strBytes()) == w
	case bool:
		return v.typ == bsonBoolean && (v.data[0] == 1) == w
	case int64:
		return numEqual(v, new(big.Float).SetInt64(w))
	case float64:
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return v.typ == bsonDouble && doubleText(v.double()) == doubleText(w)
		}
		return numEqual(v, new(big.Float).SetFloat64(w))
	}
	return false
}

func numEqual(v rawValue, w *big.Float) bool {
	var f *big.Float
	switch v.typ {
	case bsonInt32:
		f = new(big.Float).SetInt64(int64(v.int32()))
	case bsonInt64:
		f = new(big.Float).SetInt64(v.int64())
	case bsonDouble:
		d := v.double()
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return false
		}
		f = new(big.Float).SetFloat64(d)
	case bsonDecimal:
		hi, lo := v.decimal()
		dec := bson.NewDecimal128(hi, lo)
		if dec.IsNaN() || dec.IsInf() != 0 {
			return false
		}
		d, ok := decimal128Num(nil, dec)
		if !ok {
			return false
		}
		s := d.String()
		if d.neg && !d.isZero() {
			s = s[1:]
		}
		if len(s) > 400 {
			return false
		}
		var ok2 bool
		f, ok2 = new(big.Float).SetPrec(2048).SetString(s)
		if !ok2 {
			return false
		}
		if d.neg {
			f.Neg(f)
		}
	default:
		return false
	}
	return f.Cmp(w) == 0
}
