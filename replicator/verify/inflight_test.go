package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

type inflightEnv struct {
	pool *pgxpool.Pool
	t    *testing.T
	m    *transform.Mapping
	g    *sink.Guard
	st   *stage
}

func newInFlight(t *testing.T, y string) *inflightEnv {
	ctx := context.Background()
	pool := testenv.Postgres(t)
	if err := schemas.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var cfg transform.CollectionConfig
	if err := yaml.Unmarshal([]byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	m, err := transform.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS kt; "+transform.DDL([]*transform.Mapping{m})); err != nil {
		t.Fatal(err)
	}
	g, err := sink.NewGuard(m.Namespace(), m.Tables())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Release)
	st, err := newStage(ctx, conn, m.Tables())
	if err != nil {
		t.Fatal(err)
	}
	return &inflightEnv{t: t, m: m, g: g, st: st, pool: pool}
}

func (e *inflightEnv) mut(doc bson.D) (transform.Mutation, string) {
	raw, _ := bson.Marshal(doc)
	mut, err := e.m.SnapshotRow(raw, transform.ClusterTime{})
	if err != nil {
		e.t.Fatal(err)
	}
	id, _ := bson.Raw(raw).LookupErr("_id")
	_, kj, _ := documentKey(id)
	return mut, kj
}

