package snapshot_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/transform"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// collectionsYAML maps three collections: ObjectId _ids with a child table
// (alpha), integer _ids (beta) and mixed _id types (gamma). SCHEMA is the
// target schema, so the same mapping can fill an "expect" schema.
const collectionsYAML = `
collections:
  - source: DB.alpha
    table: SCHEMA.alpha
    columns:
      id:   { path: _id,  type: text }
      n:    { path: n,    type: bigint }
      name: { path: name, type: text }
    document: { column: doc, include: rest }
    children:
      - path: tags
        table: SCHEMA.alpha_tags
        columns:
          tag: { path: ., type: text }
  - source: DB.beta
    table: SCHEMA.beta
    columns:
      id:   { path: _id,  type: bigint }
      n:    { path: n,    type: bigint }
      name: { path: name, type: text }
  - source: DB.gamma
    table: SCHEMA.gamma
    columns:
      id: { path: _id, type: text }
      n:  { path: n,   type: bigint }
    document: { column: doc, include: rest }
`

var collNames = []string{"alpha", "beta", "gamma"}

// harness is one test's MongoDB, PostgreSQL and mappings.
type harness struct {
	t       testing.TB
	env     *mongotest.Env
	db      string
	pgURL   string
	pool    *pgxpool.Pool
	yaml    string // the config's collections section
	maps    []*transform.Mapping
	expects []*transform.Mapping // the same mappings writing schema "expect"
	nextID  [3]int64
}

func newHarness(t testing.TB, opts ...mongotest.Options) *harness {
	t.Helper()
	h := &harness{t: t, env: mongotest.New(t, opts...)}
	h.db = h.env.Database("snap")
	h.pgURL = testenv.PostgresURL(t)
	h.pool = testenv.Pool(t, h.pgURL)
	h.yaml = strings.ReplaceAll(collectionsYAML, "DB.", h.db+".")
	h.maps = h.compile("app")
	h.expects = h.compile("expect")
	ctx := context.Background()
	if err := replicator.Prepare(ctx, h.pool, h.maps); err != nil {
		t.Fatal(err)
	}
	// The expected rows need no keys or WAL: plain unlogged copies load fast.
	ddl := "CREATE SCHEMA expect;"
	for _, m := range h.maps {
		for _, tbl := range m.Tables() {
			name := strings.SplitN(tbl.Name, ".", 2)[1]
			ddl += fmt.Sprintf("CREATE UNLOGGED TABLE expect.%s (LIKE app.%[1]s);", name)
		}
	}
	if _, err := h.pool.Exec(ctx, ddl); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) compile(schema string) []*transform.Mapping {
	h.t.Helper()
	cfg, err := config.Parse([]byte(strings.ReplaceAll(h.yaml, "SCHEMA.", schema+".")), "test.yaml")
	if err != nil {
		h.t.Fatal(err)
	}
	maps, err := cfg.Mappings()
	if err != nil {
		h.t.Fatal(err)
	}
	return maps
}

func (h *harness) coll(i int) *mongo.Collection {
	return h.env.Client.Database(h.db).Collection(collNames[i])
}

func (h *harness) deps() snapshot.Deps {
	return snapshot.Deps{Source: h.env.Client, Target: h.pool, Mappings: h.maps}
}

// newID returns the next _id of collection i: ObjectIds for alpha,
// integers for beta, and for gamma a rotation of int, string, ObjectId,
// double, and a negative long.
func (h *harness) newID(i int) any {
	h.nextID[i]++
	n := h.nextID[i]
	switch i {
	case 0:
		return bson.NewObjectID()
	case 1:
		return n
	}
	switch n % 5 {
	case 0:
		return int32(n)
	case 1:
		return fmt.Sprintf("s-%08d", n)
	case 2:
		return bson.NewObjectID()
	case 3:
		return float64(n) + 0.5
	}
	return -n
}

func (h *harness) newDoc(i int, r *rand.Rand) bson.D {
	d := bson.D{{Key: "_id", Value: h.newID(i)}, {Key: "n", Value: r.Int64N(1000)}, {Key: "name", Value: fmt.Sprintf("doc %d", r.Int())}}
	if i != 1 {
		d = append(d, bson.E{Key: "extra", Value: bson.D{{Key: "x", Value: r.Float64()}, {Key: "when", Value: time.UnixMilli(r.Int64N(1e12)).UTC()}}})
	}
	if i == 0 {
		tags := bson.A{}
		for range r.IntN(4) {
			tags = append(tags, fmt.Sprintf("t%d", r.IntN(10)))
		}
		d = append(d, bson.E{Key: "tags", Value: tags})
	}
	return d
}

