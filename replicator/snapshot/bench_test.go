package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/schemas"
	"github.com/mongopg/replicator/transform"
)

const benchMapping = `
source: bench.advisories
table: bench.advisories
columns:
  id:        { path: _id, type: text }
  tenant_id: { path: tenantId, type: uuid }
  severity:  { path: severity, type: text }
  cvss:      { path: cvss, type: numeric }
  published: { path: published, type: timestamptz }
document: { column: doc, include: rest }
children:
  - path: affected
    table: bench.advisory_affected
    columns:
      purl: { path: purl, type: text }
`

// benchRows returns n snapshot upserts of about 1 KB documents.
func benchRows(b *testing.B, m *transform.Mapping, n int) []transform.Mutation {
	out := make([]transform.Mutation, n)
	for i := range out {
		doc, err := bson.Marshal(bson.D{
			{Key: "_id", Value: bson.NewObjectID()},
			{Key: "tenantId", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{byte(i)}, 16)}},
			{Key: "severity", Value: "high"},
			{Key: "cvss", Value: 7.5},
			{Key: "published", Value: time.Unix(int64(i), 0).UTC()},
			{Key: "summary", Value: strings.Repeat("x", 700)},
			{Key: "affected", Value: bson.A{bson.D{{Key: "purl", Value: fmt.Sprintf("pkg:npm/a%d@1", i)}}, bson.D{{Key: "purl", Value: "pkg:npm/b@2"}}}},
		})
		if err != nil {
			b.Fatal(err)
		}
		if out[i], err = m.SnapshotRow(doc, transform.ClusterTime{}); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkSnapshotLoad compares the snapshot's load path (staged COPY,
// guarded merge, child rows, chunk checkpoint; chunks of 10,000 documents)
// with a raw COPY of the same rows into the same empty tables, in one run.
// It reports documents per second of both and their ratio.
func BenchmarkSnapshotLoad(b *testing.B) {
	const n, chunk = 50_000, 10_000
	ctx := context.Background()
	pool := testenv.Postgres(b)
	var cc transform.CollectionConfig
	if err := yaml.Unmarshal([]byte(benchMapping), &cc); err != nil {
		b.Fatal(err)
	}
	m, err := transform.Compile(cc)
	if err != nil {
		b.Fatal(err)
	}
	if err := schemas.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, transform.DDL([]*transform.Mapping{m})); err != nil {
		b.Fatal(err)
	}
	rows := benchRows(b, m, n)
	g, err := newGuardMerge([]*transform.Mapping{m})
	if err != nil {
		b.Fatal(err)
	}
	truncate := func() {
		if _, err := pool.Exec(ctx, "TRUNCATE bench.advisories CASCADE; TRUNCATE replicator.snapshot_runs CASCADE; CHECKPOINT"); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		truncate()
		raw := timeIt(b, func() error { return rawCopy(ctx, pool, m, rows) })
		results := map[int]time.Duration{}
		for _, par := range []int{1, 4} {
			truncate()
			results[par] = timeIt(b, func() error { return snapshotLoad(ctx, pool, g, m, rows, chunk, par) })
		}
		rawRate := float64(n) / raw.Seconds()
		b.ReportMetric(rawRate, "raw_copy_docs/s")
		for _, par := range []int{1, 4} {
			rate := float64(n) / results[par].Seconds()
			b.ReportMetric(rate, fmt.Sprintf("snapshot_p%d_docs/s", par))
			b.ReportMetric(rate/rawRate, fmt.Sprintf("ratio_p%d", par))
		}
	}
}

func timeIt(b *testing.B, f func() error) time.Duration {
	start := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// rawCopy COPYs the rows, with their version columns, straight into the
// tables: one COPY per table, no guard.
func rawCopy(ctx context.Context, pool *pgxpool.Pool, m *transform.Mapping, rows []transform.Mutation) error {
	tables := m.Tables()
	bufs := make([]copyText, len(tables))
	for _, r := range rows {
		for i, v := range r.Values {
			bufs[0].field(i == 0, v)
		}
		bufs[0].buf.WriteString("\t0\t0\t0")
		bufs[0].endRow()
		for _, c := range r.Children {
			for _, row := range c.Rows {
				for i, v := range row {
					bufs[1].field(i == 0, v)
				}
				bufs[1].endRow()
			}
		}
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	for i, t := range tables {
		names := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			names[i] = transform.QuoteIdent(c.Name)
		}
		cols := strings.Join(names, ", ")
		if i == 0 {
			cols += ", _cdc_ts, _cdc_inc, _cdc_seq"
		}
		if _, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(bufs[i].buf.Bytes()),
			"COPY "+transform.QuoteTable(t.Name)+" ("+cols+") FROM STDIN"); err != nil {
			return err
		}
	}
	return nil
}

// snapshotLoad loads the rows as a snapshot does: chunks of chunk rows,
// each one transaction of staged batches, the guarded merge and the chunk
// checkpoint, par chunks at a time.
func snapshotLoad(ctx context.Context, pool *pgxpool.Pool, g *guardMerge, m *transform.Mapping, rows []transform.Mutation, chunk, par int) error {
	var chunks []Chunk
	for i := 0; i*chunk < len(rows); i++ {
		chunks = append(chunks, Chunk{ID: i, Bracket: bracketAll})
	}
	run, err := store{pool}.createRun(ctx, m.Namespace(), KindSnapshot, transform.ClusterTime{T: 1}, chunks, int64(len(rows)))
	if err != nil {
		return err
	}
	p, err := g.plan(m.Table())
	if err != nil {
		return err
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(par)
	for _, c := range chunks {
		part := rows[c.ID*chunk : min((c.ID+1)*chunk, len(rows))]
		eg.Go(func() error {
			tx, err := pool.Begin(ectx)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback(ectx) }()
			load := p.newLoad(transform.Version{ClusterTime: run.T0})
			for i := 0; i < len(part); i += 2000 {
				if err := load.add(ectx, tx, part[i:min(i+2000, len(part))]); err != nil {
					return err
				}
			}
			if _, err := load.finish(ectx, tx); err != nil {
				return err
			}
			if err := markChunkDone(ectx, tx, run.ID, c.ID, int64(len(part)), 0); err != nil {
				return err
			}
			return tx.Commit(ectx)
		})
	}
	return eg.Wait()
}
