package transform

import (
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// rawOf returns the BSON value of c as the docIter would see it.
func rawOf(t testing.TB, val any) rawValue {
	t.Helper()
	if _, ok := val.(missingMarker); ok {
		return rawValue{}
	}
	doc, err := bson.Marshal(bson.D{{Key: "v", Value: val}})
	if err != nil {
		t.Fatalf("marshal %T: %v", val, err)
	}
	v, err := lookup(doc, "v")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// convert converts v the way rows do, through an arena: its text, or null
// for SQL NULL.
func convert(t colType, v rawValue, order uuidOrder) (text string, null bool, err error) {
	val, err := newArena(0).convert(t, v, order)
	return val.Text, !val.Valid && err == nil, err
}

// convertCase runs one cell: the text, "NULL", or "ERROR: ...".
func convertCase(t testing.TB, c typeCase) (out string, ok bool) {
	typ, err := parseType(c.typ)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	s, null, err := convert(typ, rawOf(t, c.val), uuidStandard)
	switch {
	case err != nil:
		return "ERROR: " + err.Error(), false
	case null:
		return "NULL", false
	}
	return s, true
}

// TestTypeTable checks every cell of the type table against
// testdata/types.golden.
func TestTypeTable(t *testing.T) {
	var b strings.Builder
	seen := map[string]bool{}
	for _, c := range typeCases {
		if seen[c.name] {
			t.Fatalf("duplicate case %s", c.name)
		}
		seen[c.name] = true
		out, _ := convertCase(t, c)
		fmt.Fprintf(&b, "%-34s %-18s %s\n", c.name, c.typ, out)
	}
	golden(t, "types.golden", []byte(b.String()))
}

func TestTypeTableDeterministic(t *testing.T) {
	for _, c := range typeCases {
		t.Run(c.name, func(t *testing.T) {
			a, _ := convertCase(t, c)
			b, _ := convertCase(t, c)
			if a != b {
				t.Fatalf("two runs differ: %q vs %q", a, b)
			}
		})
	}
}

func TestLegacyUUIDOrders(t *testing.T) {
	v := rawOf(t, bson.Binary{Subtype: 3, Data: uuidBytes})
	tests := []struct {
		rep  string
		want string
	}{
		{"standard", "00112233-4455-6677-8899-aabbccddeeff"},
		{"python_legacy", "00112233-4455-6677-8899-aabbccddeeff"},
		{"java_legacy", "77665544-3322-1100-ffee-ddccbbaa9988"},
		{"csharp_legacy", "33221100-5544-7766-8899-aabbccddeeff"},
	}
	for _, tt := range tests {
		t.Run(tt.rep, func(t *testing.T) {
			got, _, err := convert(colType{kind: kUUID}, v, uuidOrders[tt.rep])
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseType(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "TEXT", want: "text"},
		{in: "int8", want: "bigint"},
		{in: "int", want: "integer"},
		{in: "character varying(10)", want: "varchar(10)"},
		{in: "numeric(5)", want: "numeric(5,0)"},
		{in: "decimal(12, 2)", want: "numeric(12,2)"},
		{in: "timestamp with time zone", want: "timestamptz"},
		{in: "double  precision[]", want: "double precision[]"},
		{in: "uuid[]", want: "uuid[]"},
		{in: "varchar", err: "varchar needs one length"},
		{in: "numeric(3,4)", err: "scale"},
		{in: "integer(3)", err: "takes no modifier"},
		{in: "txt", err: "unknown type"},
		{in: "json", want: "json"},
		{in: "JSON[]", want: "json[]"},
		{in: "inet", want: "inet"},
		{in: "cidr []", want: "cidr[]"},
		{in: "MACADDR", want: "macaddr"},
		{in: "macaddr8[]", want: "macaddr8[]"},
		{in: "inet(4)", err: "takes no modifier"},
		{in: "macaddr6", err: "unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CanonicalType(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestTypeAccepts(t *testing.T) {
	tests := []struct {
		have, want string
		ok         bool
	}{
		{"text", "text", true},
		{"text", "varchar(5)", true},
		{"character varying(5)", "text", false},
		{"character varying(10)", "varchar(5)", true},
		{"bigint", "integer", true},
		{"integer", "bigint", false},
		{"numeric", "bigint", true},
		{"numeric(12,2)", "numeric(10,2)", true},
		{"numeric(12,2)", "numeric(12,3)", false},
		{"numeric(12,2)", "numeric", false},
		{"double precision", "real", true},
		{"real", "double precision", false},
		{"timestamp with time zone", "timestamptz", true},
		{"timestamp without time zone", "timestamptz", false},
		{"text[]", "text", false},
		{"bigint[]", "integer[]", true},
		{"json", "jsonb", false},
		{"jsonb", "json", false},
		{"json", "json", true},
		{"inet", "inet", true},
		{"inet", "cidr", true},
		{"cidr", "inet", false},
		{"inet[]", "cidr[]", true},
		{"inet[]", "cidr", false},
		{"macaddr", "macaddr", true},
		{"macaddr8", "macaddr", false},
		{"macaddr", "macaddr8", false},
		{"text", "inet", false},
	}
	for _, tt := range tests {
		t.Run(tt.have+"<-"+tt.want, func(t *testing.T) {
			if got := TypeAccepts(tt.have, tt.want); got != tt.ok {
				t.Fatalf("TypeAccepts(%q, %q) = %v", tt.have, tt.want, got)
			}
		})
	}
}
