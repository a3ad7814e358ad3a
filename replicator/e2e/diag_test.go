package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongopg/replicator/internal/mongotest"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/envelope"
)

// diagnose explains a difference in vex.statements: for ids present on one
// side only, it lists their history in the buffer and in PostgreSQL.
func diagnose(t *testing.T, env *mongotest.Env, pool *pgxpool.Pool, ns string, bcfg buffer.Config) {
	t.Helper()
	ctx := context.Background()
	db, coll, _ := strings.Cut(ns, ".")
	cur, err := env.Client.Database(db).Collection(coll).Find(ctx, bson.D{})
	if err != nil {
		t.Log(err)
		return
	}
	mongoIDs := map[string]bool{}
	for cur.Next(ctx) {
		id := cur.Current.Lookup("_id")
		if oid, ok := id.ObjectIDOK(); ok {
			mongoIDs[oid.Hex()] = true
		}
	}
	rows, err := pool.Query(ctx, "SELECT id FROM vex.statements")
	if err != nil {
		t.Log(err)
		return
	}
	pgIDs := map[string]bool{}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		pgIDs[id] = true
	}
	rows.Close()
	var odd []string
	for id := range pgIDs {
		if !mongoIDs[id] {
			odd = append(odd, "pg-only:"+id)
		}
	}
	for id := range mongoIDs {
		if !pgIDs[id] {
			odd = append(odd, "mongo-only:"+id)
		}
	}
	t.Logf("%d ids differ: %v", len(odd), odd[:min(len(odd), 5)])
	if len(odd) == 0 {
		return
	}
	b, err := buffer.Open(ctx, bcfg, nil)
	if err != nil {
		t.Log(err)
		return
	}
	defer b.Close()
	if cons, err := b.JetStream().Consumer(ctx, b.Config().Stream, buffer.Durable(ns)); err != nil {
		t.Logf("apply consumer: %v", err)
	} else if info, err := cons.Info(ctx); err != nil {
		t.Logf("apply consumer: %v", err)
	} else {
		t.Logf("apply consumer: delivered stream seq %d (consumer seq %d), ack floor stream seq %d, ack pending %d, redelivered %d, pending %d",
			info.Delivered.Stream, info.Delivered.Consumer, info.AckFloor.Stream, info.NumAckPending, info.NumRedelivered, info.NumPending)
	}
	c, err := b.JetStream().OrderedConsumer(ctx, bcfg.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{b.Subject(ns)}})
	if err != nil {
		t.Log(err)
		return
	}
	want := map[string][]string{}
	for _, o := range odd[:min(len(odd), 4)] {
		_, id, _ := strings.Cut(o, ":")
		want[id] = nil
	}
	for {
		msgs, err := c.FetchNoWait(1000)
		if err != nil {
			break
		}
		n := 0
		for m := range msgs.Messages() {
			n++
			e, err := envelope.Decode(m.Data())
			if err != nil || e.Kind == envelope.KindHeartbeat {
				continue
			}
			md, _ := m.Metadata()
			for id := range want {
				if strings.Contains(e.DocumentKey, id) {
					want[id] = append(want[id], fmt.Sprintf("seq=%d %s %s ct=%d.%d tok=%s muts=%d", md.Sequence.Stream, e.Kind, e.Operation, e.ClusterTime.T, e.ClusterTime.I, e.Token, len(e.Mutations)))
				}
			}
		}
		if n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for id, h := range want {
		var tomb string
		_ = pool.QueryRow(ctx, "SELECT cluster_ts||'.'||cluster_inc||' seq '||seq FROM replicator.tombstones WHERE key = ARRAY[$1]", id).Scan(&tomb)
		var ver string
		_ = pool.QueryRow(ctx, "SELECT _cdc_ts||'.'||_cdc_inc||' seq '||_cdc_seq FROM vex.statements WHERE id = $1", id).Scan(&ver)
		t.Logf("id %s: pg row version %q, tombstone %q, buffer history:\n  %s", id, ver, tomb, strings.Join(h, "\n  "))
	}
	var cp string
	_ = pool.QueryRow(ctx, "SELECT stream_seq||' ct '||cluster_ts||'.'||cluster_inc FROM replicator.apply_checkpoints WHERE collection = $1", ns).Scan(&cp)
	pos, _ := b.Positions().Load(ctx, "default")
	t.Logf("apply checkpoint %s; capture position %+v", cp, pos)
}