// write applies doc (nil id-only: delete older rows) at version T through the sink's guard.
func (e *inflightEnv) write(doc bson.D, T uint32) {
	ctx := context.Background()
	mut, _ := e.mut(doc)
	var buf [][]byte
	for range e.m.Tables() {
		buf = append(buf, nil)
	}
	var b0 []byte
	for k, v := range mut.Values {
		if k > 0 {
			b0 = append(b0, '\t')
		}
		b0 = append(b0, copyText(v)...)
	}
	if e.m.Tables()[0].IdentityKey {
		b0 = append(b0, '\t')
		b0 = append(b0, copyText(transform.Text(mut.Identity))...)
	}
	buf[0] = append(b0, '\n')
	tx, err := e.st.conn.Begin(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	v := transform.Version{ClusterTime: transform.ClusterTime{T: T, I: 1}}
	if err := e.g.Stage(ctx, tx, buf, v); err != nil {
		e.t.Fatal(err)
	}
	if err := e.g.Merge(ctx, tx); err != nil {
		e.t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *inflightEnv) deleteAll(T uint32) {
	ctx := context.Background()
	tx, _ := e.st.conn.Begin(ctx)
	defer tx.Rollback(ctx)
	if _, err := e.g.DeleteOlder(ctx, tx, transform.Version{ClusterTime: transform.ClusterTime{T: T, I: 1}}); err != nil {
		e.t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func copyText(v transform.Value) []byte {
	var b = new(bytesBuffer)
	sink.WriteCopyText(&b.Buffer, v)
	return b.Bytes()
}

// read stages doc as read at ts.
func (e *inflightEnv) read(doc bson.D, T uint32) {
	mut, kj := e.mut(doc)
	b := newBatch(len(e.st.tables))
	e.st.rows(b, &mut, kj, transform.ClusterTime{T: T, I: 1})
	if err := e.st.copyBatch(context.Background(), b); err != nil {
		e.t.Fatal(err)
	}
}

func (e *inflightEnv) recheck(start uint32) (int64, Report) {
	ctx := context.Background()
	rep := Report{}
	var n int64
	err := compareAll(ctx, e.st.conn, e.pool, e.st, &rep, Config{MaxDifferences: 10}, func(tx pgx.Tx) (err error) {
		n, err = markInFlight(ctx, tx, e.st.tables[0], transform.ClusterTime{T: start, I: 1}, false)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n, rep
}

func show(rep Report) string {
	var s string
	for _, tr := range rep.Tables {
		b, _ := json.Marshal(tr.Differences)
		s += fmt.Sprintf("%s: %s; ", tr.Table, b)
	}
	return s
}

// An identity-keyed root (versions: table, natural key): the document is
// deleted after its read.
func TestInFlightIdentityDeleteAfterRead(t *testing.T) {
	e := newInFlight(t, `
source: shop.items
table: kt.nat
key: [code]
versions: table
columns:
  code: {path: code, type: text, required: true}
  n: {path: n, type: integer}
`)
	doc := bson.D{{Key: "_id", Value: "a"}, {Key: "code", Value: "X1"}, {Key: "n", Value: 1}}
	e.write(doc, 50)
	e.read(doc, 100) // verify reads it at ts 100
	e.deleteAll(200) // deleted at 200 (as a delete event of its identity would)
	n, rep := e.recheck(90)
	t.Logf("in flight %d; %s", n, show(rep))
	if n == 0 {
		t.Errorf("a document deleted after its read is not in flight: %s", show(rep))
	}
}

// versions: table with a double precision / numeric(10,2) _id key: the
// document is updated after its read; and a row of no document read.
func TestInFlightExternalNumericKey(t *testing.T) {
	for _, c := range []struct {
		typ string
		id  any
	}{{"double precision", 1e6}, {"numeric(10,2)", 1.5}, {"text", "x"}} {
		t.Run(c.typ, func(t *testing.T) {
			e := newInFlight(t, fmt.Sprintf(`
source: shop.items
table: kt.num
versions: table
columns:
  k: {path: _id, type: %q}
  n: {path: n, type: integer}
`, c.typ))
			e.write(bson.D{{Key: "_id", Value: c.id}, {Key: "n", Value: 1}}, 50)
			e.read(bson.D{{Key: "_id", Value: c.id}, {Key: "n", Value: 1}}, 100)
			e.write(bson.D{{Key: "_id", Value: c.id}, {Key: "n", Value: 2}}, 200) // updated after the read
			// a document inserted after start whose range was read before it
			e.write(bson.D{{Key: "_id", Value: 7.25}, {Key: "n", Value: 3}}, 150)
			n, rep := e.recheck(90)
			t.Logf("in flight %d; %s", n, show(rep))
			if !rep.tablesEqual() {
				t.Errorf("changes after the read reported as differences: %s", show(rep))
			}
		})
	}
}

type bytesBuffer struct{ bytes.Buffer }

// newItems is a collection shop.items of the emulator mapped to kt.items
// (k text key from _id, n integer).
func newItems(t *testing.T) (*mongotest.Env, *inflightEnv, *mongo.Collection) {
	env := mongotest.New(t)
	db := env.Database("shop")
	e := newInFlight(t, fmt.Sprintf(`
source: %s.items
table: kt.items
columns:
  k: {path: _id, type: text}
  n: {path: n, type: integer}
`, db))
	return env, e, env.Client.Database(db).Collection("items")
}

// The applier stops being seen (ErrNotApplying) in the second round: the
// documents of the first round's in-flight list were forgotten and read
// again but never compared.
func TestInFlightNotApplyingInSecondRound(t *testing.T) {
	ctx := context.Background()
	env, e, coll := newItems(t)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "hot"}, {Key: "n", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	// PostgreSQL: a newer version than any read (the document changed after its read).
	e.write(bson.D{{Key: "_id", Value: "hot"}, {Key: "n", Value: 2}}, 4000000000)
	calls := 0
	deps := Deps{Source: env.Client, Target: testPool(e), Applied: func(ctx context.Context, ns string, ct transform.ClusterTime, timeout time.Duration) error {
		calls++
		if calls == 1 {
			return nil
		}
		return fmt.Errorf("%w: stub: checkpoint stands still", ErrNotApplying)
	}}
	rep, err := Collection(ctx, deps, e.m, Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(rep, "", " ")
	t.Logf("%s", b)
	if rep.Equal && rep.InFlight.Count == 0 {
		t.Errorf("equal, nothing in flight, though the document was never compared")
	}
}

func testPool(e *inflightEnv) *pgxpool.Pool { return e.pool }

// A session with extra_float_digits = 0 (a role or database setting):
// two different doubles print alike, so their rows hash alike and the
// bucket is never joined.
func TestInFlightFloatDigits(t *testing.T) {
	ctx := context.Background()
	e := newInFlight(t, `
source: shop.items
table: kt.fl
columns:
  k: {path: _id, type: text}
  x: {path: x, type: double precision}
`)
	e.write(bson.D{{Key: "_id", Value: "a"}, {Key: "x", Value: 0.3}}, 50)
	e.read(bson.D{{Key: "_id", Value: "a"}, {Key: "x", Value: math.Nextafter(0.3, 1)}}, 100)
	for _, digits := range []int{1, 0} {
		if _, err := e.st.conn.Exec(ctx, fmt.Sprintf("SET extra_float_digits = %d", digits)); err != nil {
			t.Fatal(err)
		}
		rep := Report{}
		if err := compareAll(ctx, e.st.conn, e.pool, e.st, &rep, Config{MaxDifferences: 10}, nil); err != nil {
			t.Fatal(err)
		}
		t.Logf("extra_float_digits %d: %s", digits, show(rep))
		if rep.tablesEqual() {
			t.Errorf("extra_float_digits %d: 0.30000000000000004 and 0.3 found equal", digits)
		}
	}
}

// Part 3 (a row of no document read) under versions: table with a key
// whose PostgreSQL text is not transform's.
func TestInFlightExternalNumericKeyNotRead(t *testing.T) {
	e := newInFlight(t, `
source: shop.items
table: kt.num2
versions: table
columns:
  k: {path: _id, type: "numeric(10,2)"}
  n: {path: n, type: integer}
`)
	e.write(bson.D{{Key: "_id", Value: 1.5}, {Key: "n", Value: 3}}, 150) // inserted after start, its range read before
	n, rep := e.recheck(90)
	t.Logf("in flight %d; %s", n, show(rep))
	if !rep.tablesEqual() {
		t.Errorf("a row written after start reported as a difference: %s", show(rep))
	}
}

// d with tab, newline and backslash survives COPY and forget.
func TestInFlightDocKeyEscaping(t *testing.T) {
	ctx := context.Background()
	e := newInFlight(t, `
source: shop.items
table: kt.esc
columns:
  k: {path: _id, type: text}
  n: {path: n, type: integer}
`)
	id := "a\tb\\c\nd\"e"
	e.write(bson.D{{Key: "_id", Value: id}, {Key: "n", Value: 2}}, 200)
	e.read(bson.D{{Key: "_id", Value: id}, {Key: "n", Value: 1}}, 100)
	n, rep := e.recheck(90)
	docs, err := e.st.forget(ctx, reasonInFlight)
	if err != nil {
		t.Fatal(err)
	}
	_, kj := e.mut(bson.D{{Key: "_id", Value: id}})
	t.Logf("in flight %d, %s docs %q want %q", n, show(rep), docs, kj)
	if len(docs) != 1 || docs[0] != kj {
		t.Errorf("docs %q, want %q", docs, kj)
	}
}

func TestInFlightKeyTexts(t *testing.T) {
	for _, c := range []struct {
		typ string
		id  any
	}{{"double precision", 1e6}, {"double precision", float64(1 << 53)}, {"numeric(10,2)", 1.5}, {"numeric(10,2)", int32(7)}} {
		var cfg transform.CollectionConfig
		_ = yaml.Unmarshal([]byte(fmt.Sprintf("source: shop.items\ntable: kt.x\ncolumns:\n  k: {path: _id, type: %q}\n", c.typ)), &cfg)
		m, err := transform.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: c.id}})
		mut, err := m.SnapshotRow(raw, transform.ClusterTime{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %v: transform key text %q", c.typ, c.id, mut.Key[0].Text)
	}
}

// A worker's read error while batches wait in the channel: which error
// does Collection return?
func TestInFlightWorkerErrorMasked(t *testing.T) {
	ctx := context.Background()
	env, e, coll := newItems(t)
	var docs []any
	for i := range 400 {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("d%04d", i)}, {Key: "n", Value: i}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "skip", Value: 6}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"getMore"}}, {Key: "errorCode", Value: 2}}}}).Err(); err != nil {
		t.Fatal(err)
	}
	deps := Deps{Source: env.Client, Target: testPool(e)}
	_, err := Collection(ctx, deps, e.m, Config{ChunkSize: 100, BatchSize: 10, Workers: 2,
		Progress: func(string, int64, bool) { time.Sleep(100 * time.Millisecond) }})
	t.Logf("error: %v", err)
}

