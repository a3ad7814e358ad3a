package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/transform"
)

// poisonYAML maps parents (a CHECK on n and a UNIQUE code, checked at
// commit, are added to its table), kids (a foreign key to parents, and a CHECK on its child
// table of tags) and others (no constraint). ONERROR is the parents'
// on_error.
const poisonYAML = `
collections:
  - source: DB.parents
    table: app.parents
    on_error: ONERROR
    columns:
      id:   { path: _id,  type: bigint }
      n:    { path: n,    type: bigint }
      code: { path: code, type: text }
  - source: DB.kids
    table: app.kids
    columns:
      id:     { path: _id,    type: bigint }
      parent: { path: parent, type: bigint }
    children:
      - path: tags
        table: app.kid_tags
        columns:
          tag: { path: ., type: text }
  - source: DB.others
    table: app.others
    columns:
      id: { path: _id, type: bigint }
      n:  { path: n,   type: bigint }
`

const poisonDocs = 300 // per collection

// The documents at fault. Parents: 40 breaks the CHECK (n >= 0), 120
// repeats the code of 50 (UNIQUE; the smaller _id is written first). Kids
// reference parent 301 - id, in a chunk of parents copied after theirs;
// kid 7 references a parent that does not exist, kids 261 and 181 the
// parents at fault, and kid 200 has a tag its child table's CHECK refuses.
var (
	badParents = map[int64]string{40: "23514", 120: "23505"}
	badKids    = map[int64]string{7: "23503", 181: "23503", 200: "23514", 261: "23503"}
)

// poisonFixture is a MongoDB with the three collections and a PostgreSQL
// with their tables and constraints.
type poisonFixture struct {
	t    *testing.T
	env  *mongotest.Env
	db   string
	pool *pgxpool.Pool
	maps []*transform.Mapping
	docs map[string]map[int64]bson.D // by collection name and _id
}

func newPoisonFixture(t *testing.T, onError string) *poisonFixture {
	t.Helper()
	ctx := context.Background()
	f := &poisonFixture{t: t, env: mongotest.New(t), docs: map[string]map[int64]bson.D{}}
	f.db = f.env.Database("poison")
	f.pool = testenv.Pool(t, testenv.PostgresURL(t))
	y := strings.NewReplacer("DB.", f.db+".", "ONERROR", onError).Replace(poisonYAML)
	cfg, err := config.Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.maps, err = cfg.Mappings(); err != nil {
		t.Fatal(err)
	}
	if err := replicator.Prepare(ctx, f.pool, f.maps); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `
ALTER TABLE app.parents ADD CONSTRAINT parents_n_check CHECK (n >= 0);
ALTER TABLE app.parents ADD CONSTRAINT parents_code_key UNIQUE (code) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE app.kids ADD CONSTRAINT kids_parent_fkey FOREIGN KEY (parent) REFERENCES app.parents (id);
ALTER TABLE app.kid_tags ADD CONSTRAINT kid_tags_tag_check CHECK (tag <> 'bad')`); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"parents", "kids", "others"} {
		f.docs[name] = map[int64]bson.D{}
		var docs []any
		for id := int64(1); id <= poisonDocs; id++ {
			var d bson.D
			switch name {
			case "parents":
				n, code := id, fmt.Sprintf("c%d", id)
				if id == 40 {
					n = -1
				}
				if id == 120 {
					code = "c50"
				}
				d = bson.D{{Key: "_id", Value: id}, {Key: "n", Value: n}, {Key: "code", Value: code}}
			case "kids":
				parent, tags := poisonDocs+1-id, bson.A{"a", "b"}
				if id == 7 {
					parent = 9999
				}
				if id == 200 {
					tags = bson.A{"ok", "bad"}
				}
				d = bson.D{{Key: "_id", Value: id}, {Key: "parent", Value: parent}, {Key: "tags", Value: tags}}
			default:
				d = bson.D{{Key: "_id", Value: id}, {Key: "n", Value: id}}
			}
			f.docs[name][id] = d
			docs = append(docs, d)
		}
		if _, err := f.env.Client.Database(f.db).Collection(name).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *poisonFixture) deps() snapshot.Deps {
	return snapshot.Deps{Source: f.env.Client, Target: f.pool, Mappings: f.maps, Logger: testLogger(f.t)}
}

func (f *poisonFixture) ns(name string) string { return f.db + "." + name }

// config copies in chunks of about 50 documents, one at a time, so a kid
// chunk is copied before the parents chunk it references.
func (f *poisonFixture) config(names ...string) snapshot.Config {
	var nss []string
	for _, n := range names {
		nss = append(nss, f.ns(n))
	}
	return snapshot.Config{ChunkSize: 50, Parallelism: 1, ForeignKeyWait: 2 * time.Second, Collections: nss}
}

