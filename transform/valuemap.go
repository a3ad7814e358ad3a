package transform

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// valueMap is a compiled ColumnConfig.Map: source value text → the text
// written (already converted for the column's type).
type valueMap map[string]Value

// compileValueMap converts every target of m for a column of type typ, so
// a bad target is a config error, not a dead letter at run time.
func compileValueMap(p *problems, field string, m map[string]any, typ colType, order uuidOrder) valueMap {
	if typ.array {
		p.add(field, "map applies to scalar columns only, not %s", typ)
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(valueMap, len(m))
	for _, k := range keys {
		f := field + "." + k
		if err := validText([]byte(k)); err != nil {
			p.addErr(f, err)
			continue
		}
		target := m[k]
		if target == nil {
			out[k] = Null
			continue
		}
		bt, data, err := bson.MarshalValue(target)
		if err != nil {
			p.add(f, "target %#v: %v", target, err)
			continue
		}
		v := rawValue{typ: byte(bt), data: data}
		switch bt {
		case bson.TypeString, bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeBoolean:
		default:
			p.add(f, "target must be a string, number, boolean or null, not %T", target)
			continue
		}
		b, null, err := appendConvert(nil, typ, v, order)
		if err != nil {
			p.add(f, "target %#v does not fit %s: %v", target, typ, err)
			continue
		}
		if null {
			out[k] = Null
			continue
		}
		out[k] = Text(string(b))
	}
	return out
}

// mapText is the text a source value is looked up by in a value map: a
// string as it is, an integral number in decimal (int32, int64 and a
// double with an integral value alike), a boolean as true or false.
func mapText(v rawValue) (string, error) {
	switch v.typ {
	case bsonString, bsonSymbol:
		return v.str(), nil
	case bsonInt32:
		return strconv.FormatInt(int64(v.int32()), 10), nil
	case bsonInt64:
		return strconv.FormatInt(v.int64(), 10), nil
	case bsonDouble:
		f := v.double()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return strconv.FormatInt(int64(f), 10), nil
		}
		return "", fmt.Errorf("value map: %v is not an integral number", f)
	case bsonBoolean:
		return strconv.FormatBool(v.data[0] == 1), nil
	}
	return "", fmt.Errorf("value map needs a string, integer or boolean, found %s", typeName(v.typ))
}

// lookup maps a present, non-null source value.
func (vm valueMap) lookup(v rawValue) (Value, error) {
	k, err := mapText(v)
	if err != nil {
		return Null, err
	}
	out, ok := vm[k]
	if !ok {
		return Null, fmt.Errorf("value %q is not in the column's map", truncate(k, 60))
	}
	return out, nil
}
