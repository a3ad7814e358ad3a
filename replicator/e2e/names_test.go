package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/config"
)

// TestUnusualCollectionNames runs the real pipeline over three collections
// of one database: "a", "my coll" (a space) and "*". MongoDB accepts all
// three names. Each must reach only its own table: a space must not make
// an invalid subject (the applier would restart forever) and "*" must not
// become a wildcard that also receives its siblings' messages.
func TestUnusualCollectionNames(t *testing.T) {
	h := &harness{t: t, mongo: mongotest.New(t), nats: testenv.NATS(t), pgURL: testenv.PostgresURL(t)}
	db := h.mongo.Database("e2enames")
	colls := map[string]string{"a": "names.plain", "my coll": "names.spaced", "*": "names.star"}
	var b strings.Builder
	fmt.Fprintf(&b, "source: {uri: %q}\ntarget: {url: %q}\n", h.mongo.URI, h.pgURL)
	fmt.Fprintf(&b, "buffer: {nats_url: %q, data_dir: %q, heartbeat_interval: 500ms}\nlog: {level: warn}\nmetrics: {listen: \"127.0.0.1:0\"}\ncollections:\n", h.nats.URL, t.TempDir())
	for _, coll := range sortedKeys(colls) {
		fmt.Fprintf(&b, "  - source: %q\n    table: %s\n    columns:\n      id: {path: _id, type: text}\n      v: {path: v, type: text}\n", db+"."+coll, colls[coll])
	}
	h.pool = testenv.Pool(t, h.pgURL)
	cfg, err := config.Parse([]byte(b.String()), "names.yaml")
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	h.cfg = cfg
	if h.mappings, err = cfg.Mappings(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.stop() })
	h.start()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	buf, _ := h.openBuffer()
	waitStarted(t, ctx, buf)
	for coll := range colls {
		for i := range 3 {
			doc := bson.D{{Key: "_id", Value: fmt.Sprintf("%s-%d", coll, i)}, {Key: "v", Value: coll}}
			if _, err := h.mongo.Client.Database(db).Collection(coll).InsertOne(ctx, doc); err != nil {
				t.Fatalf("insert into %q: %v", coll, err)
			}
		}
	}
	want := func(coll string) string {
		return fmt.Sprintf("%s-0=%s %s-1=%s %s-2=%s", coll, coll, coll, coll, coll, coll)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := map[string]string{}
		for coll, table := range colls {
			got[coll] = tableRows(t, ctx, h, table)
		}
		same := true
		for coll := range colls {
			same = same && got[coll] == want(coll)
		}
		if same {
			break
		}
		if err := h.failed(); err != nil {
			t.Fatalf("pipeline stopped: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("tables do not hold exactly their own collection's documents: %q", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := deadLetters(t, h.pool); n != 0 {
		t.Fatalf("%d dead letters, want none", n)
	}
}

// tableRows returns "id=v ..." of table ordered by id, or "" if it does
// not exist yet.
func tableRows(t *testing.T, ctx context.Context, h *harness, table string) string {
	rows, err := h.pool.Query(ctx, "SELECT id, v FROM "+table+" ORDER BY id")
	if err != nil {
		return ""
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, id+"="+v)
	}
	return strings.Join(out, " ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