// checkDeadLetters checks that the dead letters are exactly the documents
// at fault, once each, as stage apply, reason snapshot, with their
// SQLSTATE, the document as canonical extended JSON, no stream sequence
// and the cluster time of a run of their collection.
func (f *poisonFixture) checkDeadLetters(ctx context.Context, want map[string]map[int64]string) {
	f.t.Helper()
	rows, err := f.pool.Query(ctx, `
SELECT d.collection, d.document_key, d.stage, d.reason, coalesce(d.sqlstate, ''), d.raw_event::text, d.stream_seq IS NULL,
       EXISTS (SELECT 1 FROM replicator.snapshot_runs r WHERE r.collection = d.collection AND r.t0_ts = d.cluster_ts AND r.t0_inc = d.cluster_inc)
  FROM replicator.dead_letters d ORDER BY d.id`)
	if err != nil {
		f.t.Fatal(err)
	}
	type row struct {
		coll, key, stage, reason, sqlstate, raw string
		noSeq, t0                               bool
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		var raw *string
		err := r.Scan(&x.coll, &x.key, &x.stage, &x.reason, &x.sqlstate, &raw, &x.noSeq, &x.t0)
		if raw != nil {
			x.raw = *raw
		}
		return x, err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	var wantKeys, gotKeys []string
	for name, ids := range want {
		for id := range ids {
			wantKeys = append(wantKeys, fmt.Sprintf(`%s {"_id":{"$numberLong":"%d"}}`, f.ns(name), id))
		}
	}
	for _, d := range got {
		gotKeys = append(gotKeys, d.coll+" "+d.key)
	}
	slices.Sort(wantKeys)
	slices.Sort(gotKeys)
	if !slices.Equal(gotKeys, wantKeys) {
		f.t.Fatalf("dead letters:\n  %s\nwant each of:\n  %s", strings.Join(gotKeys, "\n  "), strings.Join(wantKeys, "\n  "))
	}
	for _, d := range got {
		name := strings.TrimPrefix(d.coll, f.db+".")
		var id int64
		if _, err := fmt.Sscanf(d.key, `{"_id":{"$numberLong":"%d"}}`, &id); err != nil {
			f.t.Fatal(err)
		}
		if d.stage != "apply" || d.reason != "snapshot" || d.sqlstate != want[name][id] || !d.noSeq || !d.t0 {
			f.t.Errorf("%s %s: stage %q reason %q sqlstate %q (want %s), stream_seq NULL %v, cluster time a run's T0 %v",
				d.coll, d.key, d.stage, d.reason, d.sqlstate, want[name][id], d.noSeq, d.t0)
		}
		js, err := bson.MarshalExtJSON(f.docs[name][id], true, false)
		if err != nil {
			f.t.Fatal(err)
		}
		var same bool
		if err := f.pool.QueryRow(ctx, `SELECT $1::jsonb = $2::jsonb`, d.raw, string(js)).Scan(&same); err != nil || !same {
			f.t.Errorf("%s %s: raw_event %s, want %s (%v)", d.coll, d.key, d.raw, js, err)
		}
	}
}

// checkRows checks that every document not at fault has its row (and a
// kid its tag rows), and that no document at fault has any.
func (f *poisonFixture) checkRows(ctx context.Context, table string, bad map[int64]string) {
	f.t.Helper()
	var ids []int64
	rows, err := f.pool.Query(ctx, "SELECT id FROM app."+table+" ORDER BY id")
	if err != nil {
		f.t.Fatal(err)
	}
	if ids, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		f.t.Fatal(err)
	}
	var want []int64
	for id := int64(1); id <= poisonDocs; id++ {
		if _, ok := bad[id]; !ok {
			want = append(want, id)
		}
	}
	if !slices.Equal(ids, want) {
		f.t.Fatalf("app.%s has %d rows, want %d (every document but %v)", table, len(ids), len(want), bad)
	}
	if table == "kids" {
		var tags, wrong int
		if err := f.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE id = ANY($1)) FROM app.kid_tags`,
			slices.Collect(func(yield func(int64) bool) {
				for id := range bad {
					if !yield(id) {
						return
					}
				}
			})).Scan(&tags, &wrong); err != nil {
			f.t.Fatal(err)
		}
		if tags != 2*len(want) || wrong != 0 {
			f.t.Fatalf("app.kid_tags has %d rows (%d of kids at fault), want %d", tags, wrong, 2*len(want))
		}
	}
}

// runStates maps each collection to its runs' "kind:state", oldest first.
func (f *poisonFixture) runStates(ctx context.Context) map[string]string {
	f.t.Helper()
	rows, err := f.pool.Query(ctx, `SELECT collection, string_agg(kind || ':' || state, ',' ORDER BY id) FROM replicator.snapshot_runs GROUP BY collection`)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var c, s string
		if err := rows.Scan(&c, &s); err != nil {
			f.t.Fatal(err)
		}
		out[strings.TrimPrefix(c, f.db+".")] = s
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// TestSnapshotIsolatesRefusedDocuments: documents whose rows PostgreSQL
// refuses (a CHECK, a UNIQUE and a foreign-key violation, and a CHECK on a
// child table) are dead-lettered once each with their SQLSTATE and every
// other document is copied; a kid chunk copied before the parents it
// references is retried, not dead-lettered (ARCHITECTURE.md, guarantee
// 6). The run is interrupted once a dead letter has committed and
// resumed, then a second snapshot and a resync of both collections run
// with the dead letters present: no dead letter is written twice.
func TestSnapshotIsolatesRefusedDocuments(t *testing.T) {
	f := newPoisonFixture(t, "dead_letter")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := f.config("parents", "kids")

	// Interrupted once a dead letter has committed.
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- snapshot.Run(rctx, f.deps(), cfg) }()
	for interrupted := false; !interrupted; {
		var n int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM replicator.dead_letters`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("the snapshot ended before it was interrupted: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		interrupted = n > 0
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted snapshot: %v, want context.Canceled", err)
	}
	if s := f.runStates(ctx); s["parents"] != "snapshot:copying" && s["kids"] != "snapshot:copying" {
		t.Fatalf("runs after the interruption: %v; want one unfinished", s)
	}

	// Resumed.
	start := time.Now()
	if err := snapshot.Run(ctx, f.deps(), cfg); err != nil {
		t.Fatalf("resumed snapshot: %v", err)
	}
	t.Logf("resumed snapshot took %v", time.Since(start))
	if s := f.runStates(ctx); s["parents"] != "snapshot:done" || s["kids"] != "snapshot:done" {
		t.Fatalf("runs %v, want one done snapshot each", s)
	}
	want := map[string]map[int64]string{"parents": badParents, "kids": badKids}
	f.checkDeadLetters(ctx, want)
	f.checkRows(ctx, "parents", badParents)
	f.checkRows(ctx, "kids", badKids)

	// A later snapshot and a resync of both run with the dead letters
	// present and add none.
	if err := snapshot.Run(ctx, f.deps(), cfg); err != nil {
		t.Fatalf("second snapshot: %v", err)
	}
	if err := snapshot.Resync(ctx, f.deps(), cfg); err != nil {
		t.Fatalf("resync with dead letters present: %v", err)
	}
	if s := f.runStates(ctx); s["parents"] != "snapshot:done,snapshot:done,resync:done" || s["kids"] != "snapshot:done,snapshot:done,resync:done" {
		t.Fatalf("runs %v, want two snapshots and a resync done each", s)
	}
	f.checkDeadLetters(ctx, want)
	f.checkRows(ctx, "parents", badParents)
	f.checkRows(ctx, "kids", badKids)
}

