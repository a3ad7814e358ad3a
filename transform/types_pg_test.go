package transform

import (
	"context"
	"fmt"
	"net/netip"
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

// TestNetRefusedPostgres lists strings transform refuses for the network
// and MAC address types, and whether PostgreSQL reads them: those it
// refuses too, and those it reads by rules transform does not guess at
// (abbreviated and zero-padded IPv4, one-digit MAC bytes, trailing
// separators and spaces), which TYPES.md names.
func TestNetRefusedPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pool := testenv.Postgres(t)
	tests := []struct {
		text, typ string
		pgReads   bool
	}{
		{"fe80::1%eth0", "inet", false},
		{"fe80::%1", "cidr", false},
		{"10.0.0.1/33", "inet", false},
		{"::1/129", "inet", false},
		{"::1/08", "inet", false},
		{"10.0.0.1/", "inet", false},
		{" 10.0.0.1", "inet", false},
		{"10.0.0.256", "inet", false},
		{"", "inet", false},
		{"10.0.0.1/8", "cidr", false},
		{"::ffff:1.2.3.4/96", "cidr", false},
		{"08:00-2b:01:02:03", "macaddr", false},
		{"0800:2b01:0203", "macaddr", false},
		{"08:00:2b:01:02", "macaddr", false},
		{"08:00:2b:01:02:03:04:05", "macaddr", false},
		{"08:00:2b:01:02:03:", "macaddr", false},
		{"08:00:2b:01:02:0g", "macaddr", false},
		{"08:00:2b:01:02:03:04", "macaddr8", false},
		{"08:00:2b:01:02:03:04:05:06", "macaddr8", false},
		{"08:00:2b:01:02:03:04-05", "macaddr8", false},

		{"10/8", "inet", true},
		{"10/8", "cidr", true},
		{"10", "cidr", true},
		{"010.0.0.1", "inet", true},
		{"10.0.0.1/08", "inet", true},
		{"8:0:2b:1:2:3", "macaddr", true},
		{"08:00:2b:01:02:03 ", "macaddr", true},
		{"08:00:2b:01:02:03:04:05:", "macaddr8", true},
		{"08:00:2b:01:02:03:04:05 ", "macaddr8", true},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.text, func(t *testing.T) {
			typ, err := parseType(tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if got, _, err := convert(typ, rawOf(t, tt.text), uuidStandard); err == nil {
				t.Fatalf("transform accepts %q as %s (%q)", tt.text, tt.typ, got)
			}
			var out string
			err = pool.QueryRow(context.Background(), fmt.Sprintf("SELECT $1::text::%s::text", tt.typ), tt.text).Scan(&out)
			if (err == nil) != tt.pgReads {
				t.Fatalf("PostgreSQL reads %q as %s: %q, %v; want reads = %v", tt.text, tt.typ, out, err, tt.pgReads)
			}
		})
	}
}

// TestInetTextPostgres writes IPv6 addresses with every pattern of zero
// and non-zero groups, and IPv4 addresses, under several prefix lengths,
// as inet and cidr, and checks that PostgreSQL reads the input and the
// text transform wrote as the same value, whose text is exactly what
// transform wrote.
func TestInetTextPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pool := testenv.Postgres(t)
	var addrs []netip.Addr
	groups := []uint16{1, 0xabc, 0xffff, 0x102}
	for pattern := range 256 {
		var ip [16]byte
		for i := range 8 {
			if pattern&(1<<i) != 0 {
				g := groups[(i+pattern)%len(groups)]
				ip[2*i], ip[2*i+1] = byte(g>>8), byte(g)
			}
		}
		addrs = append(addrs, netip.AddrFrom16(ip))
		if pattern < 64 {
			// The first five groups zero, the sixth ffff: IPv4-mapped.
			ip = [16]byte{10: 0xff, 11: 0xff, 12: byte(pattern), 13: 1, 14: byte(pattern >> 3), 15: 7}
			addrs = append(addrs, netip.AddrFrom16(ip))
		}
	}
	addrs = append(addrs, netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("192.168.1.77"))
	var inputs, types, written []string
	for _, a := range addrs {
		for _, bits := range []int{-1, 0, 7, 24, 64, 96, 120, a.BitLen()} {
			if bits > a.BitLen() {
				continue
			}
			in := a.String()
			if bits >= 0 {
				in = netip.PrefixFrom(a, bits).String()
			}
			for _, typ := range []string{"inet", "cidr"} {
				if typ == "cidr" && bits >= 0 {
					in = netip.PrefixFrom(a, bits).Masked().String()
				}
				ct, _ := parseType(typ)
				out, _, err := convert(ct, rawOf(t, in), uuidStandard)
				if err != nil {
					t.Fatalf("%s %q: %v", typ, in, err)
				}
				inputs, types, written = append(inputs, in), append(types, typ), append(written, out)
			}
		}
	}
	rows, err := pool.Query(context.Background(), `
		SELECT i, t, w,
			CASE t WHEN 'inet' THEN i::inet::text ELSE i::cidr::text END,
			CASE t WHEN 'inet' THEN w::inet::text ELSE w::cidr::text END
		FROM unnest($1::text[], $2::text[], $3::text[]) AS u(i, t, w)`, inputs, types, written)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var in, typ, w, fromInput, fromWritten string
		if err := rows.Scan(&in, &typ, &w, &fromInput, &fromWritten); err != nil {
			t.Fatal(err)
		}
		if fromInput != w || fromWritten != w {
			t.Errorf("%s %q: transform writes %q; PostgreSQL reads the input as %q, the written text as %q", typ, in, w, fromInput, fromWritten)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(inputs) {
		t.Fatalf("PostgreSQL returned %d rows for %d values", n, len(inputs))
	}
}

// TestNetColumnsPostgres creates a table with DDL's columns of the types
// added for network addresses and json, and checks that the catalog's
// format_type of each column is the canonical type and passes the
// existing-table check (TypeAccepts) for the mapped type.
func TestNetColumnsPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pool := testenv.Postgres(t)
	ctx := context.Background()
	types := []string{"inet", "cidr", "macaddr", "macaddr8", "json", "inet[]", "cidr[]", "macaddr[]", "macaddr8[]", "json[]"}
	def := TableDef{Name: "net.hosts", Columns: []ColumnDef{{Name: "id", Type: "text", NotNull: true}}, Key: []string{"id"}}
	for i, typ := range types {
		def.Columns = append(def.Columns, ColumnDef{Name: fmt.Sprintf("c%d", i), Type: typ})
	}
	ddl := DDL([]*Mapping{{ns: "net.hosts", tables: []TableDef{def}}})
	if err := CheckDDL(ddl); err != nil {
		t.Fatalf("%v\n%s", err, ddl)
	}
	if _, err := pool.Exec(ctx, ddl); err != nil {
		t.Fatalf("apply DDL: %v\n%s", err, ddl)
	}
	for i, typ := range types {
		var have string
		err := pool.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
			WHERE attrelid = 'net.hosts'::regclass AND attname = $1`, fmt.Sprintf("c%d", i)).Scan(&have)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := CanonicalType(have); err != nil || c != typ {
			t.Errorf("catalog type %q: CanonicalType = %q, %v; want %q", have, c, err, typ)
		}
		if !TypeAccepts(have, typ) {
			t.Errorf("TypeAccepts(%q, %q) = false", have, typ)
		}
	}
}
