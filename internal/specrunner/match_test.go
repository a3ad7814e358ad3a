package specrunner

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ext parses an Extended JSON value; a document, or {"v": <value>} to get a
// non-document value. "MISSING" stands for an absent actual value.
func ext(t *testing.T, s string) bson.RawValue {
	t.Helper()
	if s == "MISSING" {
		return bson.RawValue{}
	}
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(`{"v": `+s+`}`), false, &doc); err != nil {
		t.Fatalf("bad test value %s: %v", s, err)
	}
	return doc.Lookup("v")
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name             string
		expected, actual string
		wantErr          string // "" means match
	}{
		// Root documents may have extra fields, nested ones may not.
		{"root extra field allowed", `{"x": 1}`, `{"x": 1, "y": 1}`, ""},
		{"root missing field", `{"x": 1, "y": 1}`, `{"x": 1}`, "y: field is missing"},
		{"nested extra field refused", `{"x": {"y": 1}}`, `{"x": {"y": 1, "z": 1}}`, `unexpected extra field "z"`},
		{"nested in array refused", `{"a": [{"y": 1}]}`, `{"a": [{"y": 1, "z": 2}]}`, `unexpected extra field "z"`},
		{"key order ignored", `{"x": 1, "y": 2}`, `{"y": 2, "x": 1}`, ""},
		{"empty nested doc matches only empty", `{"cursor": {}}`, `{"cursor": {"batchSize": 1}}`, `extra field "batchSize"`},
		{"document expected", `{"x": {"y": 1}}`, `{"x": 5}`, "expected a document"},

		// Numbers compare by value across int32, int64 and double.
		{"int32 vs int64", `{"n": 1}`, `{"n": {"$numberLong": "1"}}`, ""},
		{"int32 vs double", `{"n": 1}`, `{"n": 1.0}`, ""},
		{"int64 vs double", `{"n": {"$numberLong": "3"}}`, `{"n": 3.0}`, ""},
		{"double vs int32", `{"n": 2.0}`, `{"n": 2}`, ""},
		{"1 does not match 1.5", `{"n": 1}`, `{"n": 1.5}`, "expected 1"},
		{"decimal is not flexible", `{"n": {"$numberDecimal": "1"}}`, `{"n": 1}`, "expected"},
		{"number vs string", `{"n": 1}`, `{"n": "1"}`, "expected"},
		{"null matches null", `{"f": null}`, `{"f": null}`, ""},
		{"null does not match missing", `{"f": null}`, `{}`, "f: field is missing"},

		// Arrays: same length, element-wise.
		{"array equal", `{"a": [1, "x"]}`, `{"a": [1, "x"]}`, ""},
		{"array longer", `{"a": [1, 2, 3]}`, `{"a": [1, 2, 3, 4]}`, "expected 3 array elements, got 4"},
		{"array element", `{"a": [1, 2]}`, `{"a": [1, 3]}`, "a.1: expected 2"},

		// $$exists
		{"$$exists true present", `{"x": {"$$exists": true}}`, `{"x": null}`, ""},
		{"$$exists true missing", `{"x": {"$$exists": true}}`, `{}`, "x: field is missing"},
		{"$$exists false missing", `{"x": {"$$exists": false}}`, `{"y": 1}`, ""},
		{"$$exists false present", `{"x": {"$$exists": false}}`, `{"x": 1}`, "x: field is present"},
		{"$$exists false nested allows absence", `{"d": {"a": 1, "x": {"$$exists": false}}}`, `{"d": {"a": 1}}`, ""},

		// $$type
		{"$$type int", `{"x": {"$$type": "int"}}`, `{"x": 1}`, ""},
		{"$$type long refused for int", `{"x": {"$$type": "long"}}`, `{"x": 1}`, "expected type [long]"},
		{"$$type list", `{"x": {"$$type": ["int", "long"]}}`, `{"x": {"$numberLong": "7"}}`, ""},
		{"$$type object", `{"x": {"$$type": "object"}}`, `{"x": {"a": 1}}`, ""},
		{"$$type missing", `{"x": {"$$type": "string"}}`, `{}`, "field is missing"},
		{"$$type array not elements", `{"x": {"$$type": "array"}}`, `{"x": [1]}`, ""},
		{"$$type in array element", `{"p": ["a", {"$$type": "int"}, "1"]}`, `{"p": ["a", 0, "1"]}`, ""},
		{"$$type in array element wrong", `{"p": ["a", {"$$type": "int"}, "1"]}`, `{"p": ["a", "0", "1"]}`, "p.1: expected type [int]"},
		{"$$type unknown alias", `{"x": {"$$type": "nope"}}`, `{"x": 1}`, "unknown type alias"},

		// $$unsetOrMatches
		{"$$unsetOrMatches unset", `{"x": {"$$unsetOrMatches": 1}}`, `{}`, ""},
		{"$$unsetOrMatches matches", `{"x": {"$$unsetOrMatches": 1}}`, `{"x": {"$numberLong": "1"}}`, ""},
		{"$$unsetOrMatches differs", `{"x": {"$$unsetOrMatches": 1}}`, `{"x": 2}`, "x: expected 1"},
		{"$$unsetOrMatches with operator", `{"x": {"$$unsetOrMatches": {"$$exists": true}}}`, `{"x": 1}`, ""},
		{"$$unsetOrMatches nested doc has no extra fields", `{"x": {"$$unsetOrMatches": {"a": 1}}}`, `{"x": {"a": 1, "b": 2}}`, "extra field"},
		{"$$unsetOrMatches at root keeps root rule", `{"$$unsetOrMatches": {"a": 1}}`, `{"a": 1, "b": 2}`, ""},
		{"$$unsetOrMatches at root unset", `{"$$unsetOrMatches": {"a": 1}}`, `MISSING`, ""},

		// $$lte
		{"$$lte smaller", `{"x": {"$$lte": 5}}`, `{"x": 3}`, ""},
		{"$$lte equal across types", `{"x": {"$$lte": 1}}`, `{"x": 1.0}`, ""},
		{"$$lte bigger", `{"x": {"$$lte": 1}}`, `{"x": 1.1}`, "expected a value <= 1"},
		{"$$lte not number", `{"x": {"$$lte": 1}}`, `{"x": "a"}`, "expected a number"},

		// $$matchesHexBytes
		{"$$matchesHexBytes binary", `{"x": {"$$matchesHexBytes": "12ab"}}`, `{"x": {"$binary": {"base64": "Eqs=", "subType": "00"}}}`, ""},
		{"$$matchesHexBytes string", `{"x": {"$$matchesHexBytes": "6869"}}`, `{"x": "hi"}`, ""},
		{"$$matchesHexBytes differs", `{"x": {"$$matchesHexBytes": "12ac"}}`, `{"x": {"$binary": {"base64": "Eqs=", "subType": "00"}}}`, "expected bytes"},
		{"$$matchesHexBytes malformed", `{"x": {"$$matchesHexBytes": "1"}}`, `{"x": "a"}`, "malformed hex"},

		// $$matchAsDocument, $$matchAsRoot
		{"$$matchAsDocument", `{"x": {"$$matchAsDocument": {"a": 1}}}`, `{"x": "{\"a\": 1}"}`, ""},
		{"$$matchAsDocument no extra", `{"x": {"$$matchAsDocument": {"a": 1}}}`, `{"x": "{\"a\": 1, \"b\": 1}"}`, "extra field"},
		{"$$matchAsRoot allows extra", `{"x": {"$$matchAsRoot": {"a": 1}}}`, `{"x": {"a": 1, "b": 1}}`, ""},

		{"unknown operator", `{"x": {"$$bogus": 1}}`, `{"x": 1}`, "not supported"},
		{"single $ is not an operator", `{"x": {"$set": 1}}`, `{"x": {"$set": 1}}`, ""},

		// Shapes from the change-stream files.
		{"change event",
			`{"operationType": "insert", "ns": {"db": "database0", "coll": "collection0"}, "fullDocument": {"x": 1, "_id": {"$$exists": true}}}`,
			`{"_id": {"_data": "82"}, "operationType": "insert", "clusterTime": {"$timestamp": {"t": 1, "i": 1}}, "ns": {"db": "database0", "coll": "collection0"}, "documentKey": {"_id": 1}, "fullDocument": {"_id": 1, "x": 1}}`,
			""},
		{"change event ns has extra field",
			`{"ns": {"db": "database0", "coll": "collection0"}}`,
			`{"ns": {"db": "database0", "coll": "collection0", "viewOn": "x"}}`,
			`ns: unexpected extra field "viewOn"`},
		{"command with $changeStream stage",
			`{"aggregate": "collection0", "cursor": {}, "pipeline": [{"$changeStream": {"showExpandedEvents": {"$$exists": false}}}]}`,
			`{"aggregate": "collection0", "pipeline": [{"$changeStream": {}}], "cursor": {}, "lsid": {"id": 1}, "$db": "database0"}`,
			""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Match(ext(t, tc.expected), ext(t, tc.actual))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("want match, got %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("want error containing %q, got a match", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
			}
		})
	}
}

