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

// insertFresh moves out of p the upserts of insert events whose key has
// neither a row nor a tombstone (new documents, the bulk of a backlog or a
// load) and COPYs them and their child rows straight into the target
// tables. Any version beats no row and no tombstone, so these rows need no
// guard; the rest of p goes through the guarded merge. A row that a
// concurrent writer inserted meanwhile makes the COPY fail with a unique
// violation, and the whole batch is retried through the merge (apply.go,
// freshError).
//
// Only writes of insert events (rootWrite.insert) are candidates: the key
// of an update, replace or delete event existed in MongoDB before, so its
// row almost always exists here too, and probing it would cost two index
// probes per key to find nothing (in an update-heavy stream that probe
// was a fifth of the applier's PostgreSQL time). An update of a key with
// no row (a collection captured without a snapshot) is written by the
// merge, which is as correct, only slower.
//
// Finding the new keys among the inserts costs two index probes per key,
// spared while the root table has no tombstone at all (the common case of
// a load or an insert-mostly collection): their key is new unless the
// event is applied again (a replay, a redelivery past a lost checkpoint)
// or a snapshot loaded the document too, and then the COPY fails with a
// unique violation and the batch goes through the merge, which is exactly
// as correct, only slower for that one batch.
func insertFresh(ctx context.Context, tx pgx.Tx, ts *tableSet, rels *relations, p *batchPlan) error {
	probe := insertWrites(p.upserts)
	if len(probe) == 0 {
		return nil
	}
	root := ts.root
	fresh := make(map[*rootWrite]bool, len(probe))
	var tombs bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+tombstones+" WHERE table_name = $1)", root.def.Name).Scan(&tombs); err != nil {
		return fmt.Errorf("look for tombstones: %w", err)
	}
	if !tombs {
		for _, w := range probe {
			fresh[w] = true
		}
		probe = nil
	}
	if err := findNewKeys(ctx, tx, root, rels, probe, fresh); err != nil {
		return err
	}
	if len(fresh) == 0 {
		return nil
	}
	var newRows, rest []*rootWrite
	for _, w := range p.upserts {
		if fresh[w] {
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

// findNewKeys marks in fresh the writes of ws whose key has neither a row
// nor a tombstone.
func findNewKeys(ctx context.Context, tx pgx.Tx, root *table, rels *relations, ws []*rootWrite, fresh map[*rootWrite]bool) error {
	if len(ws) == 0 {
		return nil
	}
	from, args := arraySource{}.from(rels.up, rootRows(ws, false), root.keyIdx)
	keys := make([]string, len(root.keyIdx))
	for j, ki := range root.keyIdx {
		keys[j] = "s." + colName(ki)
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE NOT %s AND NOT %s", strings.Join(keys, ", "), from, rowExists(root), tombstoneExists(root))
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("find new keys: %w", err)
	}
	byKey := make(map[string]*rootWrite, len(ws))
	for _, w := range ws {
		byKey[keyString(w.key)] = w
	}
	vals := make([]transform.Value, len(keys))
	dst := make([]any, len(keys))
	for rows.Next() {
		for j := range vals {
			vals[j] = transform.Value{Valid: true}
			dst[j] = &vals[j].Text
		}
		if err := rows.Scan(dst...); err != nil {
			rows.Close()
			return fmt.Errorf("find new keys: %w", err)
		}
		if w := byKey[keyString(vals)]; w != nil {
			fresh[w] = true
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find new keys: %w", err)
	}
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
