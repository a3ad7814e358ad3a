package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const testNS = "shop.items"

// Target tables of the tests: a root with a check constraint and NOT NULL
// column, a child and a grandchild, with foreign keys as the schema
// command writes them.
const testDDL = `
CREATE SCHEMA app;
CREATE TABLE app.items (
    id text PRIMARY KEY,
    tenant uuid NOT NULL,
    qty integer CHECK (qty >= 0),
    price numeric(12,2),
    doc jsonb,
    _cdc_ts bigint NOT NULL, _cdc_inc bigint NOT NULL, _cdc_seq bigint NOT NULL
);
CREATE TABLE app.item_tags (
    item_id text NOT NULL REFERENCES app.items (id),
    ordinal integer NOT NULL,
    tag text NOT NULL,
    PRIMARY KEY (item_id, ordinal)
);
CREATE TABLE app.item_tag_notes (
    item_id text NOT NULL,
    parent_ordinal integer NOT NULL,
    ordinal integer NOT NULL,
    note text,
    PRIMARY KEY (item_id, parent_ordinal, ordinal),
    FOREIGN KEY (item_id, parent_ordinal) REFERENCES app.item_tags (item_id, ordinal)
);`

func testTables() []transform.TableDef {
	col := func(n, t string) transform.ColumnDef { return transform.ColumnDef{Name: n, Type: t} }
	return []transform.TableDef{
		{Name: "app.items", Key: []string{"id"}, Columns: []transform.ColumnDef{
			col("id", "text"), col("tenant", "uuid"), col("qty", "integer"), col("price", "numeric(12,2)"), col("doc", "jsonb")}},
		{Name: "app.item_tags", Root: "app.items", Parent: "app.items", RootKey: []string{"item_id"}, Key: []string{"item_id", "ordinal"},
			Columns: []transform.ColumnDef{col("item_id", "text"), col("ordinal", "integer"), col("tag", "text")}},
		{Name: "app.item_tag_notes", Root: "app.items", Parent: "app.item_tags", RootKey: []string{"item_id"}, Key: []string{"item_id", "parent_ordinal", "ordinal"},
			Columns: []transform.ColumnDef{col("item_id", "text"), col("parent_ordinal", "integer"), col("ordinal", "integer"), col("note", "text")}},
	}
}

// testDB returns a pool on a fresh database with the metadata schema and
// the test tables.
func testDB(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool := testenv.Pool(t, url)
	prepareDB(t, pool)
	return pool
}

