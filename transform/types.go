package transform

import (
	"fmt"
	"strconv"
	"strings"
)

// kind is a PostgreSQL column type the mapping can write.
type kind uint8

const (
	kText kind = iota + 1
	kVarchar
	kBoolean
	kSmallint
	kInteger
	kBigint
	kNumeric
	kReal
	kDouble
	kTimestamptz
	kTimestamp
	kDate
	kUUID
	kBytea
	kJSONB
	kJSON
	kInet
	kCidr
	kMacaddr
	kMacaddr8
)

// kindNames are the canonical DDL spellings, also the names config accepts.
var kindNames = map[kind]string{
	kText: "text", kVarchar: "varchar", kBoolean: "boolean", kSmallint: "smallint",
	kInteger: "integer", kBigint: "bigint", kNumeric: "numeric", kReal: "real",
	kDouble: "double precision", kTimestamptz: "timestamptz", kTimestamp: "timestamp",
	kDate: "date", kUUID: "uuid", kBytea: "bytea", kJSONB: "jsonb", kJSON: "json",
	kInet: "inet", kCidr: "cidr", kMacaddr: "macaddr", kMacaddr8: "macaddr8",
}

// typeAliases maps every accepted spelling (lower case, single spaces) to
// its kind. json, inet, cidr, macaddr and macaddr8 have no other names in
// PostgreSQL.
var typeAliases = map[string]kind{
	"text": kText, "varchar": kVarchar, "character varying": kVarchar,
	"boolean": kBoolean, "bool": kBoolean,
	"smallint": kSmallint, "int2": kSmallint,
	"integer": kInteger, "int": kInteger, "int4": kInteger,
	"bigint": kBigint, "int8": kBigint,
	"numeric": kNumeric, "decimal": kNumeric,
	"real": kReal, "float4": kReal,
	"double precision": kDouble, "float8": kDouble,
	"timestamptz": kTimestamptz, "timestamp with time zone": kTimestamptz,
	"timestamp": kTimestamp, "timestamp without time zone": kTimestamp,
	"date": kDate, "uuid": kUUID, "bytea": kBytea, "jsonb": kJSONB, "json": kJSON,
	"inet": kInet, "cidr": kCidr, "macaddr": kMacaddr, "macaddr8": kMacaddr8,
}

// colType is a parsed column type.
type colType struct {
	kind  kind
	array bool
	// n is varchar's length limit.
	n int
	// prec and scale constrain numeric; prec 0 means unconstrained.
	prec, scale int
}

// maxVarchar is PostgreSQL's limit on varchar(n).
const maxVarchar = 10485760

// parseType parses a column type as written in config.
func parseType(s string) (colType, error) {
	orig := s
	s = strings.Join(strings.Fields(strings.ToLower(s)), " ")
	var t colType
	if strings.HasSuffix(s, "[]") {
		t.array = true
		s = strings.TrimSpace(strings.TrimSuffix(s, "[]"))
	}
	var args []int
	if i := strings.IndexByte(s, '('); i >= 0 {
		if !strings.HasSuffix(s, ")") {
			return t, fmt.Errorf("unknown type %q (inside a YAML {…} mapping, quote a type with a comma: \"numeric(12,2)\")", orig)
		}
		for _, a := range strings.Split(s[i+1:len(s)-1], ",") {
			n, err := strconv.Atoi(strings.TrimSpace(a))
			if err != nil {
				return t, fmt.Errorf("unknown type %q: bad modifier", orig)
			}
			args = append(args, n)
		}
		s = strings.TrimSpace(s[:i])
	}
	k, ok := typeAliases[s]
	if !ok {
		return t, fmt.Errorf("unknown type %q (supported: %s)", orig, supportedTypes)
	}
	t.kind = k
	switch {
	case k == kVarchar:
		if len(args) != 1 || args[0] < 1 || args[0] > maxVarchar {
			return t, fmt.Errorf("type %q: varchar needs one length between 1 and %d", orig, maxVarchar)
		}
		t.n = args[0]
	case k == kNumeric && len(args) > 0:
		if len(args) > 2 || args[0] < 1 || args[0] > 1000 {
			return t, fmt.Errorf("type %q: numeric precision must be between 1 and 1000", orig)
		}
		t.prec = args[0]
		if len(args) == 2 {
			t.scale = args[1]
		}
		if t.scale < 0 || t.scale > t.prec {
			return t, fmt.Errorf("type %q: numeric scale must be between 0 and the precision", orig)
		}
	case len(args) > 0:
		return t, fmt.Errorf("type %q: %s takes no modifier", orig, kindNames[k])
	}
	return t, nil
}

const supportedTypes = "text, varchar(n), boolean, smallint, integer, bigint, numeric, numeric(p,s), " +
	"real, double precision, timestamptz, timestamp, date, uuid, bytea, jsonb, json, inet, cidr, macaddr, macaddr8, and arrays of these as T[]"

// String returns the canonical DDL spelling.
func (t colType) String() string {
	s := kindNames[t.kind]
	switch {
	case t.kind == kVarchar:
		s = fmt.Sprintf("varchar(%d)", t.n)
	case t.kind == kNumeric && t.prec > 0:
		s = fmt.Sprintf("numeric(%d,%d)", t.prec, t.scale)
	}
	if t.array {
		s += "[]"
	}
	return s
}

// elem returns the element type of an array type.
func (t colType) elem() colType {
	t.array = false
	return t
}

// CanonicalType returns the canonical DDL spelling of a column type as
// written in config ("int8" → "bigint", "numeric(5)" → "numeric(5,0)").
func CanonicalType(s string) (string, error) {
	t, err := parseType(s)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}

// TypeAccepts reports whether a PostgreSQL column of type have (as
// format_type prints it, or any spelling config accepts) accepts every
// value transform writes for a column of type want, without loss.
// Identical types, wider integers, numeric for integers, text for varchar,
// a longer varchar, double precision for real, inet for cidr (inet reads
// every cidr text as the same network) and a numeric(p,s) with room for
// numeric(p2,s2) are accepted.
func TypeAccepts(have, want string) bool {
	h, err1 := parseType(have)
	w, err2 := parseType(want)
	if err1 != nil || err2 != nil {
		return strings.EqualFold(strings.TrimSpace(have), strings.TrimSpace(want))
	}
	if h.array != w.array {
		return false
	}
	if h == w {
		return true
	}
	intRank := map[kind]int{kSmallint: 1, kInteger: 2, kBigint: 3}
	intDigits := map[kind]int{kSmallint: 5, kInteger: 10, kBigint: 19}
	switch h.kind {
	case kText:
		return w.kind == kVarchar
	case kVarchar:
		return w.kind == kVarchar && w.n <= h.n
	case kSmallint, kInteger, kBigint:
		return intRank[w.kind] > 0 && intRank[w.kind] <= intRank[h.kind]
	case kNumeric:
		if h.prec == 0 {
			return w.kind == kNumeric || intRank[w.kind] > 0
		}
		switch {
		case intRank[w.kind] > 0:
			return h.prec-h.scale >= intDigits[w.kind]
		case w.kind == kNumeric && w.prec > 0:
			return h.scale >= w.scale && h.prec-h.scale >= w.prec-w.scale
		}
	case kDouble:
		return w.kind == kReal
	case kInet:
		return w.kind == kCidr
	}
	return false
}
