package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// diagnose explains differing root rows: for the ids in the report's
// samples it lists their history in the buffer, their row version and
// tombstone in PostgreSQL, and the apply consumer's state.
func diagnose(t testing.TB, r workload.Report, mappings []*transform.Mapping, pool *pgxpool.Pool, bcfg buffer.Config) {
	t.Helper()
	ctx := context.Background()
	b, err := buffer.Open(ctx, bcfg, nil)
	if err != nil {
		t.Log(err)
		return
	}
	defer b.Close()
	for _, m := range mappings {
		root := m.Tables()[0]
		var ids []string
		for _, d := range r {
			if d.Table != root.Name {
				continue
			}
			for _, s := range d.Sample {
				_, js, _ := strings.Cut(s, " ")
				var row map[string]any
				if json.Unmarshal([]byte(js), &row) != nil {
					continue
				}
				for _, k := range []string{"id", "c0"} {
					if v, ok := row[k].(string); ok {
						ids = append(ids, v)
					}
				}
			}
		}
		if len(ids) == 0 {
			continue
		}
		ns := m.Namespace()
		units := config.UnitsOf(m)
		for _, unit := range units {
			if s, err := b.JetStream().Stream(ctx, b.Config().Stream); err != nil {
				t.Logf("%s apply consumer: %v", unit, err)
			} else if cons, err := sink.UnitConsumer(ctx, s, unit); err != nil {
				t.Logf("%s apply consumer: %v", unit, err)
			} else if info, err := cons.Info(ctx); err != nil {
				t.Logf("%s apply consumer: %v", unit, err)
			} else {
				t.Logf("%s apply consumer: delivered stream seq %d (consumer seq %d), ack floor stream seq %d, ack pending %d, redelivered %d, pending %d",
					unit, info.Delivered.Stream, info.Delivered.Consumer, info.AckFloor.Stream, info.NumAckPending, info.NumRedelivered, info.NumPending)
			}
		}
		hist := history(t, b, units, ids)
		for _, id := range ids {
			var ver, tomb string
			_ = pool.QueryRow(ctx, fmt.Sprintf("SELECT _cdc_ts||'.'||_cdc_inc||' seq '||_cdc_seq FROM %s WHERE %s::text = $1", root.Name, root.Key[0]), id).Scan(&ver)
			_ = pool.QueryRow(ctx, "SELECT cluster_ts||'.'||cluster_inc||' seq '||seq FROM replicator.tombstones WHERE table_name = $1 AND key = ARRAY[$2]", root.Name, id).Scan(&tomb)
			t.Logf("%s %s: row version %q, tombstone %q, buffer history:\n  %s", ns, id, ver, tomb, strings.Join(hist[id], "\n  "))
		}
		for _, unit := range units {
			var cp string
			_ = pool.QueryRow(ctx, "SELECT stream_seq||' ct '||cluster_ts||'.'||cluster_inc FROM replicator.apply_checkpoints WHERE collection = $1", unit).Scan(&cp)
			t.Logf("%s apply checkpoint %s", unit, cp)
		}
	}
	pos, _ := b.Positions().Load(ctx, "default")
	t.Logf("capture position %+v", pos)
}

// history lists the buffer messages of a collection's units (its
// namespace, or its partitions) whose document key holds an id.
func history(t testing.TB, b *buffer.Buffer, units []string, ids []string) map[string][]string {
	ctx := context.Background()
	out := map[string][]string{}
	var subjects []string
	for _, unit := range units {
		subjects = append(subjects, b.UnitSubject(unit))
	}
	c, err := b.JetStream().OrderedConsumer(ctx, b.Config().Stream, jetstream.OrderedConsumerConfig{FilterSubjects: subjects})
	if err != nil {
		t.Log(err)
		return out
	}
	for {
		msgs, err := c.FetchNoWait(1000)
		if err != nil {
			return out
		}
		n := 0
		for m := range msgs.Messages() {
			n++
			envs, err := envelope.DecodeAll(m.Data())
			if err != nil {
				continue
			}
			md, _ := m.Metadata()
			for k, e := range envs {
				if e.Kind == envelope.KindHeartbeat {
					continue
				}
				for _, id := range ids {
					if strings.Contains(e.DocumentKey, id) {
						out[id] = append(out[id], fmt.Sprintf("seq=%d/%d %s %s ct=%d.%d tok=%s muts=%d", md.Sequence.Stream, k, e.Kind, e.Operation, e.ClusterTime.T, e.ClusterTime.I, e.Token, len(e.Mutations)))
					}
				}
			}
		}
		if n == 0 {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}
