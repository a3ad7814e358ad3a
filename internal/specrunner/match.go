package specrunner

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// MatchError describes the first place where an actual value did not match
// the expected one.
type MatchError struct {
	// Path is the dotted path of the mismatch inside the matched value
	// ("" for the value itself).
	Path string
	Msg  string
}

func (e *MatchError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// entityResolver gives the matcher access to the test's entity map for
// $$matchesEntity and $$sessionLsid. A nil resolver makes both operators
// fail with an error.
type entityResolver interface {
	bsonEntity(name string) (bson.RawValue, error)
	sessionLsid(name string) (bson.Raw, error)
}

// Match matches actual against expected by the unified format's rules
// ("Evaluating Matches"), treating both as root-level values: a root
// document may have fields that expected does not name; nested documents
// may not. A missing actual value is the zero bson.RawValue.
func Match(expected, actual bson.RawValue) error {
	return matcher{}.match("", expected, actual, true)
}

// MatchNested is Match for a value that is not root-level (no extra fields
// anywhere).
func MatchNested(expected, actual bson.RawValue) error {
	return matcher{}.match("", expected, actual, false)
}

type matcher struct {
	entities entityResolver
}

func mismatch(path, format string, args ...any) error {
	return &MatchError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// operator returns the operator name and argument when doc is a special
// operator document: exactly one key, starting with "$$".
func operator(doc bson.Raw) (string, bson.RawValue, bool) {
	elems, err := doc.Elements()
	if err != nil || len(elems) != 1 || !strings.HasPrefix(elems[0].Key(), "$$") {
		return "", bson.RawValue{}, false
	}
	return elems[0].Key(), elems[0].Value(), true
}

func (m matcher) match(path string, expected, actual bson.RawValue, root bool) error {
	if expDoc, ok := expected.DocumentOK(); ok {
		if name, arg, isOp := operator(expDoc); isOp {
			return m.operator(path, name, arg, actual, root)
		}
		actDoc, ok := actual.DocumentOK()
		if !ok {
			return mismatch(path, "expected a document, got %s", describe(actual))
		}
		elems, err := expDoc.Elements()
		if err != nil {
			return fmt.Errorf("expected document at %q: %w", path, err)
		}
		for _, e := range elems {
			key, ev := e.Key(), e.Value()
			av, lookupErr := actDoc.LookupErr(key)
			if lookupErr != nil {
				av = bson.RawValue{}
			}
			if sub, ok := ev.DocumentOK(); ok {
				if name, arg, isOp := operator(sub); isOp {
					// Key-based operators decide for themselves whether
					// the field may be absent; the field is nested.
					if err := m.operator(join(path, key), name, arg, av, false); err != nil {
						return err
					}
					continue
				}
			}
			if av.Type == 0 {
				return mismatch(join(path, key), "field is missing (expected %s)", describe(ev))
			}
			if err := m.match(join(path, key), ev, av, false); err != nil {
				return err
			}
		}
		if !root {
			actElems, _ := actDoc.Elements()
			for _, a := range actElems {
				if _, err := expDoc.LookupErr(a.Key()); err != nil {
					return mismatch(path, "unexpected extra field %q in nested document %s", a.Key(), actDoc)
				}
			}
		}
		return nil
	}
	if expArr, ok := expected.ArrayOK(); ok {
		actArr, ok := actual.ArrayOK()
		if !ok {
			return mismatch(path, "expected an array, got %s", describe(actual))
		}
		ev, err := expArr.Values()
		if err != nil {
			return fmt.Errorf("expected array at %q: %w", path, err)
		}
		av, err := actArr.Values()
		if err != nil {
			return mismatch(path, "actual array: %v", err)
		}
		if len(ev) != len(av) {
			return mismatch(path, "expected %d array elements, got %d: %s", len(ev), len(av), actArr)
		}
		for i := range ev {
			if err := m.match(join(path, fmt.Sprint(i)), ev[i], av[i], false); err != nil {
				return err
			}
		}
		return nil
	}
	if actual.Type == 0 {
		return mismatch(path, "value is missing (expected %s)", describe(expected))
	}
	if !valuesEqual(expected, actual) {
		return mismatch(path, "expected %s, got %s", describe(expected), describe(actual))
	}
	return nil
}

func (m matcher) operator(path, name string, arg, actual bson.RawValue, root bool) error {
	switch name {
	case "$$exists":
		want, ok := arg.BooleanOK()
		if !ok {
			return fmt.Errorf("$$exists at %q: argument must be a boolean, got %s", path, arg.Type)
		}
		if got := actual.Type != 0; got != want {
			if want {
				return mismatch(path, "field is missing ($$exists: true)")
			}
			return mismatch(path, "field is present with %s ($$exists: false)", describe(actual))
		}
		return nil
	case "$$type":
		names, err := typeNames(arg)
		if err != nil {
			return fmt.Errorf("$$type at %q: %w", path, err)
		}
		if actual.Type == 0 {
			return mismatch(path, "field is missing (expected type %v)", names)
		}
		for _, n := range names {
			ok, err := hasType(actual, n)
			if err != nil {
				return fmt.Errorf("$$type at %q: %w", path, err)
			}
			if ok {
				return nil
			}
		}
		return mismatch(path, "expected type %v, got %s", names, describe(actual))
	case "$$unsetOrMatches":
		if actual.Type == 0 {
			return nil
		}
		return m.match(path, arg, actual, root)
	case "$$matchesEntity":
		id, ok := arg.StringValueOK()
		if !ok {
			return fmt.Errorf("$$matchesEntity at %q: argument must be an entity name", path)
		}
		if m.entities == nil {
			return fmt.Errorf("$$matchesEntity at %q: no entity map", path)
		}
		v, err := m.entities.bsonEntity(id)
		if err != nil {
			return fmt.Errorf("$$matchesEntity at %q: %w", path, err)
		}
		return m.match(path, v, actual, root)
	case "$$matchesHexBytes":
		h, ok := arg.StringValueOK()
		if !ok {
			return fmt.Errorf("$$matchesHexBytes at %q: argument must be a string", path)
		}
		want, err := hex.DecodeString(h)
		if err != nil {
			return fmt.Errorf("$$matchesHexBytes at %q: malformed hex %q: %w", path, h, err)
		}
		var got []byte
		switch actual.Type {
		case bson.TypeString:
			got = []byte(actual.StringValue())
		case bson.TypeBinary:
			_, got = actual.Binary()
		default:
			return mismatch(path, "$$matchesHexBytes: expected a string or binary value, got %s", describe(actual))
		}
		if !bytes.Equal(want, got) {
			return mismatch(path, "expected bytes %x, got %x", want, got)
		}
		return nil
	case "$$sessionLsid":
		id, ok := arg.StringValueOK()
		if !ok {
			return fmt.Errorf("$$sessionLsid at %q: argument must be an entity name", path)
		}
		if m.entities == nil {
			return fmt.Errorf("$$sessionLsid at %q: no entity map", path)
		}
		lsid, err := m.entities.sessionLsid(id)
		if err != nil {
			return fmt.Errorf("$$sessionLsid at %q: %w", path, err)
		}
		act, ok := actual.DocumentOK()
		if !ok {
			return mismatch(path, "expected lsid of session %s, got %s", id, describe(actual))
		}
		if !bytes.Equal(act, lsid) {
			return mismatch(path, "expected lsid %s of session %s, got %s", lsid, id, act)
		}
		return nil
	case "$$lte":
		if !isNumber(arg) {
			return fmt.Errorf("$$lte at %q: argument must be a number", path)
		}
		if !isNumber(actual) {
			return mismatch(path, "$$lte: expected a number, got %s", describe(actual))
		}
		if compareNumbers(actual, arg) > 0 {
			return mismatch(path, "expected a value <= %s, got %s", describe(arg), describe(actual))
		}
		return nil
	case "$$matchAsDocument":
		s, ok := actual.StringValueOK()
		if !ok {
			return mismatch(path, "$$matchAsDocument: expected an Extended JSON string, got %s", describe(actual))
		}
		var doc bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(s), false, &doc); err != nil {
			return mismatch(path, "$$matchAsDocument: actual string is not Extended JSON: %v", err)
		}
		return m.match(path, arg, docValue(doc), false)
	case "$$matchAsRoot":
		return m.match(path, arg, actual, true)
	default:
		return fmt.Errorf("special operator %s at %q is not supported by this runner", name, path)
	}
}

// typeNames reads a $$type argument: a string or an array of strings.
func typeNames(arg bson.RawValue) ([]string, error) {
	if s, ok := arg.StringValueOK(); ok {
		return []string{s}, nil
	}
	arr, ok := arg.ArrayOK()
	if !ok {
		return nil, fmt.Errorf("argument must be a string or an array of strings")
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range vals {
		s, ok := v.StringValueOK()
		if !ok {
			return nil, fmt.Errorf("argument must be a string or an array of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// bsonTypeAliases are the string aliases of the $type query operator.
var bsonTypeAliases = map[string]bson.Type{
	"double":              bson.TypeDouble,
	"string":              bson.TypeString,
	"object":              bson.TypeEmbeddedDocument,
	"array":               bson.TypeArray,
	"binData":             bson.TypeBinary,
	"undefined":           bson.TypeUndefined,
	"objectId":            bson.TypeObjectID,
	"bool":                bson.TypeBoolean,
	"date":                bson.TypeDateTime,
	"null":                bson.TypeNull,
	"regex":               bson.TypeRegex,
	"dbPointer":           bson.TypeDBPointer,
	"javascript":          bson.TypeJavaScript,
	"symbol":              bson.TypeSymbol,
	"javascriptWithScope": bson.TypeCodeWithScope,
	"int":                 bson.TypeInt32,
	"timestamp":           bson.TypeTimestamp,
	"long":                bson.TypeInt64,
	"decimal":             bson.TypeDecimal128,
	"minKey":              bson.TypeMinKey,
	"maxKey":              bson.TypeMaxKey,
}

func hasType(v bson.RawValue, name string) (bool, error) {
	if name == "number" {
		return isNumber(v) || v.Type == bson.TypeDecimal128, nil
	}
	t, ok := bsonTypeAliases[name]
	if !ok {
		return false, fmt.Errorf("unknown type alias %q", name)
	}
	return v.Type == t, nil
}

func isNumber(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		return true
	}
	return false
}

// compareNumbers compares two int32, int64 or double values by value.
func compareNumbers(a, b bson.RawValue) int {
	if a.Type != bson.TypeDouble && b.Type != bson.TypeDouble {
		x, y := a.AsInt64(), b.AsInt64()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	x, y := asFloat(a), asFloat(b)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	case x == y:
		return 0
	}
	// NaN on either side: order them so that NaN equals only NaN.
	if math.IsNaN(x) && math.IsNaN(y) {
		return 0
	}
	return 1
}

func asFloat(v bson.RawValue) float64 {
	switch v.Type {
	case bson.TypeDouble:
		return v.Double()
	case bson.TypeInt32:
		return float64(v.Int32())
	case bson.TypeInt64:
		return float64(v.Int64())
	}
	return math.NaN()
}

// valuesEqual compares two non-container values: numbers (other than
// Decimal128) by value across int32, int64 and double, everything else by
// type and bytes. Documents and arrays compare exactly (used for values
// such as server parameters and lsids, where the matching rules do not
// apply).
func valuesEqual(expected, actual bson.RawValue) bool {
	if isNumber(expected) && isNumber(actual) {
		return compareNumbers(expected, actual) == 0
	}
	return expected.Type == actual.Type && bytes.Equal(expected.Value, actual.Value)
}

// describe renders a value for a failure message.
func describe(v bson.RawValue) string {
	if v.Type == 0 {
		return "<missing>"
	}
	return fmt.Sprintf("%s (%s)", relaxed(v), v.Type)
}

// relaxed renders a value as relaxed Extended JSON.
func relaxed(v bson.RawValue) string {
	doc, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
	if err != nil {
		return v.String()
	}
	out, err := bson.MarshalExtJSON(bson.Raw(doc), false, false)
	if err != nil {
		return v.String()
	}
	s := strings.TrimPrefix(string(out), `{"v":`)
	return strings.TrimSuffix(s, "}")
}

// docValue wraps a document as a value.
func docValue(doc bson.Raw) bson.RawValue {
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}
}
