package snapshot

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
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
  id:  { path: _id, type: text }
  v:   { path: v, type: bigint }
children:
  - path: items
    table: g.items
    columns:
      item: { path: ., type: text }
`

// guardFixture is the g.docs mapping on a fresh database.
type guardFixture struct {
	t    *testing.T
	pool *pgxpool.Pool
	m    *transform.Mapping
	p    *mergePlan
}

func newGuardFixture(t *testing.T) *guardFixture {
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
	p, err := g.plan(m.Table())
	if err != nil {
		t.Fatal(err)
	}
	return &guardFixture{t: t, pool: pool, m: m, p: p}
}

func (f *guardFixture) row(id string, v int64, items ...string) transform.Mutation {
	f.t.Helper()
	a := bson.A{}
	for _, it := range items {
		a = append(a, it)
	}
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "v", Value: v}, {Key: "items", Value: a}})
	mut, err := f.m.SnapshotRow(doc, transform.ClusterTime{})
	if err != nil {
		f.t.Fatal(err)
	}
	return mut
}

// load writes one chunk at version v, one add per mutation, and reports
// whether it was COPYed straight in.
func (f *guardFixture) load(v transform.Version, muts ...transform.Mutation) bool {
	f.t.Helper()
	ctx := context.Background()
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	l := f.p.newLoad(v)
	for i := range muts {
		if err := l.add(ctx, tx, muts[i:i+1]); err != nil {
			f.t.Fatal(err)
		}
	}
	direct, err := l.finish(ctx, tx)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		f.t.Fatal(err)
	}
	return direct
}

func (f *guardFixture) exec(sql string) {
	f.t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql); err != nil {
		f.t.Fatal(err)
	}
}

// state returns a row's v (-1: no row) and its number of items.
func (f *guardFixture) state(id string) (int64, int) {
	f.t.Helper()
	ctx := context.Background()
	var v int64 = -1
	_ = f.pool.QueryRow(ctx, `SELECT v FROM g.docs WHERE id = $1`, id).Scan(&v)
	var n int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM g.items WHERE id = $1`, id).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return v, n
}

// TestGuardedLoad checks the version guard of both load paths (straight
// COPY into an empty range, staged merge otherwise), with the rows in
// memory and spilled to the staging tables as they are added, against
// stored rows and tombstones.
func TestGuardedLoad(t *testing.T) {
	f := newGuardFixture(t)
	t0 := transform.Version{ClusterTime: transform.ClusterTime{T: 100, I: 5}}
	for _, spill := range []bool{false, true} {
		name := "in memory"
		if spill {
			name = "spilled"
		}
		t.Run(name, func(t *testing.T) {
			f.t = t
			if spill {
				defer func(n int) { spillBytes = n }(spillBytes)
				spillBytes = 1
			}
			f.exec(`TRUNCATE g.docs CASCADE; TRUNCATE replicator.tombstones`)
			if direct := f.load(t0, f.row("a", 1, "x", "y"), f.row("b", 1)); direct == spill {
				t.Fatalf("an empty table was loaded straight: %t", direct)
			}
			// Stored rows: c newer than T0, d older; tombstones: e newer, f
			// older.
			f.exec(`
INSERT INTO g.docs (id, v, _cdc_ts, _cdc_inc, _cdc_seq) VALUES ('c', 9, 100, 6, 1), ('d', 9, 100, 4, 7);
INSERT INTO g.items (id, ordinal, item) VALUES ('c', 0, 'keep'), ('d', 0, 'old'), ('d', 1, 'old');
INSERT INTO replicator.tombstones (table_name, key, cluster_ts, cluster_inc, seq) VALUES ('g.docs', '{e}', 101, 0, 0), ('g.docs', '{f}', 99, 0, 0)`)
			if f.load(t0, f.row("c", 2, "new"), f.row("d", 2, "new"), f.row("e", 2), f.row("f", 2), f.row("a", 2, "z")) {
				t.Fatal("a chunk with stored rows was loaded straight, without the guard")
			}
			tests := []struct {
				id    string
				v     int64 // -1: no row
				items int
			}{
				{"a", 1, 2},  // same version (T0) again: applied already, untouched
				{"b", 1, 0},  // not in the second chunk: untouched
				{"c", 9, 1},  // newer row wins, its children stay
				{"d", 2, 1},  // older row replaced with its children
				{"e", -1, 0}, // newer tombstone: stays deleted
				{"f", 2, 0},  // older tombstone: written
			}
			for _, tc := range tests {
				if v, n := f.state(tc.id); v != tc.v || n != tc.items {
					t.Errorf("%s: row v=%d with %d items, want v=%d with %d", tc.id, v, n, tc.v, tc.items)
				}
			}
			// A written row removes the older tombstone, as a streaming
			// write does; the newer one stays.
			var tombs string
			if err := f.pool.QueryRow(context.Background(), `SELECT string_agg(key[1], ',' ORDER BY key) FROM replicator.tombstones`).Scan(&tombs); err != nil {
				t.Fatal(err)
			}
			if tombs != "e" {
				t.Errorf("tombstones of %s, want e", tombs)
			}
			// A chunk repeating a key writes it once.
			if f.load(t0, f.row("g", 3), f.row("g", 3)) {
				t.Fatal("a chunk repeating a key was loaded straight")
			}
			if v, n := f.state("g"); v != 3 || n != 0 {
				t.Errorf("g: row v=%d with %d items, want v=3 with 0", v, n)
			}
		})
	}
}

// TestSweepLeavesTombstones checks a resync's sweep: rows older than T0 go
// with their child rows and leave tombstones at (T0, 0); rows at T0 or
// newer stay.
func TestSweepLeavesTombstones(t *testing.T) {
	f := newGuardFixture(t)
	ctx := context.Background()
	t0 := transform.ClusterTime{T: 100, I: 5}
	f.exec(`
INSERT INTO g.docs (id, v, _cdc_ts, _cdc_inc, _cdc_seq) VALUES ('old', 1, 100, 4, 9), ('at', 2, 100, 5, 0), ('new', 3, 100, 5, 1), ('tomb', 4, 50, 0, 0);
INSERT INTO g.items (id, ordinal, item) VALUES ('old', 0, 'x'), ('old', 1, 'y'), ('at', 0, 'z');
INSERT INTO replicator.tombstones (table_name, key, cluster_ts, cluster_inc, seq) VALUES ('g.docs', '{tomb}', 200, 0, 0)`)
	s := &Snapshot{deps: Deps{Target: f.pool}}
	var err error
	if s.merger, err = newGuardMerge([]*transform.Mapping{f.m}); err != nil {
		t.Fatal(err)
	}
	n, err := s.sweep(ctx, &job{m: f.m, run: &runRow{T0: t0}})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("swept %d rows, want 2", n)
	}
	for id, want := range map[string][2]int64{"old": {-1, 0}, "at": {2, 1}, "new": {3, 0}, "tomb": {-1, 0}} {
		if v, items := f.state(id); v != want[0] || int64(items) != want[1] {
			t.Errorf("%s: row v=%d with %d items, want v=%d with %d", id, v, items, want[0], want[1])
		}
	}
	var tombs string
	if err := f.pool.QueryRow(ctx, `SELECT string_agg(key[1] || ' ' || cluster_ts || '.' || cluster_inc || '/' || seq, ', ' ORDER BY key) FROM replicator.tombstones`).Scan(&tombs); err != nil {
		t.Fatal(err)
	}
	if want := "old 100.5/0, tomb 200.0/0"; tombs != want {
		t.Errorf("tombstones %s, want %s", tombs, want)
	}
}
