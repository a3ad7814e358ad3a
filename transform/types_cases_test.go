package transform

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// typeCase is one cell of the BSON → PostgreSQL type table.
type typeCase struct {
	name string
	val  any // marshalled as the value of field "v"; missingValue for none
	typ  string
}

type missingMarker struct{}

var missingValue = missingMarker{}

func dec(s string) bson.Decimal128 {
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		panic(err)
	}
	return d
}

func date(y int, mo time.Month, d, h, mi, s, ms int) bson.DateTime {
	return bson.NewDateTimeFromTime(time.Date(y, mo, d, h, mi, s, ms*1e6, time.UTC))
}

func oid() bson.ObjectID {
	id, _ := bson.ObjectIDFromHex("65a1b2c3d4e5f60718293a4b")
	return id
}

var uuidBytes = []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

// typeCases covers every cell of the type table in TYPES.md.
var typeCases = []typeCase{
	// ObjectId
	{"objectid/text", oid(), "text"},
	{"objectid/jsonb", oid(), "jsonb"},
	{"objectid/uuid", oid(), "uuid"},
	{"objectid/bytea", oid(), "bytea"},
	// string
	{"string/text", "héllo \"wörld\"\n", "text"},
	{"string/varchar_fits", "héllo", "varchar(5)"},
	{"string/varchar_too_long", "héllo!", "varchar(5)"},
	{"string/jsonb", "a\"b\\c\u2028<&>\x01", "jsonb"},
	{"string/nul_text", "a\x00b", "text"},
	{"string/nul_jsonb", "a\x00b", "jsonb"},
	{"string/invalid_utf8", "a\xffb", "text"},
	{"string/uuid", "00112233-4455-6677-8899-AABBCCDDEEFF", "uuid"},
	{"string/uuid_hex", "00112233445566778899aabbccddeeff", "uuid"},
	{"string/uuid_bad", "not-a-uuid", "uuid"},
	{"string/integer", "42", "integer"},
	{"string/timestamptz", "2024-01-01", "timestamptz"},
	{"string/boolean", "true", "boolean"},
	// int32
	{"int32/smallint", int32(-32768), "smallint"},
	{"int32/smallint_overflow", int32(32768), "smallint"},
	{"int32/integer", int32(math.MinInt32), "integer"},
	{"int32/bigint", int32(7), "bigint"},
	{"int32/numeric", int32(-7), "numeric"},
	{"int32/real", int32(16777216), "real"},
	{"int32/double", int32(math.MaxInt32), "double precision"},
	{"int32/text", int32(-12), "text"},
	{"int32/jsonb", int32(12), "jsonb"},
	{"int32/boolean", int32(1), "boolean"},
	// int64
	{"int64/bigint_max", int64(math.MaxInt64), "bigint"},
	{"int64/bigint_min", int64(math.MinInt64), "bigint"},
	{"int64/integer_overflow", int64(1 << 31), "integer"},
	{"int64/numeric", int64(math.MaxInt64), "numeric"},
	{"int64/double_exact", int64(1 << 53), "double precision"},
	{"int64/double_inexact", int64(1<<53 + 1), "double precision"},
	{"int64/real_inexact", int64(1<<53 + 1), "real"},
	{"int64/text", int64(math.MinInt64), "text"},
	{"int64/jsonb", int64(math.MaxInt64), "jsonb"},
	// double
	{"double/double", 1.5, "double precision"},
	{"double/double_tenth", 0.1, "double precision"},
	{"double/double_large", 1e300, "double precision"},
	{"double/double_subnormal", 5e-324, "double precision"},
	{"double/double_negzero", math.Copysign(0, -1), "double precision"},
	{"double/double_nan", math.NaN(), "double precision"},
	{"double/double_inf", math.Inf(1), "double precision"},
	{"double/double_neginf", math.Inf(-1), "double precision"},
	{"double/numeric_tenth", 0.1, "numeric"},
	{"double/numeric_large", 1e21, "numeric"},
	{"double/numeric_small", 1.25e-10, "numeric"},
	{"double/numeric_negzero", math.Copysign(0, -1), "numeric"},
	{"double/numeric_nan", math.NaN(), "numeric"},
	{"double/numeric_inf", math.Inf(1), "numeric"},
	{"double/numeric_neginf", math.Inf(-1), "numeric"},
	{"double/numeric_p_s_fits", 123.45, "numeric(5,2)"},
	{"double/numeric_p_s_rounds", 1.005, "numeric(5,2)"},
	{"double/numeric_p_s_overflow", 12345.0, "numeric(5,2)"},
	{"double/numeric_p_s_inf", math.Inf(1), "numeric(5,2)"},
	{"double/integer_integral", 3.0, "integer"},
	{"double/integer_fraction", 3.5, "integer"},
	{"double/bigint_too_large", 1e19, "bigint"},
	{"double/real_exact", 1.5, "real"},
	{"double/real_inexact", 0.1, "real"},
	{"double/real_nan", math.NaN(), "real"},
	{"double/text", 0.1, "text"},
	{"double/jsonb_integral", 1.0, "jsonb"},
	{"double/jsonb_fraction", 0.1, "jsonb"},
	{"double/jsonb_large", 1e21, "jsonb"},
	{"double/jsonb_nan", math.NaN(), "jsonb"},
	{"double/jsonb_inf", math.Inf(1), "jsonb"},
	{"double/jsonb_neginf", math.Inf(-1), "jsonb"},
	// Decimal128
	{"decimal/numeric_scale", dec("1.50"), "numeric"},
	{"decimal/numeric_exponent", dec("1.5E+3"), "numeric"},
	{"decimal/numeric_negative", dec("-0.000123"), "numeric"},
	{"decimal/numeric_negzero", dec("-0.00"), "numeric"},
	{"decimal/numeric_34_digits", dec("1234567890123456789012345678901234"), "numeric"},
	{"decimal/numeric_max", dec("9.999999999999999999999999999999999E+6144"), "numeric"},
	{"decimal/numeric_min_positive", dec("1E-6176"), "numeric"},
	{"decimal/numeric_nan", dec("NaN"), "numeric"},
	{"decimal/numeric_inf", dec("Infinity"), "numeric"},
	{"decimal/numeric_neginf", dec("-Infinity"), "numeric"},
	{"decimal/numeric_p_s_fits", dec("123.40"), "numeric(5,2)"},
	{"decimal/numeric_p_s_rounds", dec("1.234"), "numeric(5,2)"},
	{"decimal/numeric_p_s_overflow", dec("1E+3"), "numeric(5,2)"},
	{"decimal/bigint_integral", dec("4.2E+1"), "bigint"},
	{"decimal/bigint_fraction", dec("1.5"), "bigint"},
	{"decimal/double", dec("1.5"), "double precision"},
	{"decimal/text", dec("1.50"), "text"},
	{"decimal/jsonb", dec("1.50"), "jsonb"},
	// boolean
	{"bool/boolean", true, "boolean"},
	{"bool/text", false, "text"},
	{"bool/jsonb", true, "jsonb"},
	{"bool/integer", true, "integer"},
	// date
	{"date/timestamptz", date(2024, 2, 29, 13, 14, 15, 678), "timestamptz"},
	{"date/timestamptz_epoch", bson.DateTime(0), "timestamptz"},
	{"date/timestamptz_before_1970", bson.DateTime(-1), "timestamptz"},
	{"date/timestamptz_year_1", date(1, 1, 1, 0, 0, 0, 0), "timestamptz"},
	{"date/timestamptz_1_bc", date(0, 12, 31, 23, 59, 59, 999), "timestamptz"},
	{"date/timestamptz_4713_bc", bson.DateTime(-210866803200000), "timestamptz"},
	{"date/timestamptz_before_4713_bc", bson.DateTime(-210866803200001), "timestamptz"},
	{"date/timestamptz_9999", date(9999, 12, 31, 23, 59, 59, 999), "timestamptz"},
	{"date/timestamptz_10000", date(10000, 1, 1, 0, 0, 0, 0), "timestamptz"},
	{"date/timestamptz_294276", date(294276, 12, 31, 23, 59, 59, 999), "timestamptz"},
	{"date/timestamptz_294277", date(294277, 1, 1, 0, 0, 0, 0), "timestamptz"},
	{"date/timestamptz_min_int64", bson.DateTime(math.MinInt64), "timestamptz"},
	{"date/timestamp", date(2024, 2, 29, 13, 14, 15, 678), "timestamp"},
	{"date/timestamp_bc", date(-99, 3, 1, 12, 0, 0, 0), "timestamp"},
	{"date/date_midnight", date(2024, 2, 29, 0, 0, 0, 0), "date"},
	{"date/date_bc", date(-44, 3, 15, 0, 0, 0, 0), "date"},
	{"date/date_with_time", date(2024, 2, 29, 0, 0, 0, 1), "date"},
	{"date/text", date(2024, 2, 29, 13, 14, 15, 678), "text"},
	{"date/jsonb", date(2024, 2, 29, 13, 14, 15, 600), "jsonb"},
	{"date/jsonb_before_1970", bson.DateTime(-1), "jsonb"},
	{"date/jsonb_after_9999", date(10000, 1, 1, 0, 0, 0, 0), "jsonb"},
	{"date/bigint", bson.DateTime(0), "bigint"},
	// timestamp (BSON)
	{"timestamp/timestamptz", bson.Timestamp{T: 1700000000, I: 7}, "timestamptz"},
	{"timestamp/jsonb", bson.Timestamp{T: 1700000000, I: 7}, "jsonb"},
	{"timestamp/date", bson.Timestamp{T: 1700000000, I: 7}, "date"},
	{"timestamp/bigint", bson.Timestamp{T: 1700000000, I: 7}, "bigint"},
	// null, undefined, missing
	{"null/text", nil, "text"},
	{"null/jsonb", nil, "jsonb"},
	{"null/integer", nil, "integer"},
	{"undefined/text", bson.Undefined{}, "text"},
	{"undefined/jsonb", bson.Undefined{}, "jsonb"},
	{"missing/text", missingValue, "text"},
	{"missing/uuid", missingValue, "uuid"},
	// binary
	{"binary_uuid4/uuid", bson.Binary{Subtype: 4, Data: uuidBytes}, "uuid"},
	{"binary_uuid4/text", bson.Binary{Subtype: 4, Data: uuidBytes}, "text"},
	{"binary_uuid4/bytea", bson.Binary{Subtype: 4, Data: uuidBytes}, "bytea"},
	{"binary_uuid4/jsonb", bson.Binary{Subtype: 4, Data: uuidBytes}, "jsonb"},
	{"binary_uuid4/uuid_short", bson.Binary{Subtype: 4, Data: uuidBytes[:15]}, "uuid"},
	{"binary_uuid3/uuid", bson.Binary{Subtype: 3, Data: uuidBytes}, "uuid"},
	{"binary_generic/bytea", bson.Binary{Subtype: 0, Data: []byte{0, 1, 0xfe, 0xff}}, "bytea"},
	{"binary_generic/bytea_empty", bson.Binary{Subtype: 0, Data: []byte{}}, "bytea"},
	{"binary_generic/uuid", bson.Binary{Subtype: 0, Data: uuidBytes}, "uuid"},
	{"binary_generic/text", bson.Binary{Subtype: 0, Data: []byte{1, 2}}, "text"},
	{"binary_generic/jsonb", bson.Binary{Subtype: 0x80, Data: []byte{1, 2}}, "jsonb"},
	// regex, JavaScript, symbol, code with scope, MinKey, MaxKey, DBRef, DBPointer
	{"regex/jsonb", bson.Regex{Pattern: `^a"b\d$`, Options: "xi"}, "jsonb"},
	{"regex/text", bson.Regex{Pattern: "^a", Options: "i"}, "text"},
	{"regex/integer", bson.Regex{Pattern: "^a", Options: "i"}, "integer"},
	{"javascript/jsonb", bson.JavaScript("function() { return 1; }"), "jsonb"},
	{"javascript/text", bson.JavaScript("x"), "text"},
	{"codewithscope/jsonb", bson.CodeWithScope{Code: "f(x)", Scope: bson.D{{Key: "x", Value: int32(1)}}}, "jsonb"},
	{"symbol/text", bson.Symbol("sym"), "text"},
	{"symbol/jsonb", bson.Symbol("sym"), "jsonb"},
	{"minkey/jsonb", bson.MinKey{}, "jsonb"},
	{"minkey/text", bson.MinKey{}, "text"},
	{"maxkey/jsonb", bson.MaxKey{}, "jsonb"},
	{"dbref/jsonb", bson.D{{Key: "$ref", Value: "users"}, {Key: "$id", Value: oid()}}, "jsonb"},
	{"dbpointer/jsonb", bson.DBPointer{DB: "app.users", Pointer: oid()}, "jsonb"},
	// inet, cidr (strings)
	{"string/inet_v4", "10.0.0.1", "inet"},
	{"string/inet_v4_prefix", "10.1.2.3/8", "inet"},
	{"string/inet_v4_zero", "0.0.0.0/0", "inet"},
	{"string/inet_v6", "2001:DB8:0:0:0:0:0:1", "inet"},
	{"string/inet_v6_prefix", "2001:db8::/32", "inet"},
	{"string/inet_v6_first_longest_zeros", "1:0:0:1:0:0:0:1", "inet"},
	{"string/inet_v6_single_zero", "1:2:3:4:5:6:7::", "inet"},
	{"string/inet_v6_unspecified", "::", "inet"},
	{"string/inet_v6_loopback", "::1", "inet"},
	{"string/inet_v4_mapped", "::FFFF:10.0.0.1", "inet"},
	{"string/inet_v4_mapped_prefix", "::ffff:10.0.0.1/120", "inet"},
	{"string/inet_v4_compatible", "::10.0.0.1", "inet"},
	{"string/inet_v4_compatible_hex", "::1:2", "inet"},
	{"string/inet_zone", "fe80::1%eth0", "inet"},
	{"string/inet_zone_prefix", "fe80::1%eth0/64", "inet"},
	{"string/inet_v4_abbreviated", "10/8", "inet"},
	{"string/inet_v4_leading_zero", "010.0.0.1", "inet"},
	{"string/inet_v4_prefix_too_long", "10.0.0.1/33", "inet"},
	{"string/inet_v6_prefix_too_long", "::1/129", "inet"},
	{"string/inet_prefix_leading_zero", "10.0.0.1/08", "inet"},
	{"string/inet_prefix_empty", "10.0.0.1/", "inet"},
	{"string/inet_space", " 10.0.0.1", "inet"},
	{"string/inet_bad", "not an address", "inet"},
	{"string/inet_empty", "", "inet"},
	{"string/cidr", "10.0.0.0/8", "cidr"},
	{"string/cidr_host", "10.0.0.1", "cidr"},
	{"string/cidr_all", "0.0.0.0/0", "cidr"},
	{"string/cidr_v6", "2001:DB8::/32", "cidr"},
	{"string/cidr_v6_host", "2001:db8::1", "cidr"},
	{"string/cidr_v4_mapped", "::ffff:10.0.0.0/120", "cidr"},
	{"string/cidr_host_bits", "10.0.0.1/8", "cidr"},
	{"string/cidr_v6_host_bits", "::ffff:1.2.3.4/96", "cidr"},
	{"string/cidr_v4_abbreviated", "10/8", "cidr"},
	{"string/cidr_zone", "fe80::%1", "cidr"},
	{"symbol/inet", bson.Symbol("10.0.0.1"), "inet"},
	{"int32/inet", int32(167772161), "inet"},
	{"binary_generic/cidr", bson.Binary{Subtype: 0, Data: []byte{10, 0, 0, 0}}, "cidr"},
	{"document/inet", bson.D{{Key: "ip", Value: "10.0.0.1"}}, "inet"},
	{"null/inet", nil, "inet"},
	{"missing/cidr", missingValue, "cidr"},
	// macaddr, macaddr8 (strings)
	{"string/macaddr_colons", "08:00:2b:01:02:03", "macaddr"},
	{"string/macaddr_dashes", "08-00-2B-01-02-03", "macaddr"},
	{"string/macaddr_3_colon_3", "08002b:010203", "macaddr"},
	{"string/macaddr_3_dash_3", "08002b-010203", "macaddr"},
	{"string/macaddr_dots", "0800.2b01.0203", "macaddr"},
	{"string/macaddr_2_dashes", "0800-2b01-0203", "macaddr"},
	{"string/macaddr_plain", "08002B010203", "macaddr"},
	{"string/macaddr_mixed_separators", "08:00-2b:01:02:03", "macaddr"},
	{"string/macaddr_other_grouping", "0800:2b01:0203", "macaddr"},
	{"string/macaddr_one_digit", "8:0:2b:1:2:3", "macaddr"},
	{"string/macaddr_5_bytes", "08:00:2b:01:02", "macaddr"},
	{"string/macaddr_8_bytes", "08:00:2b:01:02:03:04:05", "macaddr"},
	{"string/macaddr_not_hex", "08:00:2b:01:02:0g", "macaddr"},
	{"string/macaddr_trailing_separator", "08:00:2b:01:02:03:", "macaddr"},
	{"string/macaddr8", "08:00:2b:01:02:03:04:05", "macaddr8"},
	{"string/macaddr8_dashes", "08-00-2B-01-02-03-04-05", "macaddr8"},
	{"string/macaddr8_dots", "0800.2b01.0203.0405", "macaddr8"},
	{"string/macaddr8_3_colon_5", "08002b:0102030405", "macaddr8"},
	{"string/macaddr8_4_colon_4", "08002b01:02030405", "macaddr8"},
	{"string/macaddr8_plain", "08002b0102030405", "macaddr8"},
	{"string/macaddr8_6_bytes", "08:00:2b:01:02:03", "macaddr8"},
	{"string/macaddr8_6_bytes_dots", "0800.2b01.0203", "macaddr8"},
	{"string/macaddr8_7_bytes", "08:00:2b:01:02:03:04", "macaddr8"},
	{"string/macaddr8_9_bytes", "08:00:2b:01:02:03:04:05:06", "macaddr8"},
	{"string/macaddr8_mixed_separators", "08:00:2b:01:02:03:04-05", "macaddr8"},
	{"string/macaddr8_trailing_separator", "08:00:2b:01:02:03:04:05:", "macaddr8"},
	{"string/macaddr8_space", "08:00:2b:01:02:03:04:05 ", "macaddr8"},
	{"binary_generic/macaddr", bson.Binary{Subtype: 0, Data: []byte{8, 0, 0x2b, 1, 2, 3}}, "macaddr"},
	{"int64/macaddr8", int64(0x08002b0102030405), "macaddr8"},
	{"null/macaddr", nil, "macaddr"},
	{"undefined/macaddr8", bson.Undefined{}, "macaddr8"},
	// json: as jsonb
	{"string/json", "a\"b\\c\u2028<&>\x01", "json"},
	{"string/nul_json", "a\x00b", "json"},
	{"int64/json", int64(math.MaxInt64), "json"},
	{"double/json_nan", math.NaN(), "json"},
	{"objectid/json", oid(), "json"},
	{"document/json", bson.D{{Key: "z", Value: int32(1)}, {Key: "a", Value: bson.D{{Key: "k", Value: "v"}}}, {Key: "a", Value: "dup"}}, "json"},
	{"array/json", bson.A{int32(1), "two", nil, bson.D{{Key: "three", Value: 3.0}}}, "json"},
	{"null/json", nil, "json"},
	// nested document
	{"document/jsonb", bson.D{{Key: "z", Value: int32(1)}, {Key: "a", Value: bson.D{{Key: "k", Value: "v"}}}, {Key: "a", Value: "dup"}}, "jsonb"},
	{"document/text", bson.D{{Key: "a", Value: int64(1)}}, "text"},
	{"document/integer", bson.D{{Key: "a", Value: int64(1)}}, "integer"},
	{"document/nul_key_value", bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: "x\x00"}}}}, "jsonb"},
	// array
	{"array/jsonb", bson.A{int32(1), "two", nil, bson.D{{Key: "three", Value: 3.0}}}, "jsonb"},
	{"array/text[]", bson.A{"a", `q"uote`, `back\slash`, nil, "", "NULL", "{x,y}"}, "text[]"},
	{"array/bigint[]", bson.A{int32(1), int64(math.MaxInt64), nil}, "bigint[]"},
	{"array/integer[]_overflow", bson.A{int32(1), int64(math.MaxInt64)}, "integer[]"},
	{"array/uuid[]", bson.A{bson.Binary{Subtype: 4, Data: uuidBytes}, "00112233-4455-6677-8899-aabbccddeeff"}, "uuid[]"},
	{"array/timestamptz[]", bson.A{date(2024, 1, 2, 3, 4, 5, 6), date(0, 1, 1, 0, 0, 0, 0)}, "timestamptz[]"},
	{"array/numeric[]", bson.A{dec("1.50"), 0.1, int64(3), dec("NaN")}, "numeric[]"},
	{"array/boolean[]", bson.A{true, false}, "boolean[]"},
	{"array/bytea[]", bson.A{bson.Binary{Data: []byte{0xab}}}, "bytea[]"},
	{"array/jsonb[]", bson.A{bson.D{{Key: "a", Value: `"`}}, bson.A{int32(1)}}, "jsonb[]"},
	{"array/inet[]", bson.A{"10.0.0.1", nil, "2001:DB8::1/64", "::ffff:10.0.0.1"}, "inet[]"},
	{"array/inet[]_bad_element", bson.A{"10.0.0.1", "10.0.0.256"}, "inet[]"},
	{"array/inet[]_not_an_array", "10.0.0.1", "inet[]"},
	{"array/cidr[]", bson.A{"10.0.0.0/8", "::/0", nil}, "cidr[]"},
	{"array/cidr[]_host_bits", bson.A{"10.0.0.0/8", "10.0.0.1/8"}, "cidr[]"},
	{"array/macaddr[]", bson.A{"08:00:2b:01:02:03", "0800.2B01.0203", nil}, "macaddr[]"},
	{"array/macaddr[]_not_string", bson.A{"08:00:2b:01:02:03", int32(1)}, "macaddr[]"},
	{"array/macaddr8[]", bson.A{"08:00:2b:01:02:03:04:05", "08002b010203"}, "macaddr8[]"},
	{"array/json[]", bson.A{bson.D{{Key: "a", Value: `"`}}, bson.A{int32(1)}, nil}, "json[]"},
	{"array/empty", bson.A{}, "text[]"},
	{"array/nested", bson.A{bson.A{"a"}}, "text[]"},
	{"array/not_an_array", "a", "text[]"},
	{"array/text", bson.A{"a", int32(1)}, "text"},
}