func prepareDB(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	if err := schemas.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, testDDL); err != nil {
		t.Fatal(err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newTestCollection returns the applier of testNS on pool.
func newTestCollection(t testing.TB, pool *pgxpool.Pool, copyThreshold int, mod func(*Collection)) *collection {
	t.Helper()
	col := Collection{Namespace: testNS, Tables: testTables()}
	if mod != nil {
		mod(&col)
	}
	a, err := New(pool, []Collection{col}, Config{Stream: "S", SubjectPrefix: "p", CopyThreshold: copyThreshold}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c := a.cols[0]
	if err := c.loadPosition(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// item is a test document.
type item struct {
	id    string
	qty   int // -1 violates the check constraint
	tags  []string
	null  bool // NULL tenant violates NOT NULL
	price string
}

const tenant = "6f1c0e56-1d2c-4f44-9a43-4c3ad0b4f3a1"

func (it item) mutation() transform.Mutation {
	tn := transform.Text(tenant)
	if it.null {
		tn = transform.Null
	}
	price := transform.Null
	if it.price != "" {
		price = transform.Text(it.price)
	}
	m := transform.Mutation{Table: "app.items", Op: transform.OpUpsert,
		Key: []transform.Value{transform.Text(it.id)},
		Values: []transform.Value{transform.Text(it.id), tn, transform.Text(strconv.Itoa(it.qty)), price,
			transform.Text(fmt.Sprintf(`{"n": %d}`, it.qty))},
		Children: []transform.ChildRows{{Table: "app.item_tags"}, {Table: "app.item_tag_notes"}},
	}
	for i, tag := range it.tags {
		m.Children[0].Rows = append(m.Children[0].Rows, []transform.Value{transform.Text(it.id), transform.Text(strconv.Itoa(i)), transform.Text(tag)})
		m.Children[1].Rows = append(m.Children[1].Rows, []transform.Value{transform.Text(it.id), transform.Text(strconv.Itoa(i)), transform.Text("0"), transform.Text("note " + tag)})
	}
	return m
}

func deletion(id string) transform.Mutation {
	return transform.Mutation{Table: "app.items", Op: transform.OpDelete, Key: []transform.Value{transform.Text(id)}}
}

// change builds the buffer message at seq for mutations at cluster time t.
// Its ordinal is seq: source order is buffer order, and a row's _cdc_seq
// reads as the sequence of the message that wrote it.
func change(seq uint64, t uint32, muts ...transform.Mutation) message {
	op := "update"
	if len(muts) > 0 && muts[0].Op == transform.OpDelete {
		op = "delete"
	}
	return changeOp(seq, t, op, muts...)
}

// insertion is change for an insert event.
func insertion(seq uint64, t uint32, muts ...transform.Mutation) message {
	return changeOp(seq, t, "insert", muts...)
}

func changeOp(seq uint64, t uint32, op string, muts ...transform.Mutation) message {
	key := ""
	if len(muts) > 0 {
		key = fmt.Sprintf(`{"_id": %q}`, muts[0].Key[0].Text)
	}
	return encodeMsg(seq, &envelope.Envelope{Kind: envelope.KindChange, Collection: testNS,
		ClusterTime: transform.ClusterTime{T: t, I: 1}, Ordinal: uint32(seq), Operation: op, DocumentKey: key, Mutations: muts})
}

func encodeMsg(seq uint64, e *envelope.Envelope) message {
	b, err := envelope.Encode(e)
	if err != nil {
		panic(err)
	}
	return decode(testNS, seq, b)
}

// dump renders every target row, versions included, deterministically.
func dump(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT 'items', id, tenant::text, qty::text, price::text, doc::text, _cdc_ts::text, _cdc_inc::text, _cdc_seq::text FROM app.items ORDER BY id`,
		`SELECT 'tags', item_id, ordinal::text, tag FROM app.item_tags ORDER BY item_id, ordinal`,
		`SELECT 'notes', item_id, parent_ordinal::text, ordinal::text, note FROM app.item_tag_notes ORDER BY 2, 3, 4`,
		`SELECT 'tombstones', table_name, key::text, cluster_ts::text, cluster_inc::text, seq::text FROM replicator.tombstones ORDER BY 2, 3`,
	} {
		rows, err := pool.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			parts := make([]string, len(vals))
			for i, v := range vals {
				parts[i] = fmt.Sprint(v)
			}
			out = append(out, strings.Join(parts, "|"))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(out, "\n")
}

// itemVersions returns id → "ts.inc.seq qty tags".
func itemState(t testing.TB, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT i.id, i.qty, i._cdc_ts, i._cdc_seq,
  coalesce((SELECT string_agg(tag, ',' ORDER BY ordinal) FROM app.item_tags g WHERE g.item_id = i.id), '')
FROM app.items i`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var (
			id, tags string
			qty      *int
			ts, seq  int64
		)
		if err := rows.Scan(&id, &qty, &ts, &seq, &tags); err != nil {
			t.Fatal(err)
		}
		q := -99
		if qty != nil {
			q = *qty
		}
		out[id] = fmt.Sprintf("qty=%d v=%d/%d tags=%s", q, ts, seq, tags)
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func checkpointSeq(t testing.TB, pool *pgxpool.Pool) uint64 {
	t.Helper()
	var s int64
	if err := pool.QueryRow(context.Background(), `SELECT stream_seq FROM replicator.apply_checkpoints WHERE collection = $1`, testNS).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return uint64(s)
}

func prometheusRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// counter sums a counter's series.
func counter(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
