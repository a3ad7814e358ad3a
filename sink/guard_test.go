package sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/transform"
)

// t0 is the version of the snapshot rows in these tests: cluster time
// (100, 1), the cluster time change(seq, 100, ...) gives stream events.
var t0 = transform.Version{ClusterTime: transform.ClusterTime{T: 100, I: 1}}

// chunk encodes items as the snapshot loader does: COPY text rows per
// table (testTables order) and the root keys.
func chunk(items ...item) (rows [][]byte, keys []byte) {
	tables := testTables()
	bufs := make([]bytes.Buffer, len(tables))
	var kb bytes.Buffer
	line := func(b *bytes.Buffer, vals []transform.Value) {
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('\t')
			}
			WriteCopyText(b, v)
		}
		b.WriteByte('\n')
	}
	for _, it := range items {
		m := it.mutation()
		line(&bufs[0], m.Values)
		line(&kb, m.Key)
		for _, cr := range m.Children {
			for i := range tables {
				if tables[i].Name == cr.Table {
					for _, r := range cr.Rows {
						line(&bufs[i], r)
					}
				}
			}
		}
	}
	rows = make([][]byte, len(bufs))
	for i := range bufs {
		rows[i] = bufs[i].Bytes()
	}
	return rows, kb.Bytes()
}