func TestMatchNestedRefusesExtraFieldsAtTop(t *testing.T) {
	if err := MatchNested(ext(t, `{"x": 1}`), ext(t, `{"x": 1, "y": 2}`)); err == nil {
		t.Fatal("MatchNested accepted an extra field")
	}
}

func TestMatchErrorHasPath(t *testing.T) {
	err := Match(ext(t, `{"a": {"b": [1, {"c": 2}]}}`), ext(t, `{"a": {"b": [1, {"c": 3}]}}`))
	var me *MatchError
	if !errors.As(err, &me) {
		t.Fatalf("want *MatchError, got %T %v", err, err)
	}
	if me.Path != "a.b.1.c" {
		t.Fatalf("path = %q, want a.b.1.c", me.Path)
	}
}

type fakeEntities struct {
	values map[string]bson.RawValue
	lsids  map[string]bson.Raw
}

func (f fakeEntities) bsonEntity(name string) (bson.RawValue, error) {
	v, ok := f.values[name]
	if !ok {
		return bson.RawValue{}, errors.New("no entity " + name)
	}
	return v, nil
}

func (f fakeEntities) sessionLsid(name string) (bson.Raw, error) {
	v, ok := f.lsids[name]
	if !ok {
		return nil, errors.New("no session " + name)
	}
	return v, nil
}

