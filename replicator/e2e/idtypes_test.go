package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/config"
)

// idTypesYAML maps one collection twice over: "implicit" gets the implicit
// _id text column, "mapped" maps _id to a text column itself; both have a
// child table keyed by the parent's key text. The snapshot's chunk size
// is the sixth argument.
const idTypesYAML = `
source:
  uri: %q
buffer:
  nats_url: %q
  data_dir: %q
  heartbeat_interval: 500ms
target:
  url: %q
apply:
  batch_wait: 50ms
snapshot:
  chunk_size: %[6]d
collections:
  - source: %[5]s.implicit
    table: idt.implicit
    columns:
      n: { path: n, type: bigint }
    children:
      - path: kids
        table: idt.implicit_kids
        parent_key: parent_id
        columns:
          kid: { path: ., type: text }
  - source: %[5]s.mapped
    table: idt.mapped
    columns:
      id: { path: _id, type: text }
      n:  { path: n,   type: bigint }
    children:
      - path: kids
        table: idt.mapped_kids
        parent_key: parent_id
        columns:
          kid: { path: ., type: text }
log:
  level: warn
`

// TestIDTypesStayDistinct: _ids that differ only in BSON type ("1" and 1,
// an ObjectId and its hex string) are different documents in MongoDB and
// stay different rows, each with its own child rows, through the initial
// snapshot, streaming inserts, updates and deletes, and a restart; no
// dead letters, no failed run (TYPES.md, "The _id key text"). The first
// documents are copied by the snapshot, with one chunk for the whole
// collection (every type in one merge, where colliding keys once failed
// on the child table's primary key at every start) or two documents per
// chunk (a range per type), or arrive as change events only.
func TestIDTypesStayDistinct(t *testing.T) {
	for _, tc := range []struct {
		name     string
		chunk    int
		snapshot bool
	}{
		{"snapshot_one_chunk", 10000, true},
		{"snapshot_small_chunks", 2, true},
		{"streaming", 10000, false},
	} {
		t.Run(tc.name, func(t *testing.T) { testIDTypes(t, tc.chunk, tc.snapshot) })
	}
}

// testIDTypes runs TestIDTypesStayDistinct; with snapshot false the first
// documents are inserted after the first start.
func testIDTypes(t *testing.T, chunkSize int, snapshot bool) {
	env := mongotest.New(t)
	h := &harness{t: t, mongo: env, nats: testenv.NATS(t), pgURL: testenv.PostgresURL(t)}
	h.pool = testenv.Pool(t, h.pgURL)
	db := env.Database("idt")
	yaml := fmt.Sprintf(idTypesYAML, env.URI, h.nats.URL, filepath.Join(t.TempDir(), "data"), h.pgURL, db, chunkSize)
	cfg, err := config.Parse([]byte(yaml), "idtypes.yaml")
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	h.cfg = cfg
	if h.mappings, err = cfg.Mappings(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	colls := []*mongo.Collection{env.Client.Database(db).Collection("implicit"), env.Client.Database(db).Collection("mapped")}
	insert := func(id any, n int64) {
		t.Helper()
		for _, c := range colls {
			doc := bson.D{{Key: "_id", Value: id}, {Key: "n", Value: n}, {Key: "kids", Value: bson.A{fmt.Sprintf("k%d-a", n), fmt.Sprintf("k%d-b", n)}}}
			if _, err := c.InsertOne(ctx, doc); err != nil {
				t.Fatalf("insert %v: %v", id, err)
			}
		}
	}
	each := func(f func(*mongo.Collection) error) {
		t.Helper()
		for _, c := range colls {
			if err := f(c); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Before the first start the snapshot copies these; otherwise they
	// are streamed.
	if !snapshot {
		h.startRun()
		// The (empty) snapshots are done: what follows is streamed.
		for {
			var done int
			err := h.pool.QueryRow(ctx, `SELECT count(*) FROM replicator.snapshot_runs WHERE state = 'done'`).Scan(&done)
			if err == nil && done == len(colls) {
				break
			}
			if err := h.failed(); err != nil {
				t.Fatalf("pipeline failed: %v", err)
			}
			if ctx.Err() != nil {
				t.Fatalf("the empty snapshots did not finish: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	oid1 := bson.NewObjectID()
	insert("1", 1)
	insert(int32(1), 2)
	insert(oid1, 3)
	insert(oid1.Hex(), 4)
	insert(1.5, 5)
	if snapshot {
		h.startRun()
	}
	h.waitEqual(60 * time.Second)
	wantRows(t, h, map[string]int64{"1": 1, "~num:1": 2, oid1.Hex(): 3, "~str:" + oid1.Hex(): 4, "~num:1.5": 5})

	// Streaming: the same collisions arrive as change events.
	oid2 := bson.NewObjectID()
	insert("2", 6)
	insert(int64(2), 7)
	insert(oid2, 8)
	insert(oid2.Hex(), 9)
	each(func(c *mongo.Collection) error {
		_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: int64(20)}}}})
		return err
	})
	each(func(c *mongo.Collection) error {
		_, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: oid2}}, bson.D{{Key: "n", Value: int64(80)}, {Key: "kids", Value: bson.A{"r"}}})
		return err
	})
	for _, id := range []any{"1", oid1.Hex(), int64(2)} {
		each(func(c *mongo.Collection) error {
			_, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
			return err
		})
	}
	h.waitEqual(60 * time.Second)
	wantRows(t, h, map[string]int64{"~num:1": 20, oid1.Hex(): 3, "~num:1.5": 5,
		"2": 6, oid2.Hex(): 80, "~str:" + oid2.Hex(): 9})

	// A restart resumes streaming; nothing fails or loops.
	if err := h.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	h.startRun()
	insert("3", 10)
	insert(int64(3), 11)
	each(func(c *mongo.Collection) error {
		_, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1.0}})
		return err
	})
	h.waitEqual(60 * time.Second)
	wantRows(t, h, map[string]int64{oid1.Hex(): 3, "~num:1.5": 5, "2": 6, oid2.Hex(): 80, "~str:" + oid2.Hex(): 9,
		"3": 10, "~num:3": 11})
	if n := deadLetters(t, h.pool); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
	if err := h.failed(); err != nil {
		t.Fatalf("pipeline stopped: %v", err)
	}
}

// wantRows checks that both root tables hold exactly the rows want (key
// text → n), each with its two child rows (one for n 80, a replacement).
func wantRows(t *testing.T, h *harness, want map[string]int64) {
	t.Helper()
	for _, tbl := range []struct{ root, key, kids string }{
		{"idt.implicit", "_id", "idt.implicit_kids"},
		{"idt.mapped", "id", "idt.mapped_kids"},
	} {
		rows, err := h.pool.Query(context.Background(), fmt.Sprintf(
			`SELECT r.%[2]s, r.n, (SELECT count(*) FROM %[3]s k WHERE k.parent_id = r.%[2]s) FROM %[1]s r ORDER BY r.n`,
			tbl.root, tbl.key, tbl.kids))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		var bad []string
		for rows.Next() {
			var key string
			var n, kids int64
			if err := rows.Scan(&key, &n, &kids); err != nil {
				t.Fatal(err)
			}
			got[key] = n
			if wantKids := map[bool]int64{true: 1, false: 2}[n == 80]; kids != wantKids {
				bad = append(bad, fmt.Sprintf("%q has %d child rows, want %d", key, kids, wantKids))
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || len(bad) > 0 {
			t.Fatalf("%s rows (key text → n) %v, want %v %s", tbl.root, got, want, strings.Join(bad, "; "))
		}
	}
}