// TestSnapshotHaltStopsOneCollection: under on_error: halt, a document
// PostgreSQL refuses stops its collection's snapshot with an error naming
// the document and the recovery, writes no dead letter, and leaves the
// run unfinished; the other collection's chunks go on and finish. Inside
// `replicator run` the coordinator, resuming the halted run, logs the
// halt and keeps running instead of stopping the process (which would
// halt again on every restart).
func TestSnapshotHaltStopsOneCollection(t *testing.T) {
	f := newPoisonFixture(t, "halt")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := f.config("parents", "others")
	cfg.Parallelism = 2

	err := snapshot.Run(ctx, f.deps(), cfg)
	var halt *snapshot.HaltError
	if !errors.As(err, &halt) {
		t.Fatalf("snapshot: %v, want a *snapshot.HaltError", err)
	}
	t.Logf("halt: %v", err)
	key := `{"_id":{"$numberLong":"40"}}`
	if halt.Collection != f.ns("parents") || halt.DocumentKey != key ||
		!strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "23514") ||
		!strings.Contains(err.Error(), "on_error is halt") || !strings.Contains(err.Error(), "replicator run") {
		t.Fatalf("halt %q: want parents, document %s, its SQLSTATE and the recovery", err, key)
	}
	if s := f.runStates(ctx); s["parents"] != "snapshot:copying" || s["others"] != "snapshot:done" {
		t.Fatalf("runs %v: want the parents' unfinished and the others' done", s)
	}
	var others, dead int
	if err := f.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM app.others), (SELECT count(*) FROM replicator.dead_letters)`).Scan(&others, &dead); err != nil {
		t.Fatal(err)
	}
	if others != poisonDocs || dead != 0 {
		t.Fatalf("%d rows in app.others (want %d), %d dead letters (want none)", others, poisonDocs, dead)
	}

	// The coordinator resumes the unfinished run at start, halts again, and
	// keeps running.
	dcfg := cfg
	dcfg.Collections = nil
	reg := prometheus.NewRegistry()
	deps := f.deps()
	deps.Metrics = snapshot.NewMetrics(reg)
	co := snapshot.NewCoordinator(deps, dcfg)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- co.Run(rctx) }()
	for deadline := time.Now().Add(time.Minute); stateGauge(t, reg, f.ns("parents"), snapshot.StateFailed) != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the resumed run of parents did not halt")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the coordinator stopped on a halted collection: %v", err)
	case <-time.After(time.Second):
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	if s := f.runStates(ctx); s["parents"] != "snapshot:copying" {
		t.Fatalf("runs %v: want the parents' still unfinished", s)
	}
}

// stateGauge reads replicator_snapshot_state{collection, state} from reg.
func stateGauge(t *testing.T, reg *prometheus.Registry, collection, state string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "replicator_snapshot_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["collection"] == collection && labels["state"] == state {
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
