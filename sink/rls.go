package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mongopg/replicator/transform"
)

// Row-level security. When a collection names the session variable its
// tables' policies read the tenant from (tenant_id.setting, tableSet.setting),
// the applier writes each tenant's rows in statements of their own, after
// set_config(setting, tenant, true) in the same transaction, so a role
// without BYPASSRLS writes exactly what the policies allow. Rows are passed
// as arrays (COPY into a table under row-level security is refused), and
// such a collection keeps its versions in replicator.row_versions, whose
// tenant column tells a delete, which carries only the key, which tenant
// it belongs to. A delete of a key without a version row has no row to
// delete: it only leaves its tombstone.

const setTenant = "SELECT set_config($1, $2, true)"

// tenantGroup is the part of a batch that belongs to one tenant.
type tenantGroup struct {
	tenant  string
	upserts []*rootWrite
	deletes []*rootWrite
}

// queueTenantWrites queues p's writes tenant by tenant.
func (c *collection) queueTenantWrites(ctx context.Context, tx pgx.Tx, b *pgx.Batch, p *batchPlan) error {
	ts := c.ts
	groups := map[string]*tenantGroup{}
	var order []string
	group := func(tenant string) *tenantGroup {
		g := groups[tenant]
		if g == nil {
			g = &tenantGroup{tenant: tenant}
			groups[tenant] = g
			order = append(order, tenant)
		}
		return g
	}
	for _, w := range p.upserts {
		g := group(w.values[ts.tenantIdx].Text)
		g.upserts = append(g.upserts, w)
	}
	tenants, err := deleteTenants(ctx, tx, ts, c.rels, p.deletes)
	if err != nil {
		return err
	}
	var orphans []*rootWrite
	for i, w := range p.deletes {
		if tenants[i] == nil {
			orphans = append(orphans, w)
			continue
		}
		g := group(*tenants[i])
		g.deletes = append(g.deletes, w)
	}
	for i, tenant := range order {
		g := groups[tenant]
		b.Queue(setTenant, ts.setting, tenant)
		if i > 0 && ts.applied != nil && len(p.upserts) > 0 {
			// (The table exists when the batch has upserts: ensureApplied.)
			b.Queue("DELETE FROM pg_temp." + ts.applied.temp)
		}
		queueWrites(b, b, ts, c.rels, arraySource{}, &batchPlan{upserts: g.upserts, deletes: g.deletes,
			children: childRows(ts, g.upserts)})
	}
	if len(orphans) > 0 {
		from, args := arraySource{}.from(c.rels.del, rootRows(orphans, true), ts.root.idIdx)
		b.Queue(upsertTombstones(ts.root, from), args...)
	}
	return nil
}

// deleteTenants returns the tenant of each delete's key from its version
// row, nil for a key without one.
func deleteTenants(ctx context.Context, tx pgx.Tx, ts *tableSet, rels *relations, deletes []*rootWrite) ([]*string, error) {
	out := make([]*string, len(deletes))
	if len(deletes) == 0 {
		return out, nil
	}
	rows := rootRows(deletes, true)
	for i := range rows {
		// The row's position rides in the version's sequence.
		rows[i].ver = transform.Version{Seq: uint64(i)}
	}
	from, args := arraySource{}.from(rels.del, rows, ts.root.idIdx)
	q := fmt.Sprintf("SELECT s.v_seq, rv.tenant FROM %s JOIN %s rv ON %s", from, rowVersions, versionOf(ts.root))
	res, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find the tenants of deleted rows of %s: %w", ts.root.def.Name, err)
	}
	defer res.Close()
	for res.Next() {
		var i int64
		var tenant *string
		if err := res.Scan(&i, &tenant); err != nil {
			return nil, fmt.Errorf("find the tenants of deleted rows of %s: %w", ts.root.def.Name, err)
		}
		out[i] = tenant
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("find the tenants of deleted rows of %s: %w", ts.root.def.Name, err)
	}
	return out, nil
}

// rlsViolation reports whether err is a row-level security policy
// violation (SQLSTATE 42501 with PostgreSQL's policy message), as opposed
// to a missing privilege, which has the same SQLSTATE.
func rlsViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501" && strings.Contains(pgErr.Message, "row-level security policy")
}