// load writes items at version v through g as a snapshot chunk does: under
// the root table lock, straight in when every key is new (unless staged),
// else staged and merged. It reports whether the rows went straight in.
func load(t *testing.T, pool *pgxpool.Pool, g *Guard, v transform.Version, staged bool, items ...item) bool {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE app.items IN SHARE ROW EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	rows, keys := chunk(items...)
	direct := false
	if !staged {
		if direct, err = g.Fresh(ctx, tx, keys); err != nil {
			t.Fatal(err)
		}
	}
	if direct {
		err = g.Insert(ctx, tx, rows, v)
	} else if err = g.Stage(ctx, tx, rows, v); err == nil {
		err = g.Merge(ctx, tx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return direct
}

// targetRows renders the target tables without the tombstones: which
// tombstones remain may depend on the order of writes (a delete older than
// the row still records its version), the rows never do.
func targetRows(t *testing.T, pool *pgxpool.Pool) string {
	var out []string
	for _, l := range strings.Split(dump(t, pool), "\n") {
		if !strings.HasPrefix(l, "tombstones|") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestGuardAgreesWithStreaming offers the same key to a snapshot chunk at
// (T0, 0) and to a streaming batch, in both orders, through both apply
// paths (array parameters, COPY) and both snapshot paths (straight COPY
// when the key is new, staged merge): the newer version wins whatever the
// order, the stream's write at (T0, n) beats the snapshot's row, and a
// tombstone newer than T0 keeps the snapshot's row out.
func TestGuardAgreesWithStreaming(t *testing.T) {
	a := func(qty int, tags ...string) item { return item{id: "a", qty: qty, tags: tags} }
	snap := []item{a(1, "s1", "s2"), {id: "b", qty: 2, tags: []string{"sb"}}}
	cases := []struct {
		name   string
		stream []message
		want   map[string]string
	}{
		{"stream at T0 beats the snapshot",
			[]message{change(5, 100, a(7, "x").mutation())},
			map[string]string{"a": "qty=7 v=100/5 tags=x", "b": "qty=2 v=100/0 tags=sb"}},
		{"snapshot beats an older stream write",
			[]message{change(5, 99, a(7, "x").mutation())},
			map[string]string{"a": "qty=1 v=100/0 tags=s1,s2", "b": "qty=2 v=100/0 tags=sb"}},
		{"stream delete at T0 keeps the snapshot row out",
			[]message{change(5, 100, deletion("a"))},
			map[string]string{"b": "qty=2 v=100/0 tags=sb"}},
		{"newer tombstone keeps the snapshot row out",
			[]message{change(5, 101, deletion("a"))},
			map[string]string{"b": "qty=2 v=100/0 tags=sb"}},
		{"older delete loses to the snapshot",
			[]message{change(5, 99, deletion("a"))},
			map[string]string{"a": "qty=1 v=100/0 tags=s1,s2", "b": "qty=2 v=100/0 tags=sb"}},
		{"older write then newer delete",
			[]message{change(5, 99, a(7, "x").mutation()), change(6, 101, deletion("b"))},
			map[string]string{"a": "qty=1 v=100/0 tags=s1,s2"}},
	}
	ctx := context.Background()
	paths := []struct {
		name      string
		threshold int
	}{{"arrays", 1 << 30}, {"copy", 1}}
	pools := make([]*pgxpool.Pool, len(paths))
	colls := make([]*collection, len(paths))
	for i, p := range paths {
		pools[i] = testDB(t, testenv.PostgresURL(t))
		colls[i] = newTestCollection(t, pools[i], p.threshold, nil)
	}
	g, err := NewGuard("snapshot."+testNS, testTables())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var first string
			for i, p := range paths {
				pool, c := pools[i], colls[i]
				for _, staged := range []bool{false, true} {
					for _, snapFirst := range []bool{true, false} {
						name := fmt.Sprintf("%s, staged %t, snapshot first %t", p.name, staged, snapFirst)
						reset(t, pool, c)
						if snapFirst {
							if direct := load(t, pool, g, t0, staged, snap...); direct == staged {
								t.Fatalf("%s: loaded straight: %t", name, direct)
							}
						}
						if err := c.apply(ctx, redecode(tc.stream)); err != nil {
							t.Fatalf("%s: apply: %v", name, err)
						}
						if !snapFirst {
							if direct := load(t, pool, g, t0, staged, snap...); direct {
								t.Fatalf("%s: loaded straight over stored keys", name)
							}
						}
						if got := itemState(t, pool); !reflect.DeepEqual(got, tc.want) {
							t.Errorf("%s: rows\n got %v\nwant %v", name, got, tc.want)
						}
						d := targetRows(t, pool)
						if first == "" {
							first = d
						} else if d != first {
							t.Errorf("%s: tables differ:\n%s\nwant\n%s", name, d, first)
						}
					}
				}
			}
		})
	}
}

// TestGuardRepeatedKey checks that a chunk holding one key twice merges
// one row (the staged merge's upsert reads one row per key).
func TestGuardRepeatedKey(t *testing.T) {
	pool := testDB(t, testenv.PostgresURL(t))
	g, err := NewGuard("snapshot."+testNS, testTables())
	if err != nil {
		t.Fatal(err)
	}
	if load(t, pool, g, t0, false, item{id: "a", qty: 1}, item{id: "a", qty: 1}) {
		t.Fatal("a chunk repeating a key was loaded straight")
	}
	want := map[string]string{"a": "qty=1 v=100/0 tags="}
	if got := itemState(t, pool); !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}

// TestGuardDeleteOlder checks the resync's sweep: rows older than the
// version go with their child rows and leave tombstones that keep older
// events out, exactly as a delete at that version would; rows at or after
// it stay.
func TestGuardDeleteOlder(t *testing.T) {
	ctx := context.Background()
	pool := testDB(t, testenv.PostgresURL(t))
	c := newTestCollection(t, pool, 1<<30, nil)
	g, err := NewGuard("snapshot."+testNS, testTables())
	if err != nil {
		t.Fatal(err)
	}
	// old at (99, 1)/1 and newer at (101, 1)/2 from the stream, kept at T0
	// from the snapshot.
	if err := c.apply(ctx, []message{
		change(1, 99, item{id: "old", qty: 1, tags: []string{"x", "y"}}.mutation()),
		change(2, 101, item{id: "newer", qty: 2, tags: []string{"n"}}.mutation()),
	}); err != nil {
		t.Fatal(err)
	}
	load(t, pool, g, t0, false, item{id: "kept", qty: 3, tags: []string{"k"}})
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	n, err := g.DeleteOlder(ctx, tx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("deleted %d rows, want 1", n)
	}
	want := map[string]string{"kept": "qty=3 v=100/0 tags=k", "newer": "qty=2 v=101/2 tags=n"}
	if got := itemState(t, pool); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the sweep: rows %v, want %v", got, want)
	}
	var tomb string
	if err := pool.QueryRow(ctx, `SELECT key::text || ' ' || cluster_ts || '.' || cluster_inc || '/' || seq FROM replicator.tombstones`).Scan(&tomb); err != nil {
		t.Fatal(err)
	}
	if tomb != "{old} 100.1/0" {
		t.Errorf("tombstone %s, want {old} 100.1/0", tomb)
	}
	// An event older than the sweep stays out; one at T0 comes in.
	if err := c.apply(ctx, []message{change(3, 99, item{id: "old", qty: 4}.mutation())}); err != nil {
		t.Fatal(err)
	}
	if _, ok := itemState(t, pool)["old"]; ok {
		t.Fatal("an event older than the sweep brought a swept row back")
	}
	if err := c.apply(ctx, []message{change(4, 100, item{id: "old", qty: 5}.mutation())}); err != nil {
		t.Fatal(err)
	}
	if got := itemState(t, pool)["old"]; got != "qty=5 v=100/4 tags=" {
		t.Fatalf("event at T0 after the sweep: row %q", got)
	}
}

