package verify

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// SampleReport says what a sample compared (Config.Sample).
type SampleReport struct {
	// PerTenant is how many of each tenant's newest documents (by _id)
	// were read; Tenants how many tenants PostgreSQL holds (0 without a
	// tenant path: the collection's newest documents).
	PerTenant int `json:"per_tenant"`
	Tenants   int `json:"tenants"`
	// Unmatched are the tenants PostgreSQL holds rows of for which no
	// document was found by the tenant path: they make the sample differ.
	Unmatched []string `json:"unmatched"`
}

// readSample reads, for every tenant the root table holds in PostgreSQL,
// its newest cfg.Sample documents by _id (or the collection's newest
// without a tenant path). Only the rows under the sampled documents' root
// keys are compared then (stage.sample), so rows of tenants MongoDB holds
// and PostgreSQL does not are not found by a sample.
func (r *reader) readSample(ctx context.Context, q *pgxpool.Conn) error {
	root := r.st.tables[0]
	n := int64(r.cfg.Sample)
	r.rep.Sample = &SampleReport{PerTenant: r.cfg.Sample, Unmatched: []string{}}
	path := r.m.TenantPath()
	if path == "" || root.Tenant == "" {
		if err := r.run(ctx, []job{{sample: true, filter: bson.D{}, limit: n}}, false); err != nil {
			return err
		}
		r.progress(true)
		return nil
	}
	rows, err := q.Query(ctx, fmt.Sprintf("SELECT DISTINCT CAST(%s AS text) FROM %s", ident(root.Tenant), tableIdent(root.Name)))
	if err != nil {
		return fmt.Errorf("tenants of %s: %w", root.Name, err)
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	if err != nil {
		return fmt.Errorf("tenants of %s: %w", root.Name, err)
	}
	slices.SortFunc(tenants, func(a, b *string) int {
		switch {
		case a == nil:
			return -1
		case b == nil:
			return 1
		case *a < *b:
			return -1
		case *a > *b:
			return 1
		}
		return 0
	})
	r.rep.Sample.Tenants = len(tenants)
	jobs := make([]job, len(tenants))
	for i, t := range tenants {
		var match any // a missing or null tenant
		if t != nil {
			match = bson.D{{Key: "$in", Value: tenantValues(*t)}}
		}
		jobs[i] = job{sample: true, filter: bson.D{{Key: path, Value: match}}, limit: n, tenant: t}
	}
	if err := r.run(ctx, jobs, false); err != nil {
		return err
	}
	slices.Sort(r.rep.Sample.Unmatched)
	r.progress(true)
	return nil
}

// tenantValues are the BSON values a tenant column's text may have been
// read from: the string itself, and the UUID, ObjectId or number it
// spells.
func tenantValues(t string) []any {
	out := []any{t}
	if u, err := uuid.Parse(t); err == nil {
		out = append(out, bson.Binary{Subtype: bson.TypeBinaryUUID, Data: u[:]})
	}
	if oid, err := bson.ObjectIDFromHex(t); err == nil {
		out = append(out, oid)
	}
	if i, err := strconv.ParseInt(t, 10, 64); err == nil {
		out = append(out, i, float64(i))
		if i == int64(int32(i)) {
			out = append(out, int32(i))
		}
	}
	return out
}