// seed inserts n documents into each collection, the three in parallel.
func (h *harness) seed(n int) {
	h.t.Helper()
	ctx := context.Background()
	docs := make([][]any, len(collNames))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range collNames {
		for range n {
			docs[i] = append(docs[i], h.newDoc(i, r))
		}
	}
	var g errgroup.Group
	for i := range collNames {
		g.Go(func() error {
			for start := 0; start < n; start += 2000 {
				if _, err := h.coll(i).InsertMany(ctx, docs[i][start:min(start+2000, n)]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		h.t.Fatal(err)
	}
}

// waitCaughtUp writes a marker document into each collection and waits
// until streaming has applied it: per-collection order then says every
// earlier change is applied too.
func (h *harness) waitCaughtUp(ctx context.Context, timeout time.Duration) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ids := []any{bson.NewObjectID(), int64(1) << 40, fmt.Sprintf("marker-%d", time.Now().UnixNano())}
	keys := []string{ids[0].(bson.ObjectID).Hex(), fmt.Sprint(ids[1]), ids[2].(string)}
	for i := range collNames {
		if _, err := h.coll(i).UpdateOne(ctx, bson.D{{Key: "_id", Value: ids[i]}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
			h.t.Fatal(err)
		}
	}
	for i, name := range collNames {
		for {
			var ok bool
			err := h.pool.QueryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM app.%s WHERE id::text = $1 AND n = (SELECT n FROM app.%[1]s WHERE id::text = $1))`, name), keys[i]).Scan(&ok)
			if err != nil {
				h.t.Fatalf("streaming did not catch up on %s: %v", name, err)
			}
			if ok {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// diff loads MongoDB's current documents, transformed, into schema expect
// and returns how many rows differ between app and expect, per table.
func (h *harness) diff(ctx context.Context) (map[string]int64, error) {
	var mu sync.Mutex
	out := map[string]int64{}
	g, ctx := errgroup.WithContext(ctx)
	for i := range h.expects {
		g.Go(func() error {
			d, err := h.diffOne(ctx, i)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range d {
				out[k] = v
			}
			return err
		})
	}
	return out, g.Wait()
}

// diffOne is diff for collection i.
func (h *harness) diffOne(ctx context.Context, i int) (map[string]int64, error) {
	out := map[string]int64{}
	m := h.expects[i]
	{
		tables := m.Tables()
		for _, t := range tables {
			if _, err := h.pool.Exec(ctx, "TRUNCATE "+transform.QuoteTable(t.Name)); err != nil {
				return nil, err
			}
		}
		cur, err := h.coll(i).Find(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		bufs := map[string]*bytes.Buffer{}
		for _, t := range tables {
			bufs[t.Name] = &bytes.Buffer{}
		}
		for cur.Next(ctx) {
			mut, err := m.SnapshotRow(cur.Current, transform.ClusterTime{})
			if err != nil {
				return nil, err
			}
			writeRow(bufs[mut.Table], mut.Values, true)
			for _, c := range mut.Children {
				for _, row := range c.Rows {
					writeRow(bufs[c.Table], row, false)
				}
			}
		}
		if err := cur.Err(); err != nil {
			return nil, err
		}
		_ = cur.Close(ctx)
		conn, err := h.pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		for j, t := range tables {
			cols := columnList(t, j == 0)
			if _, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(bufs[t.Name].Bytes()),
				"COPY "+transform.QuoteTable(t.Name)+" ("+cols+") FROM STDIN"); err != nil {
				conn.Release()
				return nil, fmt.Errorf("copy expected %s: %w", t.Name, err)
			}
		}
		conn.Release()
		for _, t := range tables {
			app := "app." + strings.SplitN(t.Name, ".", 2)[1]
			cols := columnList(t, false)
			q := fmt.Sprintf(`SELECT count(*) FROM (
 (SELECT %[1]s FROM %[2]s EXCEPT ALL SELECT %[1]s FROM %[3]s)
 UNION ALL
 (SELECT %[1]s FROM %[3]s EXCEPT ALL SELECT %[1]s FROM %[2]s)) d`, cols, transform.QuoteTable(app), transform.QuoteTable(t.Name))
			var n int64
			if err := h.pool.QueryRow(ctx, q).Scan(&n); err != nil {
				return nil, err
			}
			out[app] = n
		}
	}
	return out, nil
}

func columnList(t transform.TableDef, withVersion bool) string {
	var cols []string
	for _, c := range t.Columns {
		cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
	}
	if withVersion {
		cols = append(cols, transform.VersionTSColumn, transform.VersionIncColumn, transform.VersionSeqColumn)
	}
	return strings.Join(cols, ", ")
}

func writeRow(b *bytes.Buffer, vals []transform.Value, version bool) {
	for i, v := range vals {
		if i > 0 {
			b.WriteByte('\t')
		}
		if !v.Valid {
			b.WriteString(`\N`)
			continue
		}
		r := strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)
		b.WriteString(r.Replace(v.Text))
	}
	if version {
		b.WriteString("\t0\t0\t0")
	}
	b.WriteByte('\n')
}

// waitEqual waits for streaming to catch up, then polls diff until every
// table is equal or the timeout passes.
func (h *harness) waitEqual(ctx context.Context, timeout time.Duration) {
	h.t.Helper()
	if timeout > 0 {
		h.waitCaughtUp(ctx, timeout)
	}
	deadline := time.Now().Add(timeout)
	for {
		d, err := h.diff(ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		var bad []string
		for tbl, n := range d {
			if n != 0 {
				bad = append(bad, fmt.Sprintf("%s: %d rows differ", tbl, n))
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.dumpDiff(ctx)
			h.t.Fatalf("PostgreSQL differs from MongoDB: %s", strings.Join(bad, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// dumpDiff logs a few differing rows of each table.
func (h *harness) dumpDiff(ctx context.Context) {
	var dl string
	_ = h.pool.QueryRow(ctx, `SELECT coalesce(string_agg(collection || ' ' || stage || ' ' || reason || ': ' || error, '; '), 'none') FROM (SELECT * FROM replicator.dead_letters LIMIT 5) d`).Scan(&dl)
	h.t.Logf("dead letters: %s", dl)
	for _, m := range h.expects {
		for _, t := range m.Tables() {
			app := "app." + strings.SplitN(t.Name, ".", 2)[1]
			cols := columnList(t, false)
			for _, pair := range [][2]string{{app, t.Name}, {t.Name, app}} {
				rows, err := h.pool.Query(ctx, fmt.Sprintf("SELECT (%[1]s)::text FROM (SELECT %[1]s FROM %[2]s EXCEPT ALL SELECT %[1]s FROM %[3]s) d LIMIT 5",
					cols, transform.QuoteTable(pair[0]), transform.QuoteTable(pair[1])))
				if err != nil {
					h.t.Log(err)
					return
				}
				for rows.Next() {
					var s string
					_ = rows.Scan(&s)
					h.t.Logf("only in %s: %s", pair[0], s)
				}
				rows.Close()
				if t.Root == "" && pair[0] == app {
					h.dumpVersions(ctx, t, app, pair[1])
				}
			}
		}
	}
}

// dumpVersions logs the versions and tombstones of rows only in app.
func (h *harness) dumpVersions(ctx context.Context, t transform.TableDef, app, expect string) {
	key := pgx.Identifier{t.Key[0]}.Sanitize()
	rows, err := h.pool.Query(ctx, fmt.Sprintf(`SELECT a.%[1]s::text, a._cdc_ts, a._cdc_inc, a._cdc_seq,
  (SELECT tb.cluster_ts::text || '.' || tb.cluster_inc || '/' || tb.seq FROM replicator.tombstones tb WHERE tb.table_name = '%[4]s' AND tb.key[1] = a.%[1]s::text)
  FROM %[2]s a WHERE NOT EXISTS (SELECT 1 FROM %[3]s e WHERE e.%[1]s = a.%[1]s) LIMIT 5`, key, transform.QuoteTable(app), transform.QuoteTable(expect), app))
	if err != nil {
		h.t.Log(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var ts, inc, seq int64
		var tomb *string
		_ = rows.Scan(&k, &ts, &inc, &seq, &tomb)
		ts2 := "none"
		if tomb != nil {
			ts2 = *tomb
		}
		h.t.Logf("  %s key %s version %d.%d/%d tombstone %s", app, k, ts, inc, seq, ts2)
	}
	var runs string
	_ = h.pool.QueryRow(ctx, `SELECT string_agg(collection || ' ' || t0_ts || '.' || t0_inc, '; ') FROM replicator.snapshot_runs`).Scan(&runs)
	h.t.Logf("  runs: %s", runs)
}