// FuzzNetText converts an arbitrary string to inet, cidr, macaddr and
// macaddr8. What is accepted is written in one canonical spelling:
// converting the written text again gives the same text. (What PostgreSQL
// reads is checked by TestInetTextPostgres and TestTypeTablePostgres.)
func FuzzNetText(f *testing.F) {
	for _, c := range typeCases {
		if s, ok := c.val.(string); ok {
			f.Add(s)
		}
	}
	types := []colType{{kind: kInet}, {kind: kCidr}, {kind: kMacaddr}, {kind: kMacaddr8}}
	f.Fuzz(func(t *testing.T, s string) {
		for _, typ := range types {
			out, null, err := convert(typ, rawOf(t, s), uuidStandard)
			if err != nil {
				continue
			}
			if null {
				t.Fatalf("%s %q: NULL", typ, s)
			}
			again, _, err := convert(typ, rawOf(t, out), uuidStandard)
			if err != nil || again != out {
				t.Fatalf("%s %q: wrote %q, which converts to %q, %v", typ, s, out, again, err)
			}
			if typ.kind == kInet || typ.kind == kCidr {
				p, err := netip.ParsePrefix(out)
				if err != nil || (typ.kind == kCidr && p.Masked() != p) {
					t.Fatalf("%s %q: wrote %q, not a prefix of its type: %v", typ, s, out, err)
				}
			}
		}
	})
}