func TestMatchEntityOperators(t *testing.T) {
	lsid := ext(t, `{"id": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAA==", "subType": "04"}}}`).Document()
	m := matcher{entities: fakeEntities{
		values: map[string]bson.RawValue{"id0": ext(t, `{"$oid": "000000000000000000000001"}`)},
		lsids:  map[string]bson.Raw{"session0": lsid},
	}}
	cases := []struct {
		expected, actual string
		ok               bool
	}{
		{`{"_id": {"$$matchesEntity": "id0"}}`, `{"_id": {"$oid": "000000000000000000000001"}}`, true},
		{`{"_id": {"$$matchesEntity": "id0"}}`, `{"_id": {"$oid": "000000000000000000000002"}}`, false},
		{`{"_id": {"$$matchesEntity": "nope"}}`, `{"_id": 1}`, false},
		{`{"lsid": {"$$sessionLsid": "session0"}}`, `{"lsid": {"id": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAA==", "subType": "04"}}}}`, true},
		{`{"lsid": {"$$sessionLsid": "session0"}}`, `{"lsid": {"id": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAQ==", "subType": "04"}}}}`, false},
	}
	for _, c := range cases {
		err := m.match("", ext(t, c.expected), ext(t, c.actual), true)
		if (err == nil) != c.ok {
			t.Errorf("match(%s, %s) = %v, want ok=%v", c.expected, c.actual, err, c.ok)
		}
	}
	if err := Match(ext(t, `{"x": {"$$matchesEntity": "id0"}}`), ext(t, `{"x": 1}`)); err == nil {
		t.Error("$$matchesEntity without an entity map matched")
	}
}

// FuzzMatch checks that matching never panics on arbitrary Extended JSON,
// and that a value without special operators matches itself. Documents
// with a repeated field name are left out of the second check: matching
// looks fields up by name, which is ambiguous for them (MongoDB refuses to
// store them, and no specification test holds one).
func FuzzMatch(f *testing.F) {
	f.Add(`{"x": 1}`, `{"x": 1, "y": 1}`)
	f.Add(`{"a": [{"$$type": ["int", "long"]}, {"b": {"$$exists": false}}]}`, `{"a": [1, {"c": 2}]}`)
	f.Add(`{"$$unsetOrMatches": {"$$lte": 2.5}}`, `{"n": {"$numberLong": "2"}}`)
	f.Add(`{"d": {"$numberDecimal": "NaN"}, "f": {"$numberDouble": "NaN"}}`, `{}`)
	f.Fuzz(func(t *testing.T, expected, actual string) {
		var e, a bson.Raw
		if bson.UnmarshalExtJSON([]byte(expected), false, &e) != nil || bson.UnmarshalExtJSON([]byte(actual), false, &a) != nil {
			return
		}
		_ = Match(docValue(e), docValue(a))
		_ = MatchNested(docValue(e), docValue(a))
		if !strings.Contains(expected, "$$") && !repeatsFieldName(docValue(e)) {
			if err := Match(docValue(e), docValue(e)); err != nil {
				t.Fatalf("%s does not match itself: %v", expected, err)
			}
		}
	})
}

// repeatsFieldName reports whether v or a document inside it has two
// fields of one name.
func repeatsFieldName(v bson.RawValue) bool {
	var vals []bson.RawValue
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		elems, _ := v.Document().Elements()
		seen := map[string]bool{}
		for _, el := range elems {
			if seen[el.Key()] {
				return true
			}
			seen[el.Key()] = true
			vals = append(vals, el.Value())
		}
	case bson.TypeArray:
		vals, _ = v.Array().Values()
	}
	for _, el := range vals {
		if repeatsFieldName(el) {
			return true
		}
	}
	return false
}
