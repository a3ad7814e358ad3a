package sink

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// benchItemsDDL creates the table the benchmarks' applier writes; each
// benchmark adds an identical table for its baseline.
const benchItemsDDL = `
CREATE SCHEMA bench;
CREATE TABLE bench.items (
    id text PRIMARY KEY, tenant uuid NOT NULL, n integer, created timestamptz, payload text,
    _cdc_ts bigint NOT NULL, _cdc_inc bigint NOT NULL, _cdc_seq bigint NOT NULL);`

const benchDDL = benchItemsDDL + `
CREATE TABLE bench.raw (LIKE bench.items INCLUDING ALL);`

// benchTables maps bench.items.
func benchTables() []transform.TableDef {
	col := func(n, t string) transform.ColumnDef { return transform.ColumnDef{Name: n, Type: t} }
	return []transform.TableDef{{Name: "bench.items", Key: []string{"id"}, Columns: []transform.ColumnDef{
		col("id", "text"), col("tenant", "uuid"), col("n", "integer"), col("created", "timestamptz"), col("payload", "text")}}}
}

// BenchmarkApply applies batches of 2000 inserts of 1 KB rows through the
// COPY path and, in the same run, COPYs the same rows straight into an
// identical table; it reports both rates and their ratio.
func BenchmarkApply(b *testing.B) {
	const batch = 2000
	ctx := context.Background()
	pool := testenv.Postgres(b)
	if err := schemas.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, benchDDL); err != nil {
		b.Fatal(err)
	}
	tables := benchTables()
	a, err := New(pool, []Collection{{Namespace: testNS, Tables: tables}}, Config{Stream: "S", SubjectPrefix: "p", CopyThreshold: benchThreshold()}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	c := a.cols[0]
	if err := c.loadPosition(ctx); err != nil {
		b.Fatal(err)
	}
	if err := c.detectInsertTriggers(ctx); err != nil { // as a session does
		b.Fatal(err)
	}
	payload := strings.Repeat("x", 1024-100)
	tenantID := uuid.New()
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	datas := make([][][]byte, b.N)
	raws := make([][][]any, b.N)
	seqs := make([][]uint64, b.N)
	seq := uint64(0)
	for i := range b.N {
		for j := range batch {
			seq++
			id := fmt.Sprintf("doc-%09d", seq)
			m := transform.Mutation{Table: "bench.items", Op: transform.OpUpsert, Key: []transform.Value{transform.Text(id)},
				Values: []transform.Value{transform.Text(id), transform.Text(tenantID.String()), transform.Text(strconv.Itoa(j)),
					transform.Text(created.Format(time.RFC3339Nano)), transform.Text(payload)}}
			d, err := envelope.Encode(&envelope.Envelope{Kind: envelope.KindChange, Collection: testNS,
				ClusterTime: transform.ClusterTime{T: 1000, I: uint32(seq)}, Ordinal: 1, Operation: "insert", Mutations: []transform.Mutation{m}})
			if err != nil {
				b.Fatal(err)
			}
			datas[i] = append(datas[i], d)
			seqs[i] = append(seqs[i], seq)
			raws[i] = append(raws[i], []any{id, tenantID, int32(j), created, payload, int64(1000), int64(seq), int64(seq)})
		}
	}
	b.ResetTimer()

	rawCopy := func(lo, hi int) time.Duration {
		start := time.Now()
		for i := lo; i < hi; i++ {
			if _, err := pool.CopyFrom(ctx, pgx.Identifier{"bench", "raw"},
				[]string{"id", "tenant", "n", "created", "payload", "_cdc_ts", "_cdc_inc", "_cdc_seq"}, pgx.CopyFromRows(raws[i])); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	// apply works as the consumer does: decoding batch i+1 overlaps
	// applying batch i.
	apply := func(lo, hi int) time.Duration {
		start := time.Now()
		decoded := make(chan []message, 1)
		go func() {
			for i := lo; i < hi; i++ {
				decoded <- decodeAll(testNS, seqs[i], func(j int) []byte { return datas[i][j] })
			}
			close(decoded)
		}()
		for msgs := range decoded {
			if err := c.apply(ctx, msgs); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	// A-B-B-A order cancels a load that drifts during the run.
	mid := b.N / 2
	copyTime := rawCopy(0, mid)
	applyTime := apply(0, mid)
	applyTime += apply(mid, b.N)
	copyTime += rawCopy(mid, b.N)

	b.StopTimer()
	rows := float64(b.N * batch)
	applyRate, copyRate := rows/applyTime.Seconds(), rows/copyTime.Seconds()
	b.ReportMetric(applyRate, "apply_rows/s")
	b.ReportMetric(copyRate, "rawcopy_rows/s")
	b.ReportMetric(applyRate/copyRate, "apply/rawcopy")
}

// benchThreshold lets a run compare the array path (set
// SINK_BENCH_COPY_THRESHOLD=1000000) with the COPY path (default).
func benchThreshold() int {
	if s := os.Getenv("SINK_BENCH_COPY_THRESHOLD"); s != "" {
		n, _ := strconv.Atoi(s)
		return n
	}
	return 500
}
