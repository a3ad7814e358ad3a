package sink

import (
	"context"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/internal/testenv"
)

func reset(t *testing.T, pool *pgxpool.Pool, c *collection) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `TRUNCATE app.item_tag_notes, app.item_tags, app.items CASCADE;
TRUNCATE replicator.tombstones, replicator.dead_letters, replicator.control_events;
UPDATE replicator.apply_checkpoints SET stream_seq = 0`); err != nil {
		t.Fatal(err)
	}
	if err := c.loadPosition(ctx); err != nil {
		t.Fatal(err)
	}
}

// rewind moves c's checkpoint back to the start, as a replay does.
func rewind(t *testing.T, pool *pgxpool.Pool, c *collection) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE replicator.apply_checkpoints SET stream_seq = 0`); err != nil {
		t.Fatal(err)
	}
	if err := c.loadPosition(ctx); err != nil {
		t.Fatal(err)
	}
}

// tombstoneKeys lists the first key column of every tombstone.
func tombstoneKeys(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT key[1] FROM replicator.tombstones ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestApplyVersionGuard(t *testing.T) {
	a := func(qty int, tags ...string) item { return item{id: "a", qty: qty, tags: tags} }
	cases := []struct {
		name       string
		batches    [][]message
		want       map[string]string
		tombstones []string // keys with a tombstone
	}{
		{"newer update wins", [][]message{
			{change(1, 10, a(1).mutation())}, {change(2, 11, a(2).mutation())},
		}, map[string]string{"a": "qty=2 v=11/2 tags="}, nil},
		{"older update is ignored", [][]message{
			{change(1, 20, a(1).mutation())}, {change(2, 10, a(2).mutation())},
		}, map[string]string{"a": "qty=1 v=20/1 tags="}, nil},
		{"equal cluster time orders by sequence", [][]message{
			{change(1, 10, a(1).mutation())}, {change(2, 10, a(2).mutation())},
		}, map[string]string{"a": "qty=2 v=10/2 tags="}, nil},
		{"redelivered batch is skipped", [][]message{
			{change(1, 10, a(1, "x").mutation()), change(2, 10, item{id: "b", qty: 1}.mutation())},
			{change(1, 10, a(1, "x").mutation()), change(2, 10, item{id: "b", qty: 1}.mutation())},
		}, map[string]string{"a": "qty=1 v=10/1 tags=x", "b": "qty=1 v=10/2 tags="}, nil},
		{"tombstone blocks a late older upsert", [][]message{
			{change(1, 10, a(1).mutation())}, {change(2, 20, deletion("a"))}, {change(3, 15, a(5).mutation())},
		}, map[string]string{}, []string{"a"}},
		{"newer insert resurrects a deleted row", [][]message{
			{change(1, 10, a(1).mutation())}, {change(2, 20, deletion("a"))}, {insertion(3, 30, a(7, "r").mutation())},
		}, map[string]string{"a": "qty=7 v=30/3 tags=r"}, nil},
		// Only an insert removes a tombstone. An update whose insert never
		// arrived (dead-lettered) leaves the older tombstone, which refuses
		// only what the row refuses too.
		{"newer update after a lost re-insert leaves the older tombstone", [][]message{
			{change(1, 10, a(1).mutation())}, {change(2, 20, deletion("a"))}, {change(3, 30, a(7, "r").mutation())},
			{change(4, 25, a(9).mutation())}, {change(5, 15, a(8).mutation())},
		}, map[string]string{"a": "qty=7 v=30/3 tags=r"}, []string{"a"}},
		{"an insert delivered after a newer update still removes the tombstone", [][]message{
			{change(1, 10, a(1).mutation())}, {change(2, 20, deletion("a"))},
			{change(3, 30, a(7, "r").mutation()), insertion(4, 25, a(9).mutation())},
		}, map[string]string{"a": "qty=7 v=30/3 tags=r"}, nil},
		{"delete older than the row is ignored", [][]message{
			{change(1, 30, a(1, "x").mutation())}, {change(2, 20, deletion("a"))},
		}, map[string]string{"a": "qty=1 v=30/1 tags=x"}, []string{"a"}},
		{"delete of an unknown key blocks an older insert", [][]message{
			{change(1, 20, deletion("a"))}, {change(2, 10, a(1).mutation())},
		}, map[string]string{}, []string{"a"}},
		{"same key twice in a batch keeps the newest", [][]message{
			{change(1, 10, a(1, "x", "y").mutation()), change(2, 11, a(2, "z").mutation())},
		}, map[string]string{"a": "qty=2 v=11/2 tags=z"}, nil},
		{"same key twice in a batch keeps the newest version, not the last", [][]message{
			{change(1, 20, a(1, "x").mutation()), change(2, 10, a(2, "y").mutation())},
		}, map[string]string{"a": "qty=1 v=20/1 tags=x"}, nil},
		{"upsert then delete in one batch", [][]message{
			{change(1, 10, a(1, "x").mutation()), change(2, 11, deletion("a"))},
		}, map[string]string{}, []string{"a"}},
		{"delete then upsert in one batch", [][]message{
			{change(1, 10, a(1, "x").mutation())}, {change(2, 11, deletion("a")), change(3, 12, a(3, "y").mutation())},
		}, map[string]string{"a": "qty=3 v=12/3 tags=y"}, nil},
		{"transaction: delete then re-insert at one cluster time, one batch", [][]message{
			{change(1, 10, a(1, "x").mutation())}, {change(2, 20, deletion("a")), insertion(3, 20, a(2, "y").mutation())},
		}, map[string]string{"a": "qty=2 v=20/3 tags=y"}, nil},
		{"transaction: delete then re-insert at one cluster time, separate batches", [][]message{
			{change(1, 10, a(1, "x").mutation())}, {change(2, 20, deletion("a"))}, {insertion(3, 20, a(2, "y").mutation())},
		}, map[string]string{"a": "qty=2 v=20/3 tags=y"}, nil},
		{"transaction: insert then delete at one cluster time", [][]message{
			{change(1, 20, a(1, "x").mutation()), change(2, 20, deletion("a"))},
		}, map[string]string{}, []string{"a"}},
		{"transaction: two updates of one key at one cluster time", [][]message{
			{change(1, 20, a(1, "x").mutation()), change(2, 20, a(2, "y", "z").mutation())}, {change(3, 20, a(3).mutation())},
		}, map[string]string{"a": "qty=3 v=20/3 tags="}, nil},
		{"children are replaced", [][]message{
			{change(1, 10, a(1, "x", "y", "z").mutation())}, {change(2, 11, a(1, "w").mutation())},
		}, map[string]string{"a": "qty=1 v=11/2 tags=w"}, nil},
		{"children are cleared", [][]message{
			{change(1, 10, a(1, "x", "y").mutation())}, {change(2, 11, a(1).mutation())},
		}, map[string]string{"a": "qty=1 v=11/2 tags="}, nil},
		{"an older event does not replace children", [][]message{
			{change(1, 20, a(1, "x").mutation())}, {change(2, 10, a(2, "y", "z").mutation())},
		}, map[string]string{"a": "qty=1 v=20/1 tags=x"}, nil},
		{"delete cascades to children and grandchildren", [][]message{
			{change(1, 10, a(1, "x", "y").mutation(), item{id: "b", tags: []string{"k"}}.mutation())}, {change(2, 11, deletion("a"))},
		}, map[string]string{"b": "qty=0 v=10/1 tags=k"}, []string{"a"}},
		{"text with tabs, newlines, backslashes and quotes survives", [][]message{
			{change(1, 10, item{id: "a", qty: 1, tags: []string{"t\tab", "new\nline\r", `back\slash \N`, `"quoted" 'x'`}}.mutation())},
		}, map[string]string{"a": "qty=1 v=10/1 tags=t\tab,new\nline\r," + `back\slash \N` + `,"quoted" 'x'`}, nil},
		{"mixed batch over many keys", [][]message{
			{change(1, 10, a(1, "x").mutation()), change(2, 10, item{id: "b", qty: 2, tags: []string{"p", "q"}}.mutation()),
				change(3, 10, item{id: "c", qty: 3}.mutation())},
			{change(4, 11, deletion("b")), change(5, 12, item{id: "c", qty: 4, tags: []string{"n"}}.mutation()),
				change(6, 9, a(9).mutation()), change(7, 13, item{id: "d", qty: 5}.mutation())},
		}, map[string]string{"a": "qty=1 v=10/1 tags=x", "c": "qty=4 v=12/5 tags=n", "d": "qty=5 v=13/7 tags="}, []string{"b"}},
	}
	ctx := context.Background()
	paths := []struct {
		name      string
		threshold int
	}{{"arrays", 1 << 30}, {"copy", 1}}
	colls := make([]*collection, len(paths))
	pools := make([]*pgxpool.Pool, len(paths))
	for i, p := range paths {
		pools[i] = testDB(t, testenv.PostgresURL(t))
		colls[i] = newTestCollection(t, pools[i], p.threshold, nil)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var dumps []string
			for i, p := range paths {
				pool, c := pools[i], colls[i]
				reset(t, pool, c)
				for _, b := range tc.batches {
					if err := c.apply(ctx, redecode(b)); err != nil {
						t.Fatalf("%s: apply: %v", p.name, err)
					}
				}
				if got := itemState(t, pool); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s: rows\n got %v\nwant %v", p.name, got, tc.want)
				}
				if tomb := tombstoneKeys(t, pool); !reflect.DeepEqual(tomb, tc.tombstones) {
					t.Errorf("%s: tombstones %v, want %v", p.name, tomb, tc.tombstones)
				}
				last := tc.batches[len(tc.batches)-1]
				if got, want := checkpointSeq(t, pool), last[len(last)-1].seq; got != want {
					t.Errorf("%s: checkpoint %d, want %d", p.name, got, want)
				}
				d := dump(t, pool)
				dumps = append(dumps, d)
				// Replaying everything from the start changes nothing.
				rewind(t, pool, c)
				for _, b := range tc.batches {
					if err := c.apply(ctx, redecode(b)); err != nil {
						t.Fatalf("%s: replay: %v", p.name, err)
					}
				}
				if again := dump(t, pool); again != d {
					t.Errorf("%s: replay changed the state:\nbefore:\n%s\nafter:\n%s", p.name, d, again)
				}
			}
			if dumps[0] != dumps[1] {
				t.Errorf("array and COPY paths differ:\narrays:\n%s\ncopy:\n%s", dumps[0], dumps[1])
			}
		})
	}
}

// TestFilteredCollectionClearsTombstonesOnUpdate: in a collection with a
// filter, an update that moves a document back into the filter follows the
// delete that its leaving was applied as; the upsert removes the older
// tombstone (on either path), as an insert does elsewhere.
func TestFilteredCollectionClearsTombstonesOnUpdate(t *testing.T) {
	ctx := context.Background()
	a := func(qty int, tags ...string) item { return item{id: "a", qty: qty, tags: tags} }
	for _, threshold := range []int{1 << 30, 1} {
		pool := testDB(t, testenv.PostgresURL(t))
		c := newTestCollection(t, pool, threshold, func(col *Collection) { col.Filtered = true })
		for _, b := range [][]message{
			{change(1, 10, a(1).mutation())}, {change(2, 20, deletion("a"))},
			{change(3, 30, a(7, "r").mutation()), change(4, 30, item{id: "b", qty: 2}.mutation())},
		} {
			if err := c.apply(ctx, redecode(b)); err != nil {
				t.Fatal(err)
			}
		}
		if tomb := tombstoneKeys(t, pool); len(tomb) != 0 {
			t.Errorf("threshold %d: tombstones %v, want none", threshold, tomb)
		}
		if got, want := itemState(t, pool), map[string]string{"a": "qty=7 v=30/3 tags=r", "b": "qty=2 v=30/4 tags="}; !reflect.DeepEqual(got, want) {
			t.Errorf("threshold %d: rows %v, want %v", threshold, got, want)
		}
	}
}

// redecode gives each run its own copy of the messages (apply may mark
// them and plan rewrites their key columns).
func redecode(b []message) []message {
	msgs := make([]message, len(b))
	for j, m := range b {
		msgs[j] = decode(testNS, m.seq, m.data)
	}
	return msgs
}