// Equal keys whose typed text differs (numeric scale) land in different
// buckets on the two sides: still equal?
func TestInFlightBucketKeyText(t *testing.T) {
	ctx := context.Background()
	e := newInFlight(t, `
source: shop.items
table: kt.bk
columns:
  k: {path: _id, type: numeric}
  n: {path: n, type: integer}
`)
	if _, err := e.pool.Exec(ctx, "ALTER TABLE kt.bk ALTER COLUMN k TYPE numeric(10,2)"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		v := 1.5 + float64(i)
		e.write(bson.D{{Key: "_id", Value: v}, {Key: "n", Value: 1}}, 50)
		e.read(bson.D{{Key: "_id", Value: v}, {Key: "n", Value: 1}}, 100)
	}
	var b1, b2 int
	_ = e.pool.QueryRow(ctx, "SELECT hashtext(ROW(CAST('1.5' AS numeric))::text) & 1023, hashtext(ROW(CAST(1.50::numeric(10,2) AS numeric))::text) & 1023").Scan(&b1, &b2)
	rep := Report{}
	if err := compareAll(ctx, e.st.conn, e.pool, e.st, &rep, Config{MaxDifferences: 10}, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("buckets %d %d; %s checksums %s %s", b1, b2, show(rep), rep.Tables[0].ExpectedChecksum, rep.Tables[0].ActualChecksum)
	if !rep.tablesEqual() {
		t.Errorf("not equal")
	}
}