func TestVersionedReader(t *testing.T) {
	suffix := []byte("\t1\t2\t3\n")
	cases := []struct{ rows, want string }{
		{"", ""},
		{"a\tb\n", "a\tb\t1\t2\t3\n"},
		{"a\\n\tb\nc\n\\N\n", "a\\n\tb\t1\t2\t3\nc\t1\t2\t3\n\\N\t1\t2\t3\n"},
		{"\n", "\t1\t2\t3\n"},
		{"last", "last\t1\t2\t3\n"},
	}
	for _, tc := range cases {
		for _, one := range []bool{false, true} {
			var r io.Reader = &versioned{rows: []byte(tc.rows), suffix: suffix}
			if one {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("rows %q (one byte at a time %t): %q, want %q", tc.rows, one, got, tc.want)
			}
		}
	}
	if err := iotest.TestReader(&versioned{rows: []byte("a\nbc\n"), suffix: suffix}, []byte("a\t1\t2\t3\nbc\t1\t2\t3\n")); err != nil {
		t.Error(err)
	}
}

// TestSweepKeyTextMatchesTransform checks that the sweep writes tombstone
// keys in transform's text for every date and time value of the type
// table (testdata/types.golden), whatever the session's DateStyle and
// TimeZone: a tombstone the sweep leaves must match the key of a delete or
// upsert event of the same document.
func TestSweepKeyTextMatchesTransform(t *testing.T) {
	ctx := context.Background()
	pool := testDB(t, testenv.PostgresURL(t))
	golden, err := os.ReadFile("../transform/testdata/types.golden")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET TimeZone = 'America/New_York'; SET DateStyle = 'SQL, DMY'"); err != nil {
		t.Fatal(err)
	}
	tbl := &table{cols: []string{`"k"`}}
	n := 0
	for _, line := range strings.Split(string(golden), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], "date/") || strings.HasPrefix(f[2], "ERROR") {
			continue
		}
		typ, want := f[1], strings.Join(f[2:], " ")
		if typ != "timestamptz" && typ != "timestamp" && typ != "date" {
			continue
		}
		tbl.types = []string{typ}
		var got string
		q := fmt.Sprintf("SELECT %s FROM (SELECT $1::%s AS k) AS t", keyText(tbl, 0, "t"), typ)
		if err := conn.QueryRow(ctx, q, want).Scan(&got); err != nil {
			t.Fatalf("%s: %v", f[0], err)
		}
		if got != want {
			t.Errorf("%s (%s): sweep key text %q, transform writes %q", f[0], typ, got, want)
		}
		n++
	}
	if n < 10 {
		t.Fatalf("only %d date and time cases found in types.golden", n)
	}
}
