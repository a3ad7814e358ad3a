package transform

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mongopg/replicator/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestTypeTablePostgres feeds every converted value to a real PostgreSQL
// as text input for its column type and records what PostgreSQL reads
// back (testdata/types_pg.golden): the text is accepted, and the value is
// the exact one the type table promises.
func TestTypeTablePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pool := testenv.Postgres(t)
	ctx := context.Background()
	var b strings.Builder
	for _, c := range typeCases {
		in, ok := convertCase(t, c)
		if !ok {
			continue
		}
		typ, _ := CanonicalType(c.typ)
		var out string
		err := pool.QueryRow(ctx, fmt.Sprintf("SELECT $1::text::%s::text", typ), in).Scan(&out)
		if err != nil {
			t.Errorf("%s: PostgreSQL rejects %q as %s: %v", c.name, truncate(in, 80), typ, err)
			continue
		}
		fmt.Fprintf(&b, "%-34s %-18s %s\n", c.name, c.typ, out)
	}
	golden(t, "types_pg.golden", []byte(b.String()))
}

// TestTypeLimitsPostgres checks that values transform rejects as out of
// range are rejected by PostgreSQL too, so the limits are not stricter
// than the database's without reason.
func TestTypeLimitsPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pool := testenv.Postgres(t)
	tests := []struct{ name, text, typ string }{
		{"timestamptz_294277", "294277-01-01T00:00:00.000Z", "timestamptz"},
		{"timestamptz_before_4713_bc", "4714-11-23T23:59:59.999Z BC", "timestamptz"},
		{"smallint_overflow", "32768", "smallint"},
		{"integer_overflow", "2147483648", "integer"},
		{"numeric_p_s_overflow", "1000", "numeric(5,2)"},
		{"jsonb_nul", `"a\u0000b"`, "jsonb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out string
			err := pool.QueryRow(context.Background(), fmt.Sprintf("SELECT $1::text::%s::text", tt.typ), tt.text).Scan(&out)
			if err == nil {
				t.Fatalf("PostgreSQL accepts %q as %s (%q); transform rejects it", tt.text, tt.typ, out)
			}
		})
	}
}
