package sink

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mongopg/replicator/transform"
)

// insertFresh moves out of p the upserts whose key has neither a row nor a
// tombstone (inserts of new documents, the bulk of a backlog or a load) and
// COPYs them and their child rows straight into the target tables. Any
// version beats no row and no tombstone, so these rows need no guard; the
// rest of p goes through the guarded merge. A row that a concurrent writer
// inserted meanwhile makes the COPY fail with a unique violation, and the
// whole batch is retried through the merge (apply.go, freshError).
func insertFresh(ctx context.Context, tx pgx.Tx, ts *tableSet, rels *relations, p *batchPlan) error {
	if len(p.upserts) == 0 {
		return nil
	}
	root := ts.root
	from, args := arraySource{}.from(rels.up, rootRows(p.upserts, false), root.keyIdx)
	keys := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		keys[j] = "s." + colName(ki)
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE NOT EXISTS (SELECT 1 FROM %s AS t WHERE %s) AND NOT EXISTS (SELECT 1 FROM %s tb WHERE tb.table_name = %s AND tb.key = %s)",
		strings.Join(keys, ", "), from, root.ident, rootKeyMatch(root, root, root.keyIdx), tombstones, quoteLiteral(root.def.Name), tombstoneKey(root))
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("find new keys: %w", err)
	}
	fresh := map[string]bool{}
	vals := make([]transform.Value, len(keys))
	for rows.Next() {
		for j := range vals {
			vals[j] = transform.Value{Valid: true}
		}
		dst := make([]any, len(keys))
		for j := range dst {
			dst[j] = &vals[j].Text
		}
		if err := rows.Scan(dst...); err != nil {
			rows.Close()
			return fmt.Errorf("find new keys: %w", err)
		}
		fresh[keyString(vals)] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find new keys: %w", err)
	}
	if len(fresh) == 0 {
		return nil
	}
	var newRows, rest []*rootWrite
	for _, w := range p.upserts {
		if fresh[keyString(w.key)] {
			newRows = append(newRows, w)
		} else {
			rest = append(rest, w)
		}
	}
	conn := tx.Conn().PgConn()
	if err := copyText(ctx, conn, root, rootRows(newRows, false), true); err != nil {
		return err
	}
	for i, rs := range childRows(ts, newRows) {
		if err := copyText(ctx, conn, ts.desc[i], rs, false); err != nil {
			return err
		}
	}
	p.upserts, p.children = rest, childRows(ts, rest)
	return nil
}

// copyText COPYs rows into t in COPY's text format: Values already hold
// PostgreSQL's text input syntax, so the server parses them exactly as it
// would the staged text cast to the column type.
func copyText(ctx context.Context, conn *pgconn.PgConn, t *table, rows []row, version bool) error {
	if len(rows) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, r := range rows {
		for i, v := range r.vals {
			if i > 0 {
				buf.WriteByte('\t')
			}
			WriteCopyText(&buf, v)
		}
		if version {
			buf.WriteByte('\t')
			buf.WriteString(strconv.FormatUint(uint64(r.ver.ClusterTime.T), 10))
			buf.WriteByte('\t')
			buf.WriteString(strconv.FormatUint(uint64(r.ver.ClusterTime.I), 10))
			buf.WriteByte('\t')
			buf.WriteString(strconv.FormatUint(r.ver.Seq, 10))
		}
		buf.WriteByte('\n')
	}
	cols := strings.Join(t.cols, ", ")
	if version {
		cols += ", " + transform.VersionTSColumn + ", " + transform.VersionIncColumn + ", " + transform.VersionSeqColumn
	}
	if _, err := conn.CopyFrom(ctx, &buf, "COPY "+t.ident+" ("+cols+") FROM STDIN"); err != nil {
		return fmt.Errorf("copy into %s: %w", t.def.Name, err)
	}
	return nil
}

// WriteCopyText writes v escaped for COPY's text format (\N is NULL). The
// snapshot loader writes its COPY data with it too.
func WriteCopyText(buf *bytes.Buffer, v transform.Value) {
	if !v.Valid {
		buf.WriteString(`\N`)
		return
	}
	s := v.Text
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case '\t':
			esc = `\t`
		default:
			continue
		}
		buf.WriteString(s[start:i])
		buf.WriteString(esc)
		start = i + 1
	}
	buf.WriteString(s[start:])
}
