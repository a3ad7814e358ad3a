package snapshot

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/transform"
)

const guardMapping = `
source: g.docs
table: g.docs
columns:
  id: { path: _id, type: text }
  v:  { path: v, type: bigint }
children:
  - path: items
    table: g.items
    columns:
      item: { path: ., type: text }
`

// TestGuardedLoad checks the version guard of both load paths (straight
// COPY into an empty range, staged merge otherwise) against stored rows
// and tombstones.
func TestGuardedLoad(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Postgres(t)
	var cc transform.CollectionConfig
	if err := yaml.Unmarshal([]byte(guardMapping), &cc); err != nil {
		t.Fatal(err)
	}
	m, err := transform.Compile(cc)
	if err != nil {
		t.Fatal(err)
	}
	if err := schemas.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, transform.DDL([]*transform.Mapping{m})); err != nil {
		t.Fatal(err)
	}
	g, err := newGuardMerge([]*transform.Mapping{m})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := g.plan(m.Table())
	row := func(id string, v int64, items ...string) transform.Mutation {
		a := bson.A{}
		for _, it := range items {
			a = append(a, it)
		}
		doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "v", Value: v}, {Key: "items", Value: a}})
		mut, err := m.SnapshotRow(doc, transform.ClusterTime{})
		if err != nil {
			t.Fatal(err)
		}
		return mut
	}
	t0 := transform.Version{ClusterTime: transform.ClusterTime{T: 100, I: 5}}
	load := func(muts ...transform.Mutation) bool {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		l := p.newLoad()
		if err := l.add(ctx, tx, muts); err != nil {
			t.Fatal(err)
		}
		direct, err := l.finish(ctx, tx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return direct
	}
	if !load(row("a", 1, "x", "y"), row("b", 1)) {
		t.Fatal("an empty table was not loaded straight")
	}
	// Stored rows: c newer than T0, d older; tombstones: e newer, f older.
	if _, err := pool.Exec(ctx, `
INSERT INTO g.docs (id, v, _cdc_ts, _cdc_inc, _cdc_seq) VALUES ('c', 9, 100, 6, 1), ('d', 9, 100, 4, 7);
INSERT INTO g.items (id, ordinal, item) VALUES ('c', 0, 'keep'), ('d', 0, 'old'), ('d', 1, 'old');
INSERT INTO replicator.tombstones (table_name, key, cluster_ts, cluster_inc, seq) VALUES ('g.docs', '{e}', 101, 0, 0), ('g.docs', '{f}', 99, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	if load(row("c", 2, "new"), row("d", 2, "new"), row("e", 2), row("f", 2), row("a", 2, "z")) {
		t.Fatal("a chunk with stored rows was loaded straight, without the guard")
	}
	tests := []struct {
		id    string
		v     int64 // -1: no row
		items int
	}{
		{"a", 2, 1},  // same version (T0) again: rewritten
		{"b", 1, 0},  // not in the second chunk: untouched
		{"c", 9, 1},  // newer row wins, its children stay
		{"d", 2, 1},  // older row replaced with its children
		{"e", -1, 0}, // newer tombstone: stays deleted
		{"f", 2, 0},  // older tombstone: written
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			var v int64 = -1
			_ = pool.QueryRow(ctx, `SELECT v FROM g.docs WHERE id = $1`, tc.id).Scan(&v)
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM g.items WHERE id = $1`, tc.id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if v != tc.v || n != tc.items {
				t.Fatalf("row v=%d with %d items, want v=%d with %d", v, n, tc.v, tc.items)
			}
		})
	}
}
