package sink

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// BenchmarkApplyVersions compares where versions live: in the root table's
// _cdc_* columns (versions: columns) or in replicator.row_versions
// (versions: table). Each sub-benchmark applies b.N batches of 2000 inserts
// of new 1 KB rows, then b.N batches updating every one of them, through
// the applier as configured by default (COPY staging; new keys COPYed
// straight in where the mode allows), and reports both rates.
func BenchmarkApplyVersions(b *testing.B) {
	for _, mode := range []string{"columns", "table"} {
		b.Run(mode, func(b *testing.B) { benchVersions(b, mode == "table") })
	}
}

func benchVersions(b *testing.B, external bool) {
	const batch = 2000
	ctx := context.Background()
	pool := testenv.Postgres(b)
	if err := schemas.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	ddl := `CREATE SCHEMA bench; CREATE TABLE bench.items (
    id text PRIMARY KEY, tenant uuid NOT NULL, n integer, created timestamptz, payload text`
	if !external {
		ddl += `, _cdc_ts bigint NOT NULL, _cdc_inc bigint NOT NULL, _cdc_seq bigint NOT NULL`
	}
	if _, err := pool.Exec(ctx, ddl+")"); err != nil {
		b.Fatal(err)
	}
	tables := benchTables()
	tables[0].ExternalVersions = external
	c := benchCollection(b, pool, tables)
	payload := strings.Repeat("x", 1024-100)
	tenant := "6f1c0e56-1d2c-4f44-9a43-4c3ad0b4f3a1"
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339Nano)
	seq := uint64(0)
	build := func(round int, op string) [][]message {
		out := make([][]message, b.N)
		for i := range b.N {
			seqs := make([]uint64, batch)
			datas := make([][]byte, batch)
			for j := range batch {
				seq++
				id := fmt.Sprintf("doc-%09d", i*batch+j)
				m := transform.Mutation{Table: "bench.items", Op: transform.OpUpsert, Key: []transform.Value{transform.Text(id)},
					Values: []transform.Value{transform.Text(id), transform.Text(tenant), transform.Text(strconv.Itoa(round)),
						transform.Text(created), transform.Text(payload)}}
				d, err := envelope.Encode(&envelope.Envelope{Kind: envelope.KindChange, Collection: testNS,
					ClusterTime: transform.ClusterTime{T: 1000, I: uint32(seq)}, Ordinal: 1, Operation: op, Mutations: []transform.Mutation{m}})
				if err != nil {
					b.Fatal(err)
				}
				seqs[j], datas[j] = seq, d
			}
			out[i] = decodeAll(testNS, seqs, func(j int) []byte { return datas[j] })
		}
		return out
	}
	inserts, updates := build(0, "insert"), build(1, "update")
	b.ResetTimer()
	run := func(batches [][]message) time.Duration {
		start := time.Now()
		for _, msgs := range batches {
			if err := c.apply(ctx, msgs); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	insertTime := run(inserts)
	updateTime := run(updates)
	b.StopTimer()
	rows := float64(b.N * batch)
	b.ReportMetric(rows/insertTime.Seconds(), "insert_rows/s")
	b.ReportMetric(rows/updateTime.Seconds(), "update_rows/s")
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM bench.items WHERE n = 1").Scan(&n); err != nil || n != b.N*batch {
		b.Fatalf("%d rows updated (%v), want %d", n, err, b.N*batch)
	}
}

func benchCollection(b *testing.B, pool *pgxpool.Pool, tables []transform.TableDef) *collection {
	a, err := New(pool, []Collection{{Namespace: testNS, Tables: tables}}, Config{Stream: "S", SubjectPrefix: "p", CopyThreshold: benchThreshold()}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	c := a.cols[0]
	if err := c.loadPosition(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := c.detectInsertTriggers(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c
}
